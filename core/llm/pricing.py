"""Cost of a model call from a price table (USD per 1M tokens)."""

from __future__ import annotations

from collections.abc import Mapping

from core.llm.types import Usage

# The Batch API bills about half of the synchronous rate (OpenAI's Batch API pricing).
BATCH_RATE = 0.5


class PriceTable:
    """Prices per model as (input, cached input, output) USD per 1M tokens."""

    def __init__(self, prices: Mapping[str, tuple[float, float, float]]) -> None:
        self._prices = dict(prices)

    def price(self, model: str) -> tuple[float, float, float] | None:
        """The prices for `model`, matching dated snapshots (`gpt-6-luna-2026-05-01`) by prefix."""
        if model in self._prices:
            return self._prices[model]
        candidates = [name for name in self._prices if model.startswith(name + "-")]
        return self._prices[max(candidates, key=len)] if candidates else None

    def cost(self, model: str, usage: Usage, *, batch: bool = False) -> float:
        """USD for one call (at the Batch API's rate with `batch`); 0 for a model without a
        price (logged by the caller)."""
        price = self.price(model)
        if price is None:
            return 0.0
        input_price, cached_price, output_price = price
        uncached = max(usage.prompt_tokens - usage.cached_tokens, 0)
        full = (
            uncached * input_price
            + usage.cached_tokens * cached_price
            + usage.completion_tokens * output_price
        ) / 1_000_000
        return full * BATCH_RATE if batch else full
