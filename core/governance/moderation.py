"""Moderation of what users send and what the model answers, by per-category policy."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
import structlog

from core.events import Attachment, ConversationKey
from core.governance.batching import MicroBatcher
from core.llm.retry import RetryPolicy, call_with_retries
from core.metrics import MODERATION
from core.store.moderation import ModerationLog

log = structlog.get_logger(__name__)

Action = Literal["allow", "flag", "block"]
CATEGORIES = (
    "hate",
    "hate/threatening",
    "harassment",
    "harassment/threatening",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
    "illicit",
    "illicit/violent",
)
_RANK = {"allow": 0, "flag": 1, "block": 2}
BATCH_SIZE = 32  # texts per moderation request when many turns are moderated at once
# A lone text goes at once; while a request is out, new texts wait to share the next one, unless
# a full batch is waiting (then up to this many requests are out at once).
MAX_IN_FLIGHT = 4

INPUT_BLOCKED = (
    "I can't help with that message: it appears to go against the usage policy ({categories}). "
    "It was not sent to the assistant."
)
OUTPUT_BLOCKED = (
    "I started to answer, but the reply was withheld because it appears to go against the usage "
    "policy."
)
UNAVAILABLE = (
    "I can't check messages for safety right now, so I won't answer this one. Please try again "
    "in a moment."
)


@dataclass(frozen=True, slots=True)
class Rule:
    """What to do when a category's score reaches the threshold."""

    threshold: float = 0.5
    action: Action = "block"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of moderating one piece of content."""

    action: Action
    categories: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def blocked(self) -> bool:
        return self.action == "block"


class ModerationUnavailable(Exception):
    """The moderation endpoint failed after retries and the policy is fail-closed."""


def excerpt(text: str, *, keep_text: bool) -> str:
    """What the log keeps of flagged content: nothing readable unless the setting allows it."""
    if keep_text:
        return text[:2000]
    words = len(text.split())
    return f"[{len(text)} characters, {words} words withheld]"


class Moderator:
    """Checks text and images against the policy and records every flag and block."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        moderation_log: ModerationLog,
        *,
        model: str,
        rules: dict[str, Rule],
        default: Rule,
        policy: RetryPolicy,
        fail_open: bool = False,
        keep_text: bool = False,
        enabled: bool = True,
    ) -> None:
        self._client = client
        self._log = moderation_log
        self._model = model
        self._rules = rules
        self._default = default
        self._policy = policy
        self._fail_open = fail_open
        self._keep_text = keep_text
        self.enabled = enabled
        self._texts: MicroBatcher[str, dict[str, float]] = MicroBatcher(
            self._score_texts, max_size=BATCH_SIZE, max_in_flight=MAX_IN_FLIGHT
        )

    @property
    def endpoint(self) -> str:
        """The URL moderation requests go to, without credentials (for logs and messages)."""
        url = self._client.base_url.copy_with(username=None, password=None, query=None)
        return str(url).rstrip("/") + "/moderations"

    async def probe(self, *, timeout: float) -> None:
        """One tiny moderation request, not retried, within `timeout` seconds; raises (the SDK's
        error, `TimeoutError`, or `TypeError` for an answer that is not a moderation result)
        unless the endpoint answers it."""
        async with asyncio.timeout(timeout + 1):  # the SDK's own timeout is per read
            result = await self._client.post(
                "/moderations",
                body={"model": self._model, "input": ["ok"]},
                cast_to=object,
                options={"timeout": timeout, "max_retries": 0},
            )
        if not isinstance(result, dict) or not isinstance(result.get("results"), list):
            raise TypeError(f"the moderation endpoint answered {result!r:.200}, not its results")

    def judge(self, scores: dict[str, float]) -> Verdict:
        """Apply the per-category rules to one set of scores."""
        action: Action = "allow"
        hits = []
        for category, score in scores.items():
            rule = self._rules.get(category, self._default)
            if rule.action != "allow" and score >= rule.threshold:
                hits.append(category)
                if _RANK[rule.action] > _RANK[action]:
                    action = rule.action
        return Verdict(action, tuple(sorted(hits)), dict(scores))

    async def check(
        self,
        text: str,
        *,
        key: ConversationKey,
        user_id: str,
        direction: Literal["input", "output"],
        images: Sequence[Attachment] = (),
    ) -> Verdict:
        """Moderate text (and images); records flags and blocks; raises when fail-closed and down."""
        images = [image for image in images if image.data is not None]
        if not self.enabled or (not text.strip() and not images):
            return Verdict("allow")
        try:
            scores = await (self._score_parts(text, images) if images else self._texts.submit(text))
        except Exception as exc:
            return await self._unavailable(exc, key, user_id, direction)
        verdict = self.judge(scores)
        if verdict.action != "allow":
            MODERATION.labels(direction, verdict.action).inc()
            log.warning(
                "moderation_" + verdict.action,
                direction=direction,
                categories=list(verdict.categories),
            )
            await self._log.record(
                key,
                user_id,
                direction=direction,
                action=verdict.action,
                scores={c: round(scores[c], 4) for c in verdict.categories},
                categories=list(verdict.categories),
                excerpt=excerpt(text, keep_text=self._keep_text),
            )
        return verdict

    async def _score_texts(self, texts: list[str]) -> list[dict[str, float]]:
        """One request for texts from many turns: one result per text, in order."""
        result = await call_with_retries(self._policy, lambda: self._post(texts))
        return [_scores(item) for item in result["results"]]

    async def _post(self, inputs: list[Any]) -> dict[str, Any]:
        """`POST /moderations` through the SDK, the result as plain JSON (see llm.client)."""
        result = await self._client.post(
            "/moderations", body={"model": self._model, "input": inputs}, cast_to=object
        )
        if not isinstance(result, dict):  # the SDK hands back the text of a non-JSON answer
            raise TypeError(f"the moderation endpoint answered {result!r:.200}, not a JSON object")
        return result

    async def _score_parts(self, text: str, images: Sequence[Attachment]) -> dict[str, float]:
        """Text and images as one multi-modal input: the highest score of each category."""
        parts: list[dict[str, object]] = [{"type": "text", "text": text}] if text.strip() else []
        parts += [{"type": "image_url", "image_url": {"url": _data_url(i)}} for i in images]
        result = await call_with_retries(self._policy, lambda: self._post(parts))
        scores: dict[str, float] = {}
        for item in result["results"]:
            for category, score in _scores(item).items():
                scores[category] = max(scores.get(category, 0.0), score)
        return scores

    async def _unavailable(
        self, exc: Exception, key: ConversationKey, user_id: str, direction: str
    ) -> Verdict:
        mode = "fail-open" if self._fail_open else "fail-closed"
        MODERATION.labels(direction, "unavailable").inc()
        log.error(
            "moderation_unavailable",
            mode=mode,
            direction=direction,
            error=f"{type(exc).__name__}: {exc}",
            fix="check the moderation endpoint; MODERATION_FAIL_OPEN=true lets turns through",
        )
        await self._log.record(
            key,
            user_id,
            direction=direction,
            action="error",
            scores={},
            categories=[],
            excerpt=f"moderation unavailable ({mode})",
        )
        if self._fail_open:
            return Verdict("allow", error=type(exc).__name__)
        raise ModerationUnavailable(str(exc)) from exc


def _scores(result: dict[str, Any]) -> dict[str, float]:
    """Category scores of one moderation result, by OpenAI's category names."""
    return {
        category: float(score)
        for category, score in (result.get("category_scores") or {}).items()
        if score is not None
    }


def _data_url(image: Attachment) -> str:
    assert image.data is not None
    return f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode()}"
