"""Typed settings from the environment and `.env`; names follow the runtime contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

OPENAI_DEFAULT_HOST = "api.openai.com"


# USD per 1M tokens: (input, cached input, output). Prices change: override with MODEL_PRICES (JSON).
DEFAULT_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-6-luna": (0.10, 0.01, 0.50),
    "gpt-6.1-sol": (2.00, 0.20, 10.00),
    "gpt-6-sol": (2.00, 0.20, 10.00),
    "gpt-6.2-sol": (2.00, 0.20, 10.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4o": (2.50, 1.25, 10.00),
}


# Context windows in tokens; a model not listed uses CONTEXT_WINDOW. Override with MODEL_CONTEXT_WINDOWS.
DEFAULT_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-6-luna": 400_000,
    "gpt-6-sol": 400_000,
    "gpt-6.1-sol": 400_000,
    "gpt-6.2-sol": 400_000,
    "gpt-6-astra": 400_000,
    "gpt-6.2-astra": 400_000,
    "gpt-6.1-terra": 400_000,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
}


class ModerationRule(BaseModel):
    """Per-category moderation rule: act when the score reaches the threshold."""

    threshold: float = Field(0.5, gt=0, le=1)
    action: Literal["allow", "flag", "block"] = "block"


class Settings(BaseSettings):
    """Everything the server reads from its environment. Secrets are `SecretStr`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    # OpenAI
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_wire_api: Literal["responses", "chat", "auto"] = "auto"
    openai_organization: str | None = None
    openai_project: str | None = None
    openai_timeout: float = Field(60.0, gt=0)
    openai_retry_attempts: int = Field(4, ge=1, le=20)
    openai_retry_max_seconds: float = Field(60.0, gt=0)
    openai_retry_initial_wait: float = Field(0.5, ge=0)

    # Models and generation
    openai_model: str = "gpt-6-luna"
    openai_strong_model: str = "gpt-6.1-sol"
    openai_summary_model: str = "gpt-6-luna"
    openai_transcription_model: str = "gpt-transcribe"
    openai_embedding_model: str = "text-embedding-3-small"
    openai_moderation_model: str = "omni-moderation-latest"
    openai_image_model: str = "gpt-image-1"
    system_prompt: str = (
        "You are a helpful assistant in a team chat. Answer concisely and use Markdown sparingly."
    )
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: int = Field(1024, ge=16)
    context_window: int = Field(128_000, ge=1024)
    model_context_windows: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_CONTEXT_WINDOWS)
    )
    context_budget_tokens: int = Field(16_000, ge=512)
    context_margin_tokens: int = Field(512, ge=0)
    summary_enabled: bool = True
    summary_trigger: float = Field(0.75, gt=0, le=1)
    summary_keep: float = Field(0.35, gt=0, lt=1)
    summary_max_input_tokens: int = Field(8_000, ge=256)
    summary_retry_seconds: float = Field(60.0, ge=0)
    model_prices: dict[str, tuple[float, float, float]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES)
    )
    model_shutdown_warning_days: int = Field(30, ge=0)

    # Moderation (OpenAI's moderation endpoint, on input and output)
    moderation_enabled: bool = True
    moderation_fail_open: bool = False
    moderation_threshold: float = Field(0.5, gt=0, le=1)
    moderation_action: Literal["allow", "flag", "block"] = "block"
    moderation_policy: dict[str, ModerationRule] = Field(default_factory=dict)
    moderation_keep_text: bool = False
    moderation_output_chars: int = Field(400, ge=50)

    # Budgets and limits (USD; unset = unlimited)
    budget_user_daily_usd: float | None = Field(None, ge=0)
    budget_user_monthly_usd: float | None = Field(None, ge=0)
    budget_workspace_daily_usd: float | None = Field(None, ge=0)
    budget_workspace_monthly_usd: float | None = Field(None, ge=0)
    rate_limit_per_minute: int | None = Field(None, ge=1)
    budget_admins_exempt: bool = True

    # Conversation state: our SQLite memory, or OpenAI Conversations (server-side)
    conversation_backend: Literal["local", "openai"] = "local"
    openai_vector_store_ids: Annotated[tuple[str, ...], NoDecode] = ()
    openai_code_interpreter: bool = False

    # Routing and confidence (optional)
    routing_strong_min_chars: int | None = Field(None, ge=1)
    routing_strong_for_images: bool = False
    low_confidence_logprob: float | None = Field(None, lt=0)

    max_attachment_mb: int = Field(20, ge=1, le=500)

    # Redaction of e-mails, phone numbers, cards, IBANs and secrets before text leaves for OpenAI
    redact_enabled: bool = False
    redact_store: Literal["original", "redacted"] = "original"

    # Tools (plugins)
    tools_enabled: bool = True
    tool_timeout_seconds: float = Field(30.0, gt=0)
    tool_max_steps: int = Field(5, ge=1, le=50)

    # Storage and server
    database_url: str = "sqlite:///data/bot.db"
    database_busy_timeout_ms: int = Field(5000, ge=0)
    database_pool_size: int = Field(10, ge=1, le=1000)
    recovery_stale_seconds: float = Field(30.0, gt=0)
    port: int = Field(3000, ge=0, le=65535)
    web_concurrency: int = Field(1, ge=1, le=64)
    delivery_ttl_hours: float = Field(48.0, gt=0)

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_follow_threads: bool = True
    slack_ignore_bots: bool = True
    slack_native_streaming: bool = True
    slack_commands: dict[str, str] = Field(
        default_factory=lambda: {
            "/ask": "ask",
            "/reset": "reset",
            "/model": "model",
            "/usage": "usage",
            "/tool": "tool",
            "/memory": "memory",
            "/config": "config",
        }
    )

    # Discord
    discord_token: SecretStr | None = None
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    discord_message_content: bool = True
    discord_ignore_bots: bool = True
    discord_reply_inline: bool = False
    discord_thread_archive_minutes: Literal[60, 1440, 4320, 10080] = 1440
    discord_shard_ids: Annotated[tuple[int, ...], NoDecode] = ()
    discord_shard_count: int | None = Field(None, ge=1)

    # Logging
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] | None = None

    # Administration
    admin_user_ids: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), validation_alias=AliasChoices("admin_user_ids", "ADMIN_USER_IDS")
    )

    @field_validator("discord_shard_ids")
    @classmethod
    def _check_shard_ids(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(shard < 0 for shard in value) or len(set(value)) != len(value):
            raise ValueError("use distinct shard numbers from 0, e.g. 0,1")
        return tuple(sorted(value))

    @field_validator(
        "admin_user_ids", "openai_vector_store_ids", "discord_shard_ids", mode="before"
    )
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level", "log_format", "openai_wire_api", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value.startswith("sqlite:///"):
            return value
        parsed = urlparse(value)
        if parsed.scheme in ("postgresql", "postgres"):
            try:
                parsed.port  # noqa: B018 - raises for a port that is not a number
            except ValueError:
                raise ValueError("the port of a postgresql:// URL must be a number") from None
            return value
        raise ValueError(
            "use sqlite:///relative/path.db, sqlite:////absolute/path.db or "
            "postgresql://user:password@host:5432/database"
        )

    @field_validator("openai_base_url", "slack_api_url", "discord_api_url", "discord_gateway_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parsed = urlparse(value)
        if parsed.scheme not in {"http", "https", "ws", "wss"} or not parsed.netloc:
            raise ValueError("must be an absolute http(s) or ws(s) URL")
        return value

    @property
    def database_path(self) -> Path:
        """The SQLite file path from a `sqlite:///` `DATABASE_URL`."""
        if not self.database_url.startswith("sqlite:///"):
            raise ValueError("DATABASE_URL is not a SQLite file")
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def wire_api(self) -> Literal["responses", "chat"]:
        """The wire API actually used: `auto` picks Responses for OpenAI's own host only."""
        if self.openai_wire_api != "auto":
            return self.openai_wire_api
        host = urlparse(self.openai_base_url).hostname if self.openai_base_url else None
        return "responses" if host in (None, OPENAI_DEFAULT_HOST) else "chat"

    def window_of(self, model: str) -> int:
        """The context window of `model` (dated snapshots match their family)."""
        if model in self.model_context_windows:
            return self.model_context_windows[model]
        family = [n for n in self.model_context_windows if model.startswith(n + "-")]
        return self.model_context_windows[max(family, key=len)] if family else self.context_window

    def secrets(self) -> list[str]:
        """Every configured secret value, for log redaction."""
        values = [
            self.openai_api_key,
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.discord_token,
        ]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        password = urlparse(self.database_url).password
        return [*found, password] if password else found


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line, names it and says how to fix it."""


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into one readable line without values."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad setting and the fix, never the value."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{name}: {message}")
    return "invalid setting " + "; ".join(parts)
