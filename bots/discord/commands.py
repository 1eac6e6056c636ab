"""Discord application commands mapped onto the engine's commands; each defers first."""

from __future__ import annotations

import io

import discord
import structlog
from discord import app_commands

from bots.discord import convert
from bots.discord.errors import DiscordCallFailed, explained
from bots.discord.reply import interaction_reply
from core.engine import STORE_FAILURE_MESSAGE, Engine
from core.store import StoreError

log = structlog.get_logger(__name__)


async def _run(interaction: discord.Interaction, engine: Engine, name: str, args: str = "") -> None:
    """Defer (the 3-second deadline), run an engine command, answer with a follow-up."""
    result = await engine.command(convert.interaction_event(interaction, args), name, args)
    files = [discord.File(io.BytesIO(f.data), filename=f.name) for f in result.files]
    followup = interaction.followup.send(
        result.text[:2000], ephemeral=not result.public, files=files
    )
    try:
        await explained(followup)
    except DiscordCallFailed as exc:
        log.error("discord_call_failed", command=name, error=str(exc))


# Where the commands may be used: in servers that added the bot, and (installed to a user's
# account) in DMs with the bot and in group DMs and other people's DMs, where Discord allows it.
INSTALLS = app_commands.AppInstallationType(guild=True, user=True)
CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)


def register_commands(tree: app_commands.CommandTree, engine: Engine) -> None:
    """/ask, /reset, /model, /usage, /summarize, /digest, /schedule, /tool (with tool names
    autocompleted), each installable to servers and to users and usable in servers, DMs and
    group DMs."""
    tree.allowed_installs = INSTALLS
    tree.allowed_contexts = CONTEXTS

    @tree.command(name="ask", description="Ask the assistant")
    @app_commands.describe(question="What do you want to know?")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.defer(thinking=True)
        event = convert.interaction_event(interaction, question)
        reply = interaction_reply(interaction)
        try:
            await engine.submit(event, reply)
        except StoreError as exc:
            log.error("message_not_stored", error=str(exc), conversation=str(event.key))
            try:
                await reply.finish(STORE_FAILURE_MESSAGE)
            except DiscordCallFailed as failed:
                log.error("discord_call_failed", command="ask", error=str(failed))

    @tree.command(name="reset", description="Start this conversation over")
    async def reset(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await _run(interaction, engine, "reset")

    @tree.command(name="model", description="Show (admins: set) the model used in this channel")
    async def model(interaction: discord.Interaction, name: str | None = None) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        await _run(interaction, engine, "model", name or "")

    @tree.command(name="usage", description="Your tokens and cost today and this month")
    async def usage(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        await _run(interaction, engine, "usage")

    @tree.command(name="summarize", description="Summarize a channel you are in")
    @app_commands.describe(channel="Which channel (default: this one)", since="e.g. 2h, 3d")
    async def summarize(
        interaction: discord.Interaction,
        channel: discord.TextChannel | None = None,
        since: str = "",
    ) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        where = f"<#{channel.id}> " if channel is not None else ""
        await _run(interaction, engine, "summarize", f"{where}{since}".strip())

    @tree.command(name="digest", description="A digest of this channel, daily or weekly")
    @app_commands.describe(
        when="daily 09:00 [Europe/Berlin], weekly mon 09:00, off or now (empty: what is set up)"
    )
    async def digest(interaction: discord.Interaction, when: str = "") -> None:
        await interaction.response.defer(thinking=True)
        await _run(interaction, engine, "digest", when)

    @tree.command(name="schedule", description="Run a prompt here on a schedule")
    @app_commands.describe(
        when='"every monday 9:00 [Europe/Berlin]", cron such as "0 9 * * mon", list, or cancel N',
        prompt="What to ask at those times",
    )
    async def schedule(interaction: discord.Interaction, when: str, prompt: str = "") -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        words = when.strip().strip('"')
        command = words.split(maxsplit=1)[0].lower() if words else ""
        args = words if command in ("list", "cancel", "help") else f'"{words}" {prompt}'.strip()
        await _run(interaction, engine, "schedule", args)

    @tree.command(name="tool", description="Run a tool directly (no name: list them)")
    @app_commands.describe(name="The tool", arguments='key=value pairs, e.g. expression="6*7"')
    async def tool(
        interaction: discord.Interaction, name: str | None = None, arguments: str = ""
    ) -> None:
        await interaction.response.defer(thinking=True)
        await _run(interaction, engine, "tool", f"{name or ''} {arguments}".strip())

    @tool.autocomplete("name")
    async def tool_names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        registry = engine.backends.registry
        names = registry.names() if registry is not None else []
        return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n][:25]
