"""The Slack adapter's settings."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from core.settings import SettingsGroup, check_url, split_list

DEFAULT_COMMANDS = {
    "/ask": "ask",
    "/reset": "reset",
    "/model": "model",
    "/usage": "usage",
    "/tool": "tool",
    "/memory": "memory",
    "/config": "config",
    "/summarize": "summarize",
    "/digest": "digest",
    "/schedule": "schedule",
}
# The bot scopes of docs/slack-manifest.yaml, asked for by `GET /slack/install`.
DEFAULT_SCOPES = (
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "groups:history",
    "groups:read",
    "im:history",
    "im:read",
    "im:write",
    "mpim:history",
    "mpim:read",
    "users:read",
)


class SlackSettings(SettingsGroup):
    """Tokens (one workspace) or the OAuth app's credentials (many), the Web API's URL, and how
    the bot behaves in channels and threads."""

    model_config = SettingsConfigDict(env_prefix="SLACK_")

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: Annotated[tuple[str, ...], NoDecode] = DEFAULT_SCOPES
    redirect_uri: str | None = None
    token_rotation: bool = False
    follow_threads: bool = True
    ignore_bots: bool = True
    native_streaming: bool = True
    commands: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_COMMANDS),
        description='JSON {"/slash-command": "engine command"}',
    )

    _url = field_validator("api_url", "redirect_uri")(check_url)
    _split = field_validator("scopes", mode="before")(split_list)

    @property
    def multi_workspace(self) -> bool:
        """True when the app installs into many workspaces (SLACK_CLIENT_ID): each team's own
        token comes from the database; SLACK_BOT_TOKEN is for one workspace only."""
        return bool(self.client_id)

    @property
    def enabled(self) -> bool:
        """True when Slack is configured at all (one token, or the OAuth app)."""
        return self.bot_token is not None or self.multi_workspace
