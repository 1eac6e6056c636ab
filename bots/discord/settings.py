"""The Discord adapter's settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from core.settings import SettingsGroup, check_url, split_list


class DiscordSettings(SettingsGroup):
    """The bot token, where Discord is, how the bot behaves, and which shards this process runs."""

    model_config = SettingsConfigDict(env_prefix="DISCORD_")

    token: SecretStr | None = None
    application_id: int | None = Field(None, ge=1)
    api_url: str | None = None
    gateway_url: str | None = None
    message_content: bool = True
    ignore_bots: bool = True
    reply_inline: bool = False
    thread_archive_minutes: Literal[60, 1440, 4320, 10080] = 1440
    shard_ids: Annotated[tuple[int, ...], NoDecode] = ()
    shard_count: int | None = Field(None, ge=1)

    _split = field_validator("shard_ids", mode="before")(split_list)
    _urls = field_validator("api_url", "gateway_url")(check_url)

    @field_validator("shard_ids")
    @classmethod
    def _check_shard_ids(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(shard < 0 for shard in value) or len(set(value)) != len(value):
            raise ValueError("use distinct shard numbers from 0, e.g. 0,1")
        return tuple(sorted(value))
