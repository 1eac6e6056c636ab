"""Typed settings from the environment and `.env`, in groups; names follow the runtime contract.

Each group reads its own environment variables (the names in the README and `shared/CONTRACT.md`
stay exactly as they are); code reads `settings.openai.base_url`, `settings.moderation.enabled`
and so on. Platform groups (Slack, Discord) live with their adapters and join in `bots`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from core.llm.defaults import DEFAULT_CONTEXT_WINDOWS, DEFAULT_PRICES

OPENAI_DEFAULT_HOST = "api.openai.com"
OPENAI_DEFAULT_BASE_URL = f"https://{OPENAI_DEFAULT_HOST}/v1"


def env(name: str) -> Any:
    """The environment variable a field reads, when it is not the group's prefix + field name."""
    return AliasChoices(name.lower(), name)


def split_list(value: object) -> object:
    """`a, b,c` -> ["a", "b", "c"] for comma-separated settings."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def check_url(value: str | None) -> str | None:
    """An absolute http(s) or ws(s) URL, or None for empty."""
    if value is None or value == "":
        return None
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https", "ws", "wss"} or not parsed.netloc:
        raise ValueError("must be an absolute http(s) or ws(s) URL")
    return value


class SettingsGroup(BaseSettings):
    """One group of settings, read from the environment and `.env`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
        populate_by_name=True,
    )

    @classmethod
    def env_defaults(cls) -> dict[str, str]:
        """Environment variable -> its default as written in `.env` ('' for none)."""
        names = cls.env_names()
        return {
            names[name]: render_default(info.get_default(call_default_factory=True))
            for name, info in cls.model_fields.items()
        }

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name -> the environment variable it reads (upper case)."""
        prefix = str(cls.model_config.get("env_prefix", ""))
        names = {}
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                names[name] = str(alias.choices[-1]).upper()
            elif isinstance(alias, str):
                names[name] = alias.upper()
            else:
                names[name] = (prefix + name).upper()
        return names


def render_default(value: object) -> str:
    """A default as it would be written in `.env` (empty for none, JSON for tables)."""
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list | frozenset | set):
        return ",".join(
            str(v) for v in (sorted(value) if isinstance(value, frozenset | set) else value)
        )
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class OpenAISettings(SettingsGroup):
    """The OpenAI-compatible API: where it is, how to authenticate, how to retry."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_")

    api_key: SecretStr | None = None
    base_url: str | None = None
    wire_api: Literal["responses", "chat", "auto"] = "auto"
    organization: str | None = None
    project: str | None = None
    timeout: float = Field(60.0, gt=0)
    retry_attempts: int = Field(4, ge=1, le=20)
    retry_max_seconds: float = Field(60.0, gt=0)
    retry_initial_wait: float = Field(0.5, ge=0)
    vector_store_ids: Annotated[tuple[str, ...], NoDecode] = ()
    code_interpreter: bool = False
    web_search: bool = False
    moderation_base_url: str | None = None
    moderation_api_key: SecretStr | None = None

    _split = field_validator("vector_store_ids", mode="before")(split_list)
    _url = field_validator("base_url", "moderation_base_url")(check_url)

    @field_validator("wire_api", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def wire(self) -> Literal["responses", "chat"]:
        """The wire API actually used: `auto` picks Responses for OpenAI's own host only."""
        if self.wire_api != "auto":
            return self.wire_api
        return "responses" if self.is_openai else "chat"

    @property
    def is_openai(self) -> bool:
        """True when the base URL is OpenAI's own (or unset, the SDK's default)."""
        host = urlparse(self.base_url).hostname if self.base_url else None
        return host in (None, OPENAI_DEFAULT_HOST)

    @property
    def moderation_separate(self) -> bool:
        """True when moderation has its own endpoint (`OPENAI_MODERATION_BASE_URL` or `_API_KEY`)."""
        return self.moderation_base_url is not None or self.moderation_api_key is not None

    @property
    def moderation_url(self) -> str:
        """The base URL moderation requests go to: its own, else OpenAI's when only its key is set,
        else the chat API's."""
        if self.moderation_base_url is not None:
            return self.moderation_base_url
        if self.moderation_api_key is not None:
            return OPENAI_DEFAULT_BASE_URL
        return self.base_url or OPENAI_DEFAULT_BASE_URL


class ModelSettings(SettingsGroup):
    """Which models run, with what instructions and limits, and what they cost."""

    chat: str = Field("gpt-6-luna", validation_alias=env("OPENAI_MODEL"))
    strong: str = Field("gpt-6.1-sol", validation_alias=env("OPENAI_STRONG_MODEL"))
    summary: str = Field("gpt-6-luna", validation_alias=env("OPENAI_SUMMARY_MODEL"))
    transcription: str = Field("gpt-transcribe", validation_alias=env("OPENAI_TRANSCRIPTION_MODEL"))
    embedding: str = Field("text-embedding-3-small", validation_alias=env("OPENAI_EMBEDDING_MODEL"))
    moderation: str = Field(
        "omni-moderation-latest", validation_alias=env("OPENAI_MODERATION_MODEL")
    )
    image: str = Field("gpt-image-1", validation_alias=env("OPENAI_IMAGE_MODEL"))
    system_prompt: str = Field(
        "You are a helpful assistant in a team chat. Answer concisely and use Markdown sparingly.",
        validation_alias=env("SYSTEM_PROMPT"),
    )
    temperature: float | None = Field(None, ge=0, le=2, validation_alias=env("TEMPERATURE"))
    max_output_tokens: int = Field(1024, ge=16, validation_alias=env("MAX_OUTPUT_TOKENS"))
    prices: dict[str, tuple[float, float, float]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        validation_alias=env("MODEL_PRICES"),
        description='JSON {"model": [input, cached_input, output]} in USD per 1M tokens',
    )
    shutdown_warning_days: int = Field(
        30, ge=0, validation_alias=env("MODEL_SHUTDOWN_WARNING_DAYS")
    )
    routing_strong_min_chars: int | None = Field(
        None, ge=1, validation_alias=env("ROUTING_STRONG_MIN_CHARS")
    )
    routing_strong_for_images: bool = Field(
        False, validation_alias=env("ROUTING_STRONG_FOR_IMAGES")
    )
    low_confidence_logprob: float | None = Field(
        None, lt=0, validation_alias=env("LOW_CONFIDENCE_LOGPROB")
    )


class MemorySettings(SettingsGroup):
    """How much of a conversation the model sees, and where the conversation lives."""

    context_window: int = Field(128_000, ge=1024, validation_alias=env("CONTEXT_WINDOW"))
    context_windows: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_CONTEXT_WINDOWS),
        validation_alias=env("MODEL_CONTEXT_WINDOWS"),
        description='JSON {"model": tokens}',
    )
    budget_tokens: int = Field(16_000, ge=512, validation_alias=env("CONTEXT_BUDGET_TOKENS"))
    margin_tokens: int = Field(512, ge=0, validation_alias=env("CONTEXT_MARGIN_TOKENS"))
    summary_enabled: bool = Field(True, validation_alias=env("SUMMARY_ENABLED"))
    summary_trigger: float = Field(0.75, gt=0, le=1, validation_alias=env("SUMMARY_TRIGGER"))
    summary_keep: float = Field(0.35, gt=0, lt=1, validation_alias=env("SUMMARY_KEEP"))
    summary_max_input_tokens: int = Field(
        8_000, ge=256, validation_alias=env("SUMMARY_MAX_INPUT_TOKENS")
    )
    summary_retry_seconds: float = Field(60.0, ge=0, validation_alias=env("SUMMARY_RETRY_SECONDS"))
    backend: Literal["local", "openai"] = Field(
        "local", validation_alias=env("CONVERSATION_BACKEND")
    )
    max_attachment_mb: int = Field(20, ge=1, le=500, validation_alias=env("MAX_ATTACHMENT_MB"))

    def window_of(self, model: str) -> int:
        """The context window of `model` (dated snapshots match their family)."""
        if model in self.context_windows:
            return self.context_windows[model]
        family = [n for n in self.context_windows if model.startswith(n + "-")]
        return self.context_windows[max(family, key=len)] if family else self.context_window


class ModerationRule(BaseModel):
    """Per-category moderation rule: act when the score reaches the threshold."""

    threshold: float = Field(0.5, gt=0, le=1)
    action: Literal["allow", "flag", "block"] = "block"


class ModerationSettings(SettingsGroup):
    """OpenAI's moderation endpoint, on input and output."""

    model_config = SettingsConfigDict(env_prefix="MODERATION_")

    enabled: bool = True
    fail_open: bool = False
    threshold: float = Field(0.5, gt=0, le=1)
    action: Literal["allow", "flag", "block"] = "block"
    policy: dict[str, ModerationRule] = Field(
        default_factory=dict,
        description='JSON {"category": {"threshold": 0.8, "action": "allow|flag|block"}}',
    )
    keep_text: bool = False
    output_chars: int = Field(400, ge=50)


class BudgetSettings(SettingsGroup):
    """Spending limits (USD, unset = unlimited) and request rates."""

    model_config = SettingsConfigDict(env_prefix="BUDGET_")

    user_daily_usd: float | None = Field(None, ge=0)
    user_monthly_usd: float | None = Field(None, ge=0)
    workspace_daily_usd: float | None = Field(None, ge=0)
    workspace_monthly_usd: float | None = Field(None, ge=0)
    admins_exempt: bool = True
    rate_limit_per_minute: int | None = Field(
        None, ge=1, validation_alias=env("RATE_LIMIT_PER_MINUTE")
    )


class RedactionSettings(SettingsGroup):
    """Redaction of e-mails, phone numbers, cards, IBANs and secrets before text leaves."""

    model_config = SettingsConfigDict(env_prefix="REDACT_")

    enabled: bool = False
    store: Literal["original", "redacted"] = "original"


class ToolSettings(SettingsGroup):
    """Plugin tools offered to the model and to people."""

    enabled: bool = Field(True, validation_alias=env("TOOLS_ENABLED"))
    timeout_seconds: float = Field(30.0, gt=0, validation_alias=env("TOOL_TIMEOUT_SECONDS"))
    max_steps: int = Field(5, ge=1, le=50, validation_alias=env("TOOL_MAX_STEPS"))


class InteractiveSettings(SettingsGroup):
    """Controls on finished replies, and approvals of tool calls."""

    reply_controls: bool = Field(True, validation_alias=env("REPLY_CONTROLS"))
    tool_approval_minutes: float = Field(
        10.0, gt=0, le=10_080, validation_alias=env("TOOL_APPROVAL_MINUTES")
    )


class ScheduleSettings(SettingsGroup):
    """Scheduled work: channel digests and recurring prompts (core/schedules)."""

    digest_batch: bool = Field(False, validation_alias=env("DIGEST_BATCH"))
    min_minutes: float = Field(15.0, ge=1, le=1440, validation_alias=env("SCHEDULE_MIN_MINUTES"))
    time_zone: str = Field("UTC", min_length=1, validation_alias=env("SCHEDULE_TIME_ZONE"))
    poll_seconds: float = Field(30.0, gt=0, le=3600, validation_alias=env("SCHEDULE_POLL_SECONDS"))

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "is not a known time zone: use an IANA name such as Europe/Berlin or UTC"
            ) from None
        return value


class ConnectorSettings(SettingsGroup):
    """MCP servers as tool sources (core/connectors)."""

    config: str | None = Field(None, validation_alias=env("MCP_CONFIG"))
    mode: Literal["local", "hosted", "auto"] = Field("auto", validation_alias=env("MCP_MODE"))

    @field_validator("mode", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class StoreSettings(SettingsGroup):
    """The database, and how long its bookkeeping lasts."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_")

    url: str = "sqlite:///data/bot.db"
    busy_timeout_ms: int = Field(5000, ge=0)
    pool_size: int = Field(10, ge=1, le=1000)
    delivery_ttl_hours: float = Field(48.0, gt=0, validation_alias=env("DELIVERY_TTL_HOURS"))
    recovery_stale_seconds: float = Field(
        30.0, gt=0, validation_alias=env("RECOVERY_STALE_SECONDS")
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value.startswith("sqlite:///"):
            if not value.removeprefix("sqlite:///").strip("/"):
                raise ValueError("name the database file, e.g. sqlite:///data/bot.db")
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


class TurnSettings(SettingsGroup):
    """How many turns a process runs at once, how many may wait, and which processes run them."""

    max_concurrent: int = Field(
        1000, ge=1, le=100_000, validation_alias=env("MAX_CONCURRENT_TURNS")
    )
    queue_limit: int = Field(5000, ge=1, validation_alias=env("TURN_QUEUE_LIMIT"))
    runners: Annotated[frozenset[Literal["web", "worker"]], NoDecode] = Field(
        default=frozenset({"web", "worker"}), validation_alias=env("TURN_RUNNERS")
    )

    @field_validator("runners", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        parts = split_list(value.lower() if isinstance(value, str) else value)
        if isinstance(parts, list) and not parts:
            raise ValueError("name at least one of web, worker")
        return parts

    def runs_turns(self, role: str) -> bool:
        """Whether a process of this role (`web`, `worker`, or `run` for both) runs turns."""
        return role not in ("web", "worker") or role in self.runners


class ServerSettings(SettingsGroup):
    """The HTTP server's port and processes."""

    port: int = Field(3000, ge=0, le=65535, validation_alias=env("PORT"))
    web_concurrency: int = Field(1, ge=1, le=64, validation_alias=env("WEB_CONCURRENCY"))
    shutdown_drain_seconds: float = Field(
        25.0, ge=0, validation_alias=env("SHUTDOWN_DRAIN_SECONDS")
    )
    metrics_port: int | None = Field(None, ge=0, le=65535, validation_alias=env("METRICS_PORT"))
    metrics_host: str = Field("127.0.0.1", min_length=1, validation_alias=env("METRICS_HOST"))
    metrics_token: SecretStr | None = Field(None, validation_alias=env("METRICS_TOKEN"))


class LogSettings(SettingsGroup):
    """Log level and format."""

    model_config = SettingsConfigDict(env_prefix="LOG_")

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] | None = None

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class KeySettings(SettingsGroup):
    """The key that seals secrets at rest (Slack installations' tokens; see core/crypto.py)."""

    secret_key: SecretStr | None = Field(None, validation_alias=env("SECRET_KEY"))


class AccessSettings(SettingsGroup):
    """Who is an admin beyond what the platform reports."""

    admin_user_ids: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), validation_alias=env("ADMIN_USER_IDS")
    )

    _split = field_validator("admin_user_ids", mode="before")(split_list)


class AdminSettings(SettingsGroup):
    """The admin site (`/admin`) and how long message text is kept."""

    model_config = SettingsConfigDict(env_prefix="ADMIN_")

    token: SecretStr | None = None
    port: int | None = Field(None, ge=0, le=65535)
    host: str = Field("127.0.0.1", min_length=1)
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    trust_proxy: bool = False
    retention_days: float | None = Field(None, gt=0, validation_alias=env("RETENTION_DAYS"))

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError(
                "must be at least 16 characters: use a long random string, e.g. the output of "
                "`openssl rand -hex 24`"
            )
        return value


class Settings(BaseModel):
    """Everything the core reads from its environment, by group. Secrets are `SecretStr`.

    Build it with `load_settings()`; `bots` extends it with the platforms' groups.
    """

    model_config = ConfigDict(frozen=True)

    openai: OpenAISettings
    models: ModelSettings
    memory: MemorySettings
    moderation: ModerationSettings
    budgets: BudgetSettings
    redaction: RedactionSettings
    tools: ToolSettings
    interactive: InteractiveSettings
    schedules: ScheduleSettings
    connectors: ConnectorSettings
    store: StoreSettings
    turns: TurnSettings
    server: ServerSettings
    log: LogSettings
    access: AccessSettings
    keys: KeySettings
    admin: AdminSettings

    @model_validator(mode="after")
    def _summary_follows_chat(self) -> Self:
        """Off OpenAI, `OPENAI_SUMMARY_MODEL` defaults to `OPENAI_MODEL`: a compatible server
        serves the models it was started with, rarely OpenAI's default summary model."""
        models = self.models
        if not self.openai.is_openai and "summary" not in models.model_fields_set:
            summary = models.model_copy(update={"summary": models.chat})
            summary.model_fields_set.discard("summary")  # still a default, not a choice
            self.__dict__["models"] = summary  # frozen: set once, during validation
        return self

    @classmethod
    def groups(cls) -> dict[str, type[SettingsGroup]]:
        """Group name -> its class."""
        return {name: info.annotation for name, info in cls.model_fields.items()}  # type: ignore[misc]

    @classmethod
    def env_index(cls) -> dict[str, tuple[str, str]]:
        """Environment variable (lower case) -> (group, field)."""
        return {
            env_name.lower(): (group, field)
            for group, group_cls in cls.groups().items()
            for field, env_name in group_cls.env_names().items()
        }

    def replace(self, **changes: object) -> Self:
        """A copy with some settings changed, named as environment variables (`openai_base_url=…`)."""
        index = self.env_index()
        groups: dict[str, dict[str, object]] = {}
        for name, value in changes.items():
            group, field = index[name.lower()]
            groups.setdefault(group, {})[field] = value
        updated = {g: getattr(self, g).model_copy(update=v) for g, v in groups.items()}
        return self.model_copy(update=updated)

    def secrets(self) -> list[str]:
        """Every configured secret value, for log redaction."""
        found = []
        for group in self.groups():
            for value in dict(getattr(self, group)).values():
                if isinstance(value, SecretStr) and value.get_secret_value():
                    found.append(value.get_secret_value())
        password = urlparse(self.store.url).password
        return [*found, password] if password else found


S = TypeVar("S", bound=Settings)


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line, names it and says how to fix it."""


def load_settings(cls: type[S] = Settings, /, **overrides: object) -> S:  # type: ignore[assignment]
    """Read every group, with `overrides` named as environment variables (`openai_model=…`).

    `_env_file` (default `.env`) names the dotenv file, or None for none. Validation errors become
    one readable line without values.
    """
    env_file = overrides.pop("_env_file", ".env")
    index = cls.env_index()
    per_group: dict[str, dict[str, object]] = {group: {} for group in cls.groups()}
    for name, value in overrides.items():
        if name.lower() not in index:
            raise TypeError(f"unknown setting {name!r}")
        group, field = index[name.lower()]
        per_group[group][field] = value
    built: dict[str, SettingsGroup] = {}
    problems: list[str] = []
    for group, group_cls in cls.groups().items():
        try:
            built[group] = group_cls(_env_file=env_file, **per_group[group])  # type: ignore[call-arg]
        except ValidationError as exc:
            problems += describe_validation_error(exc, group_cls)
        except SourceError as exc:
            problems.append(_describe_source_error(exc, group_cls))
    if problems:
        raise SettingsError("invalid setting " + "; ".join(dict.fromkeys(problems)))
    return cls.model_validate(built)


def describe_validation_error(exc: ValidationError, group: type[SettingsGroup]) -> list[str]:
    """One phrase per bad setting naming it, where in it, and the fix; never the value."""
    names = group.env_names()
    by_alias = {env_name.lower(): env_name for env_name in names.values()}
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        head = loc[0] if loc else ""
        name = names.get(head) or by_alias.get(head.lower()) or head.upper() or "settings"
        where = ", ".join(p for p in loc[1:] if not p.isdigit())
        message = error["msg"].removeprefix("Value error, ")
        field = next((f for f, e in names.items() if e == name), None)
        shape = group.model_fields[field].description if field else None
        detail = f"{name}: {where}: {message}" if where else f"{name}: {message}"
        parts.append(f"{detail} (expected {shape})" if shape else detail)
    return list(dict.fromkeys(parts))


def _describe_source_error(exc: SourceError, group: type[SettingsGroup]) -> str:
    """A value that could not be parsed at all (malformed JSON): name it and the expected shape."""
    text = str(exc)
    for field, env_name in group.env_names().items():
        if f'"{field}"' in text or f'"{env_name.lower()}"' in text or env_name in text:
            shape = group.model_fields[field].description or "valid JSON"
            return f"{env_name}: not valid JSON; expected {shape}"
    return "a setting could not be parsed: check the JSON values in the environment and .env"
