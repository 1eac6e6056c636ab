"""Discord's interactions for the engine's controls: button clicks (type 3) and the comment
form's submission (type 5), handled by one listener registered at start, so buttons posted
before a restart keep working. Each answers within Discord's 3 seconds (defer first, or the
form itself), then acts and follows up ephemerally."""

from __future__ import annotations

from typing import Any

import discord
import structlog

from bots.discord import convert
from bots.discord.components import comment_modal, comment_offer_view, submitted_comment
from bots.discord.errors import DiscordCallFailed, explained
from bots.discord.reply import channel_reply
from core.engine import Engine
from core.events import Reply
from core.interactive.clicks import UNKNOWN, Click
from core.interactive.controls import PREFIX, Action, parse_control_id

log = structlog.get_logger(__name__)

HANDLED = (discord.InteractionType.component, discord.InteractionType.modal_submit)


class DiscordControls:
    """The `on_interaction` listener for `parley:` custom ids."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type not in HANDLED:
            return  # slash commands and autocomplete: the command tree's
        data: Any = interaction.data or {}
        custom_id = data.get("custom_id") if isinstance(data, dict) else None
        if not isinstance(custom_id, str) or not custom_id.startswith(f"{PREFIX}:"):
            return  # another component, not ours
        try:
            await self._handle(interaction, custom_id, data)
        except (discord.HTTPException, DiscordCallFailed) as exc:  # e.g. the deadline passed
            log.error("discord_interaction_failed", error=str(exc), custom_id=custom_id)

    async def _handle(self, interaction: discord.Interaction, custom_id: str, data: Any) -> None:
        control = parse_control_id(custom_id)
        component = interaction.type == discord.InteractionType.component
        if control is not None and component and control.action == Action.COMMENT:
            await interaction.response.send_modal(comment_modal(custom_id))  # type 9, in time
            return
        await interaction.response.defer(ephemeral=True, thinking=False)  # the 3-second answer
        if control is None:
            await self._tell(interaction, UNKNOWN)
            return
        key = convert.interaction_key(interaction)
        comment = None if component else submitted_comment(data)
        click = Click(
            control,
            convert.interaction_user(interaction),
            key.platform,
            key.workspace,
            key.channel,
            comment=comment,
        )
        message = interaction.message

        def replace() -> Reply:
            channel = interaction.channel
            existing = str(message.id) if message is not None else None
            return channel_reply(channel, interaction.user.id, existing=existing)

        result = await self._engine.interactions.click(click, replace)
        if result.updated and message is not None:
            await explained(message.edit(content=result.updated, view=None))
        view = (
            comment_offer_view(control.ref, control.attempt, result.offer_comment)
            if result.offer_comment
            else None
        )
        await self._tell(interaction, result.text, view)

    async def _tell(
        self, interaction: discord.Interaction, text: str, view: discord.ui.View | None = None
    ) -> None:
        if not text:
            return
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        await explained(interaction.followup.send(text, ephemeral=True, **extra))
