"""The server's settings: the core's groups plus each platform adapter's."""

from __future__ import annotations

from bots.discord.settings import DiscordSettings
from bots.slack.settings import SlackSettings
from core.settings import Settings, load_settings


class AppSettings(Settings):
    """Everything `python -m bots` reads from its environment."""

    slack: SlackSettings
    discord: DiscordSettings


def load_app_settings(**overrides: object) -> AppSettings:
    """Read every group; see `core.settings.load_settings`."""
    return load_settings(AppSettings, **overrides)
