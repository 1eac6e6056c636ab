"""Per-turn configuration: environment defaults, then workspace, channel and thread overrides."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.events import ConversationKey, Event
from core.settings import ModelSettings, Settings
from core.store import Store

# What admins may override per scope, with a one-line description for the help text.
OVERRIDABLE: dict[str, str] = {
    "system_prompt": "instructions added after the broader scopes' prompts",
    "model": "chat model name",
    "temperature": "sampling temperature 0-2, or 'default'",
    "max_output_tokens": "cap on reply tokens",
    "summary": "on/off: fold old turns into a running summary",
    "backend": "local (our memory) or openai (server-side OpenAI conversation)",
    "reply_controls": "on/off: feedback, regenerate and stop controls on replies",
}
SWITCHES = {"summary", "reply_controls"}  # overrides that take on or off


class TurnConfig(BaseModel):
    """What one turn runs with."""

    model_config = ConfigDict(frozen=True)

    model: str
    system_prompt: str
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: int = Field(ge=16)
    summary: bool = True
    backend: Literal["local", "openai"] = "local"
    reply_controls: bool = True
    budget: int = 0
    tool_switches: dict[str, bool] = Field(default_factory=dict)


def _layered_prompt(base: str, layers: list[dict[str, Any]]) -> str:
    parts = [base] + [str(layer["system_prompt"]) for layer in layers if layer.get("system_prompt")]
    return "\n\n".join(part for part in parts if part)


async def resolve_config(settings: Settings, store: Store, key: ConversationKey) -> TurnConfig:
    """The configuration of a conversation's next turn.

    System prompts are layered (global first, then workspace, channel and thread additions), which
    keeps the stable prefix first for prompt caching; other values are overridden by the narrowest
    scope that sets them.
    """
    layers = await store.scoped.layers(key)
    values: dict[str, Any] = {
        "model": settings.models.chat,
        "temperature": settings.models.temperature,
        "max_output_tokens": settings.models.max_output_tokens,
        "summary": settings.memory.summary_enabled,
        "backend": settings.memory.backend,
        "reply_controls": settings.interactive.reply_controls,
    }
    for layer in layers:
        values.update({k: v for k, v in layer.items() if k in OVERRIDABLE and k != "system_prompt"})
    values["system_prompt"] = _layered_prompt(settings.models.system_prompt, layers)
    switches: dict[str, bool] = {}
    for layer in layers:  # narrower scopes override broader ones
        switches.update(
            {k.removeprefix("tool."): bool(v) for k, v in layer.items() if k.startswith("tool.")}
        )
    values["tool_switches"] = switches
    window = settings.memory.window_of(values["model"])
    values["budget"] = min(
        window - int(values["max_output_tokens"]) - settings.memory.margin_tokens,
        settings.memory.budget_tokens,
    )
    return TurnConfig.model_validate(values)


def parse_override(name: str, raw: str) -> Any:
    """Validate one override typed by an admin; raises ValueError with a clear message."""
    if name not in OVERRIDABLE:
        raise ValueError(f"unknown setting {name!r}; settable: {', '.join(OVERRIDABLE)}")
    text = raw.strip()
    if name in SWITCHES:
        if text.lower() in {"on", "true", "yes", "1"}:
            return True
        if text.lower() in {"off", "false", "no", "0"}:
            return False
        raise ValueError(f"{name} takes on or off")
    if name == "temperature" and text.lower() in {"default", "none"}:
        return None
    probe = {
        "model": "m",
        "system_prompt": "",
        "max_output_tokens": 1024,
        name: text,
    }
    try:
        return getattr(TurnConfig.model_validate(probe), name)
    except ValidationError as exc:
        reason = exc.errors(include_input=False)[0]["msg"]
        raise ValueError(f"{name}: {reason}") from None


def choose_model(config: TurnConfig, event: Event, models: ModelSettings) -> str:
    """The turn's model: the configured one, unless a routing rule picks the strong one."""
    long_message = (
        models.routing_strong_min_chars is not None
        and len(event.text) >= models.routing_strong_min_chars
    )
    has_images = models.routing_strong_for_images and any(
        a.kind == "image" for a in event.attachments
    )
    return models.strong if long_message or has_images else config.model
