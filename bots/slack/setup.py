"""Building the Slack adapter for the configured mode: one token, or many installed workspaces."""

from __future__ import annotations

from bots.discord.client import application_id_of, invite_url
from bots.settings import AppSettings
from bots.slack.app import SlackAdapter
from bots.slack.install import SlackInstaller
from bots.slack.oauth_stores import SlackInstallationStore
from core.crypto import SecretBox
from core.engine import Engine
from core.store.installations import Installations


def discord_invite(settings: AppSettings) -> str | None:
    """The Discord invite URL for the install page, when the application is known."""
    application = application_id_of(settings.discord)
    return invite_url(application) if application is not None else None


def build_slack_adapter(settings: AppSettings, engine: Engine) -> SlackAdapter:
    """The adapter for SLACK_BOT_TOKEN, or, with SLACK_CLIENT_ID, for every installed workspace
    with the install routes (`check_platform_settings` has checked the settings)."""
    slack = settings.slack
    if not slack.multi_workspace:
        return SlackAdapter(slack, engine)
    assert settings.keys.secret_key is not None
    installations = Installations(
        engine.store.db, SecretBox(settings.keys.secret_key.get_secret_value())
    )
    installer = SlackInstaller(
        slack,
        SlackInstallationStore(installations),
        engine.store.oauth_states,
        discord_invite=discord_invite(settings),
    )
    return SlackAdapter(slack, engine, installations=installations, installer=installer)
