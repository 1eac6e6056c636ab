"""The Slack adapter's settings."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from core.settings import SettingsGroup, check_url

DEFAULT_COMMANDS = {
    "/ask": "ask",
    "/reset": "reset",
    "/model": "model",
    "/usage": "usage",
    "/tool": "tool",
    "/memory": "memory",
    "/config": "config",
    "/summarize": "summarize",
}


class SlackSettings(SettingsGroup):
    """Tokens, the Web API's URL, and how the bot behaves in channels and threads."""

    model_config = SettingsConfigDict(env_prefix="SLACK_")

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    follow_threads: bool = True
    ignore_bots: bool = True
    native_streaming: bool = True
    commands: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_COMMANDS),
        description='JSON {"/slash-command": "engine command"}',
    )

    _url = field_validator("api_url")(check_url)
