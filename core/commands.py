"""The engine's commands, which adapters expose as slash commands."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from core.access import is_admin
from core.context.summaries import ChannelSummaries
from core.conversation.memory import Memory, render_summary
from core.conversation.overrides import OVERRIDABLE, parse_override, resolve_config
from core.events import Event, OutboundFile
from core.governance.budgets import day_start, month_start
from core.llm.tokens import TokenCounter
from core.schedules.manage import ScheduleCommands
from core.settings import Settings
from core.store import Store, StoreError
from core.store.overrides import scope_chain
from core.tools import invoke
from core.tools.catalog import ToolSet, notes, switchable
from core.tools.context import ToolContexts
from core.tools.loop import enabled_tools
from core.tools.slash import (
    UsageError,
    list_tools,
    parse_slash,
    slash_arguments,
    suggest,
    usage_line,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command answers; `public` results are posted in the conversation for everyone."""

    text: str
    public: bool = False
    ok: bool = True
    files: tuple[OutboundFile, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What command handlers may use; built once in the composition root."""

    settings: Settings
    store: Store
    memory: Memory
    tokens: TokenCounter
    tool_contexts: ToolContexts
    tools: ToolSet | None = None  # None: tools are turned off (TOOLS_ENABLED)
    summaries: ChannelSummaries | None = None  # None: no model for /summarize (tests)
    schedules: ScheduleCommands | None = None  # None: no scheduled work (tests)

    def admin(self, event: Event) -> bool:
        """Whether the event's author is an admin."""
        return is_admin(event.user, self.settings.access.admin_user_ids)


Handler = Callable[[CommandContext, Event, str], Awaitable[CommandResult]]


def split_command(text: str) -> tuple[str, str] | None:
    """`/name args` typed in a message (e.g. `@bot /reset` in a Slack thread), else None."""
    match = re.match(r"^/(\w[\w-]*)\s*(.*)$", text.strip(), re.DOTALL)
    return (match.group(1), match.group(2)) if match else None


def _scope(event: Event, name: str) -> str:
    workspace, channel, thread = scope_chain(event.key)
    return {"workspace": workspace, "channel": channel, "thread": thread}[name]


async def reset(ctx: CommandContext, event: Event, _args: str) -> CommandResult:
    """Start the conversation over; earlier messages stay stored for audit but are not sent."""
    await ctx.store.conversations.reset(event.key)
    return CommandResult("Conversation reset: I no longer see the earlier messages.", public=True)


async def pin(ctx: CommandContext, event: Event, args: str) -> CommandResult:
    """Pin a note (or, with no text, my last reply) so it is always part of the context."""
    conversation = await ctx.store.conversations.ensure(event.key)
    text = args.strip()
    if not text:
        last = [m for m in await ctx.store.messages.all(conversation) if m.role == "assistant"]
        if not last:
            return CommandResult(
                "Nothing to pin: give the text, like `/pin our deadline is May 3`.", ok=False
            )
        text = last[-1].content
    pin_id = await ctx.store.pins.add(conversation, text, ctx.tokens.count(text), event.user.id)
    return CommandResult(f"Pinned as #{pin_id}.", public=True)


async def unpin(ctx: CommandContext, event: Event, args: str) -> CommandResult:
    """Remove a pin by number, or all pins with `all`."""
    conversation = await ctx.store.conversations.ensure(event.key)
    target = args.strip().lstrip("#")
    if target == "all":
        count = await ctx.store.pins.remove(conversation, None)
        return CommandResult(f"Removed {count} pin(s).", public=True)
    if not target.isdigit():
        return CommandResult("usage: /unpin <number> | all", ok=False)
    if await ctx.store.pins.remove(conversation, int(target)):
        return CommandResult(f"Unpinned #{target}.", public=True)
    return CommandResult(f"There is no pin #{target} in this conversation.", ok=False)


async def memory(ctx: CommandContext, event: Event, _args: str) -> CommandResult:
    """Show what I remember here: summary, pins and the size of the recent window."""
    conversation = await ctx.store.conversations.ensure(event.key)
    config = await resolve_config(ctx.settings, ctx.store, event.key)
    context = await ctx.memory.context(
        conversation, instructions=config.system_prompt, budget=config.budget
    )
    pins = await ctx.store.pins.list(conversation)
    lines = [
        f"Recent window: {context.window_messages} messages, {context.window_tokens} tokens "
        f"(budget {config.budget}, model {config.model})."
    ]
    lines.append(
        "Pins:\n" + "\n".join(f"#{p.id} {p.text}" for p in pins) if pins else "Pins: none."
    )
    summary = context.summary
    lines.append(render_summary(summary) if not summary.empty else "Summary: none yet.")
    return CommandResult("\n\n".join(lines))


async def config(ctx: CommandContext, event: Event, args: str) -> CommandResult:
    """Show settings, or (admins) set one: `/config <workspace|channel|thread> <name> <value>`."""
    try:
        words = shlex.split(args)
    except ValueError as exc:
        return CommandResult(f"Could not read the arguments: {exc}.", ok=False)
    if not words:
        current = await resolve_config(ctx.settings, ctx.store, event.key)
        lines = [f"{name}: {getattr(current, name)!r}" for name in OVERRIDABLE]
        return CommandResult("Settings here:\n" + "\n".join(lines))
    if not ctx.admin(event):
        return CommandResult("Only workspace admins can change settings.", ok=False)
    usage = "usage: /config <workspace|channel|thread> <name> <value|clear>; names: " + ", ".join(
        f"{n} ({d})" for n, d in OVERRIDABLE.items()
    )
    if len(words) < 3 or words[0] not in {"workspace", "channel", "thread"}:
        return CommandResult(usage, ok=False)
    scope_name, name, raw = words[0], words[1], " ".join(words[2:])
    scope = _scope(event, scope_name)
    if raw == "clear":
        await ctx.store.scoped.clear(scope, name, event.user.id)
        return CommandResult(f"Cleared {name} for this {scope_name}.")
    try:
        value = parse_override(name, raw)
    except ValueError as exc:
        return CommandResult(f"{exc}\n{usage}", ok=False)
    await ctx.store.scoped.set(scope, name, value, event.user.id)
    return CommandResult(f"Set {name} for this {scope_name}.")


async def model(ctx: CommandContext, event: Event, args: str) -> CommandResult:
    """Show the model used here, or (admins) set this channel's model: `/model <name>`."""
    name = args.strip()
    if not name:
        current = await resolve_config(ctx.settings, ctx.store, event.key)
        return CommandResult(f"Model here: {current.model}.")
    return await config(ctx, event, f"channel model {shlex.quote(name)}")


async def usage(ctx: CommandContext, event: Event, _args: str) -> CommandResult:
    """Your tokens and cost today and this month (admins also see the workspace and top users)."""
    now = time.time()
    platform, workspace = event.platform.value, event.workspace
    lines = []
    for label, since in (("Today", day_start(now)), ("This month", month_start(now))):
        mine = await ctx.store.usage.totals(platform, workspace, since, user_id=event.user.id)
        lines.append(
            f"{label}: {mine.prompt_tokens + mine.completion_tokens:,} tokens "
            f"({mine.prompt_tokens:,} in, {mine.completion_tokens:,} out), ${mine.cost_usd:.4f}."
        )
    if ctx.admin(event):
        month = month_start(now)
        total = await ctx.store.usage.totals(platform, workspace, month)
        lines.append(
            f"Workspace this month: {total.calls} model calls, "
            f"{total.prompt_tokens + total.completion_tokens:,} tokens, ${total.cost_usd:.4f}."
        )
        top = await ctx.store.usage.top_users(platform, workspace, month)
        if top:
            lines.append(
                "Top users: " + ", ".join(f"{user} ${cost:.4f}" for user, cost, _ in top) + "."
            )
        rated = await ctx.store.interactive.feedback_by_channel(platform, workspace, month)
        if rated:
            lines.append(
                "Feedback this month (👍 share): "
                + ", ".join(
                    f"{r.channel} {r.rate:.0%} ({r.positive}/{r.positive + r.negative})"
                    for r in rated
                )
                + "."
            )
    return CommandResult("\n".join(lines))


async def moderation(ctx: CommandContext, event: Event, _args: str) -> CommandResult:
    """(Admins) moderation report: counts by category over 30 days and the latest events."""
    if not ctx.admin(event):
        return CommandResult("Only workspace admins can see the moderation report.", ok=False)
    platform, workspace = event.platform.value, event.workspace
    counts = await ctx.store.moderation.counts(platform, workspace, time.time() - 30 * 86_400)
    recent = await ctx.store.moderation.recent(platform, workspace)
    lines = ["Moderation, last 30 days:"]
    lines += [f"{category}: {count}" for category, count in sorted(counts.items())] or ["none"]
    if recent:
        lines.append("Latest:")
        lines += [
            f"{datetime.fromtimestamp(e.created_at, UTC):%Y-%m-%d %H:%M} {e.direction} {e.action} "
            f"{', '.join(e.categories) or '-'} user {e.user_id} in {e.channel}: {e.excerpt}"
            for e in recent
        ]
    return CommandResult("\n".join(lines))


async def tool(ctx: CommandContext, event: Event, args: str) -> CommandResult:
    """Run a tool directly: `/tool <name> key=value ...`; `/tool` alone lists them."""
    if ctx.tools is None:
        return CommandResult("Tools are turned off on this server (TOOLS_ENABLED).", ok=False)
    config = await resolve_config(ctx.settings, ctx.store, event.key)
    available = {t.name: t for t in enabled_tools(ctx.tools, config.tool_switches) if t.slash}
    try:
        name, words = parse_slash(args)
        if not name:
            extra = notes(ctx.tools, config.tool_switches, wire=ctx.settings.openai.wire)
            return CommandResult("\n".join(["Tools here:", list_tools(available.values()), *extra]))
        chosen = available.get(name)
        if chosen is None:
            return CommandResult(suggest(name, available), ok=False)
        arguments = slash_arguments(chosen, words)
    except UsageError as exc:
        return CommandResult(str(exc), ok=False)
    files: list[OutboundFile] = []

    async def keep(file: OutboundFile) -> None:
        files.append(file)

    tool_ctx = ctx.tool_contexts.for_event(event, keep)
    result = await invoke(
        chosen, arguments, tool_ctx, default_timeout=ctx.settings.tools.timeout_seconds
    )
    if not result.ok and result.output.startswith("invalid arguments"):
        return CommandResult(f"{result.output}\n{usage_line(chosen)}", ok=False)
    return CommandResult(result.output, public=result.ok, ok=result.ok, files=tuple(files))


async def tools(ctx: CommandContext, event: Event, args: str) -> CommandResult:
    """(Admins) turn tools on or off here: `/tools <enable|disable> <name> [channel|workspace]`."""
    words = args.split()
    if not words:
        return await tool(ctx, event, "")
    if not ctx.admin(event):
        return CommandResult("Only workspace admins can turn tools on or off.", ok=False)
    if len(words) not in (2, 3) or words[0] not in {"enable", "disable"}:
        return CommandResult("usage: /tools <enable|disable> <name> [channel|workspace]", ok=False)
    action, name = words[0], words[1]
    scope_name = words[2] if len(words) == 3 else "channel"
    if ctx.tools is None or not switchable(ctx.tools, name):
        return CommandResult(f"There is no tool named {name!r}.", ok=False)
    if scope_name not in {"channel", "workspace"}:
        return CommandResult("The scope is channel or workspace.", ok=False)
    await ctx.store.scoped.set(
        _scope(event, scope_name), f"tool.{name}", action == "enable", event.user.id
    )
    return CommandResult(f"{name} is now {action}d for this {scope_name}.")


async def summarize(ctx: CommandContext, event: Event, args: str) -> CommandResult:
    """Summarize a channel you are in: `/summarize [#channel] [since]` (default: here, 24h)."""
    if ctx.summaries is None:
        return CommandResult("Summaries are not available on this server.", ok=False)
    summary = await ctx.summaries.summarize(event, args)
    return CommandResult(summary.text, ok=summary.ok)


async def digest(ctx: CommandContext, event: Event, args: str) -> CommandResult:
    """A digest of this channel: `/digest daily 09:00 [zone]`, `weekly mon 09:00`, `off`, `now`."""
    if ctx.schedules is None:
        return CommandResult("Scheduled work is not available on this server.", ok=False)
    answer = await ctx.schedules.digest(event, args, admin=ctx.admin(event))
    return CommandResult(answer.text, public=answer.public, ok=answer.ok)


async def schedule(ctx: CommandContext, event: Event, args: str) -> CommandResult:
    """Run a prompt on a schedule: `/schedule "every monday 9:00" <prompt>`, `list`, `cancel N`."""
    if ctx.schedules is None:
        return CommandResult("Scheduled work is not available on this server.", ok=False)
    answer = await ctx.schedules.schedule(event, args, admin=ctx.admin(event))
    return CommandResult(answer.text, public=answer.public, ok=answer.ok)


async def help_command(ctx: CommandContext, _event: Event, _args: str) -> CommandResult:
    """List the commands."""
    return CommandResult(help_text(HANDLERS))


HANDLERS: dict[str, Handler] = {
    "help": help_command,
    "tool": tool,
    "tools": tools,
    "usage": usage,
    "moderation": moderation,
    "reset": reset,
    "pin": pin,
    "unpin": unpin,
    "memory": memory,
    "config": config,
    "model": model,
    "summarize": summarize,
    "digest": digest,
    "schedule": schedule,
}


def help_text(commands: dict[str, Handler]) -> str:
    """One line per command, from the handlers' docstrings."""
    return "\n".join(
        f"/{name} — {(handler.__doc__ or '').strip().splitlines()[0]}"
        for name, handler in sorted(commands.items())
    )


class Commands:
    """The engine's command table: handlers by name, run with one shared context."""

    def __init__(self, context: CommandContext, handlers: dict[str, Handler] | None = None) -> None:
        self.context = context
        self.handlers = dict(HANDLERS if handlers is None else handlers)

    def __contains__(self, name: object) -> bool:
        return name in self.handlers

    def help(self) -> str:
        """One line per command."""
        return help_text(self.handlers)

    async def run(self, event: Event, name: str, args: str = "") -> CommandResult:
        """Run a command; an unknown name answers with the list of commands."""
        handler = self.handlers.get(name)
        if handler is None:
            return CommandResult(f"Unknown command /{name}. Commands:\n{self.help()}", ok=False)
        with structlog.contextvars.bound_contextvars(conversation=str(event.key), command=name):
            try:
                return await handler(self.context, event, args)
            except StoreError as exc:
                log.error("command_failed", error=str(exc))
                return CommandResult("The database is unavailable; please try again.", ok=False)
