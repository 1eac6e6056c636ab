"""The command line: run the server, its parts, the console, or maintenance commands."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import getpass
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import structlog

from bots.errors import StartupError, UsageError
from bots.settings import AppSettings, load_app_settings
from core.connectors import McpConfigError, mcp_secrets
from core.logging import configure_logging
from core.settings import SettingsError
from core.store import StoreError
from core.tools import ToolDefinitionError

if TYPE_CHECKING:  # imported when needed: metrics must see PROMETHEUS_MULTIPROC_DIR first
    from bots.services import Services

log = structlog.get_logger("bots")


class IncompleteError(Exception):
    """A maintenance command did only part of its work; running it again finishes it."""


NO_MODEL = (
    "no model is configured: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (an OpenAI-compatible "
    "server such as vLLM or Ollama), or add --offline to try it with simulated replies"
)


def program_name() -> str:
    """The program as invoked: `parley` (the installed script) or `python -m bots`."""
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "python -m bots" if invoked in ("", "__main__.py", "-m", "-c") else invoked


def version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("parley")
    except metadata.PackageNotFoundError:
        return "unknown"


# Each subcommand: its help line, and the settings it reads beyond the common ones
# (DATABASE_URL, LOG_LEVEL, LOG_FORMAT, and OPENAI_* for the model).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "every adapter whose settings are present, in one process (with none configured: the "
        "console)",
        "SLACK_*, DISCORD_*, PORT, OPENAI_*, and every model, memory and governance setting",
    ),
    "web": (
        "the HTTP server only (Slack events, /healthz, /metrics, the /admin site) on $PORT, in "
        "WEB_CONCURRENCY processes",
        "PORT, WEB_CONCURRENCY, SHUTDOWN_DRAIN_SECONDS, METRICS_PORT, METRICS_TOKEN, SLACK_BOT_TOKEN, "
        "SLACK_SIGNING_SECRET, SLACK_API_URL, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_SCOPES, "
        "SECRET_KEY, ADMIN_TOKEN, ADMIN_PORT, RETENTION_DAYS, OPENAI_*",
    ),
    "worker": (
        "the long-lived connections only (Discord gateway, Slack Socket Mode)",
        "DISCORD_TOKEN, DISCORD_API_URL, DISCORD_GATEWAY_URL, DISCORD_SHARD_*, SLACK_APP_TOKEN, "
        "SLACK_BOT_TOKEN, SHUTDOWN_DRAIN_SECONDS, OPENAI_*",
    ),
    "console": (
        "chat with the engine in this terminal",
        "OPENAI_API_KEY or OPENAI_BASE_URL (or --offline), OPENAI_MODEL",
    ),
    "migrate": ("apply database migrations (idempotent)", "DATABASE_URL"),
    "migrate-to": (
        "copy the database at DATABASE_URL into an empty one (SQLite to PostgreSQL or back); "
        "stop the servers first",
        "DATABASE_URL",
    ),
    "discord-sync": (
        "publish the Discord slash commands (after install or upgrade) and print the invite URL",
        "DISCORD_TOKEN, DISCORD_API_URL",
    ),
    "ingest": (
        "add files to the knowledge used by the bot",
        "OPENAI_API_KEY or OPENAI_BASE_URL, OPENAI_EMBEDDING_MODEL",
    ),
    "purge": (
        "erase one person's messages everywhere (and the answers to them, their pins, moderation "
        "excerpts, summaries and server-side conversations); tokens and cost stay counted",
        "DATABASE_URL, OPENAI_API_KEY or OPENAI_BASE_URL (to delete server-side conversations)",
    ),
    "export": (
        "write a conversation, a channel, or fine-tuning data from liked answers as JSON Lines",
        "DATABASE_URL, SYSTEM_PROMPT (the fine-tuning system message)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description="Chat-bot server: OpenAI models in Slack and Discord. Settings come from the "
        "environment and .env (see the README's Settings table).",
    )
    parser.add_argument("--version", action="version", version=f"parley {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str) -> argparse.ArgumentParser:
        summary, reads = SUBCOMMANDS[name]
        return commands.add_parser(
            name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. Reads: {reads}."
        )

    add("run").add_argument(
        "--offline", action="store_true", help="use the built-in model simulator"
    )
    add("web").add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    add("worker")
    add("console").add_argument(
        "--offline", action="store_true", help="use the built-in model simulator"
    )
    add("migrate")
    add("migrate-to").add_argument(
        "target_url", metavar="TARGET_URL", help="postgresql://… or sqlite:///…"
    )
    add("discord-sync").add_argument(
        "--guild",
        type=int,
        help="publish to this server only (instant; global commands can take up to an hour)",
    )
    ingest = add("ingest")
    ingest.add_argument("paths", nargs="+", type=Path, help="files or folders")
    ingest.add_argument(
        "--to-openai",
        action="store_true",
        help="upload into an OpenAI vector store for file_search (server-side backend) instead of "
        "the local knowledge base searched by the search_knowledge tool",
    )
    ingest.add_argument("--store", default="default", help="vector store name (with --to-openai)")
    add("purge").add_argument("--user", required=True, metavar="ID", help="the person's user id")
    export = add("export")
    what = export.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--conversation", metavar="KEY", help="a conversation key, as the admin site shows it"
    )
    what.add_argument("--channel", metavar="ID", help="every conversation in this channel id")
    what.add_argument(
        "--fine-tune",
        action="store_true",
        help="OpenAI chat fine-tuning examples from answers that got a 👍 (and no 👎)",
    )
    export.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    export.add_argument(
        "--unredacted",
        action="store_true",
        help="keep e-mails, phone numbers, cards, IBANs and keys as stored (not with --fine-tune)",
    )
    return parser


async def _with_services(
    settings: AppSettings, body: Callable[[Services], Awaitable[None]]
) -> None:
    from bots.services import build_services

    services = await build_services(settings)
    try:
        await body(services)
    finally:
        await services.close()


async def _migrate(settings: AppSettings) -> None:
    from core.store import connect

    async with connect(settings.store.url, busy_timeout_ms=settings.store.busy_timeout_ms) as db:
        applied = await db.migrate()
        version = await db.schema_version()
        print(f"database {db.describe()}: schema version {version}, applied {applied or 'none'}")


async def _migrate_to(settings: AppSettings, target_url: str) -> None:
    from core.store import connect
    from core.store.transfer import copy_database

    timeout = settings.store.busy_timeout_ms
    source = connect(settings.store.url, busy_timeout_ms=timeout)
    target = connect(target_url, busy_timeout_ms=timeout)
    async with source, target:
        counts = await copy_database(source, target)
    width = max(len(table) for table in counts)
    for table, rows in counts.items():
        print(f"{table:<{width}}  {rows}")
    where = target.describe()  # no password: the operator adds it back
    if target.dialect == "sqlite":
        where = f"sqlite:///{where}"
    print(
        f"copied {sum(counts.values())} rows from {source.describe()}: now set DATABASE_URL to "
        f"{where} on every server and start them again"
    )


async def _console(settings: AppSettings, offline: bool) -> None:
    if "level" not in settings.log.model_fields_set:  # the chat, not routine logs, unless asked
        configure_logging("warning", settings.log.format, settings.secrets())
    from bots.console import OFFLINE_BANNER, chat

    if offline:
        from simulator import Simulator

        async with Simulator() as simulator:
            print(OFFLINE_BANNER)
            offline_settings = settings.replace(
                openai_base_url=simulator.base_url, openai_wire_api="chat"
            )
            await _with_services(offline_settings, lambda s: chat(s.engine))
        return
    if settings.openai.api_key is None and settings.openai.base_url is None:
        raise UsageError(NO_MODEL)

    async def body(services: Services) -> None:
        from bots.preflight import preflight

        await preflight(services, settings, role="console")
        await chat(services.engine)

    await _with_services(settings, body)


async def _serve(
    settings: AppSettings,
    *,
    http: bool,
    connections: bool,
    reuse_port: bool = False,
    role: str = "run",
) -> None:
    """Run the HTTP server and/or the long-lived platform connections until stopped."""
    from bots.serve import check_platform_settings, run_server

    check_platform_settings(settings, http=http, connections=connections)

    async def body(services: Services) -> None:
        from bots.preflight import preflight

        await preflight(services, settings, role=role)
        await run_server(
            services, http=http, connections=connections, reuse_port=reuse_port, role=role
        )

    await _with_services(settings, body)


async def _discord_sync(settings: AppSettings, guild_id: int | None) -> None:
    if settings.discord.token is None:
        raise UsageError("DISCORD_TOKEN is not set: copy the bot token from the developer portal")
    from bots.discord.client import DiscordAdapter, invite_url

    async def body(services: Services) -> None:
        bot = DiscordAdapter(settings.discord, services.engine)
        names = await bot.sync_commands(guild_id)
        where = f"server {guild_id}" if guild_id else "all servers (may take up to an hour)"
        print(f"published {len(names)} commands to {where}: {', '.join(sorted(names))}")
        assert bot.application_id is not None
        print(f"invite the bot with: {invite_url(bot.application_id)}")

    await _with_services(settings, body)


async def _run(settings: AppSettings, offline: bool) -> None:
    platforms = settings.slack.enabled or settings.discord.token
    if not platforms:
        no_model = settings.openai.api_key is None and settings.openai.base_url is None
        await _console(settings, offline or no_model)
        return
    await _serve(settings, http=True, connections=True)


async def _ingest(settings: AppSettings, paths: list[Path], to_openai: bool, name: str) -> None:
    if settings.openai.api_key is None and settings.openai.base_url is None:
        raise UsageError(NO_MODEL.split(", or add")[0])
    from core.knowledge.vector_ingest import ingest_to_openai

    async def local(services: Services) -> None:
        report = await services.knowledge.ingest(
            paths, progress=lambda line: print(line, file=sys.stderr, flush=True)
        )
        print(
            f"added {len(report.added)} files ({report.chunks} chunks), unchanged {len(report.unchanged)}"
        )
        for line in report.skipped:
            print(f"skipped {line}")

    async def body(services: Services) -> None:
        report = await ingest_to_openai(services.openai, services.store, paths, name=name)
        print(f"vector store {report.vector_store_id} ({name})")
        print(f"uploaded {len(report.uploaded)}, unchanged {len(report.unchanged)}")
        for line in report.skipped:
            print(f"skipped {line}")
        print(f"use it with OPENAI_VECTOR_STORE_IDS={report.vector_store_id}")

    await _with_services(settings, body if to_openai else local)


def _actor() -> str:
    """Who runs a maintenance command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def _purge(settings: AppSettings, user_id: str) -> None:
    from core.lifecycle import erase_person

    async def body(services: Services) -> None:
        report = await erase_person(
            services.store, services.engine.backends.threads, user_id, actor=_actor()
        )
        print(report.summary())
        if not report.complete:
            raise IncompleteError("some server-side conversations are left: run it again")

    await _with_services(settings, body)


async def _export(settings: AppSettings, args: argparse.Namespace) -> None:
    from core.lifecycle import Exporter

    if args.fine_tune and args.unredacted:
        raise UsageError("--fine-tune data is always redacted: drop --unredacted")

    async def write(services: Services, out: TextIO) -> None:
        exporter = Exporter(services.store, settings)
        redacted = not args.unredacted
        if args.fine_tune:
            report = await exporter.fine_tune(out, actor=_actor())
        elif args.channel is not None:
            report = await exporter.channel(args.channel, out, actor=_actor(), redacted=redacted)
        else:
            found = await exporter.conversation(
                args.conversation, out, actor=_actor(), redacted=redacted
            )
            if found is None:
                raise UsageError(f"there is no conversation with the key {args.conversation!r}")
            report = found
        out.flush()
        rate = report.turns / report.seconds if report.seconds else 0.0
        print(
            f"exported {report.lines} lines ({report.turns} turns, {report.conversations} "
            f"conversations) in {report.seconds:.2f} s ({rate:,.0f} turns/s)",
            file=sys.stderr,
        )

    async def body(services: Services) -> None:
        if args.out is None:
            await write(services, sys.stdout)
            return
        with args.out.open("w", encoding="utf-8") as out:
            await write(services, out)

    await _with_services(settings, body)


def _share_metrics() -> None:
    """Several web processes: metrics go to a folder they share (removed at exit)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    folder = tempfile.mkdtemp(prefix="parley-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    atexit.register(shutil.rmtree, folder, True)


SERVER_COMMANDS = ("web", "worker", "run")


def run_loop(main: Coroutine[object, object, None], *, servers: bool) -> None:
    """Run `main` to the end: the servers on uvloop when it is installed (measured: less CPU
    per Slack turn, see the README's Benchmarks), everything else on the standard loop."""
    factory = None
    if servers:
        try:
            import uvloop
        except ImportError:  # not installed (Windows): the standard loop does the same, slower
            uvloop = None  # type: ignore[assignment]
        factory = uvloop.new_event_loop if uvloop is not None else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m bots` and the `parley` script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_app_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    secrets = [*settings.secrets(), *mcp_secrets(settings.connectors.config)]
    configure_logging(settings.log.level, settings.log.format, secrets)
    commands: dict[str, Callable[[], Coroutine[object, object, None]]] = {
        "migrate": lambda: _migrate(settings),
        "migrate-to": lambda: _migrate_to(settings, getattr(args, "target_url", "")),
        "discord-sync": lambda: _discord_sync(settings, getattr(args, "guild", None)),
        "console": lambda: _console(settings, args.offline),
        "web": lambda: _serve(
            settings,
            http=True,
            connections=False,
            reuse_port=getattr(args, "reuse_port", False),
            role="web",
        ),
        "worker": lambda: _serve(settings, http=False, connections=True, role="worker"),
        "run": lambda: _run(settings, args.offline),
        "purge": lambda: _purge(settings, getattr(args, "user", "")),
        "export": lambda: _export(settings, args),
        "ingest": lambda: _ingest(
            settings,
            getattr(args, "paths", []),
            getattr(args, "to_openai", False),
            getattr(args, "store", "default"),
        ),
    }
    if args.command in ("web", "run") and settings.server.web_concurrency > 1:
        _share_metrics()
    if getattr(args, "reuse_port", False):  # a WEB_CONCURRENCY worker
        from bots.workers import die_with_parent

        die_with_parent()
    try:
        run_loop(commands[args.command](), servers=args.command in SERVER_COMMANDS)
    except (SettingsError, StoreError, StartupError, ToolDefinitionError, McpConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # ingest: a path that does not exist
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a port in use, a folder that cannot be created
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except IncompleteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
