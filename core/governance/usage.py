"""Usage accounting: every model call's tokens and cost, priced, counted in metrics and stored."""

from __future__ import annotations

import structlog

from core import metrics
from core.events import ConversationKey
from core.llm.pricing import PriceTable
from core.llm.types import Completed, Usage
from core.store import Store, UsageRow

log = structlog.get_logger(__name__)


class UsageAccounting:
    """Prices model calls and records them; warns once per model that has no price."""

    def __init__(self, store: Store, prices: PriceTable, *, default_model: str) -> None:
        self._store = store
        self.prices = prices
        self._default_model = default_model
        self._unpriced_warned: set[str] = set()

    def estimate(
        self, model: str, prompt_tokens: int, max_output_tokens: int, *, batch: bool = False
    ) -> float:
        """The most a call can cost: the prompt plus a full-length answer."""
        return self.prices.cost(model, Usage(prompt_tokens, 0, max_output_tokens), batch=batch)

    async def record(
        self,
        completed: Completed,
        key: ConversationKey,
        *,
        user_id: str,
        purpose: str,
        turn_id: int | None,
        conversation_id: int | None,
        batch: bool = False,
    ) -> None:
        """Count one finished call in the metrics and store its usage row (priced at the Batch
        API's rate with `batch`)."""
        model = completed.model or self._default_model
        if self.prices.price(model) is None and model not in self._unpriced_warned:
            self._unpriced_warned.add(model)
            log.warning("model_unpriced", model=model, fix="add it to MODEL_PRICES")
        usage = completed.usage
        cost = self.prices.cost(model, usage, batch=batch)
        metrics.TOKENS.labels(model, "prompt").inc(usage.prompt_tokens)
        metrics.TOKENS.labels(model, "cached").inc(usage.cached_tokens)
        metrics.TOKENS.labels(model, "completion").inc(usage.completion_tokens)
        metrics.COST.labels(model).inc(cost)
        await self._store.usage.record(
            UsageRow(
                platform=key.platform.value,
                workspace=key.workspace,
                channel=key.channel,
                user_id=user_id,
                model=model,
                purpose=purpose,
                prompt_tokens=usage.prompt_tokens,
                cached_tokens=usage.cached_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=cost,
                turn_id=turn_id,
                conversation_id=conversation_id,
            )
        )
