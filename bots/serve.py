"""Running the server: the HTTP endpoints and the long-lived platform connections, until stopped.

The `web` process also serves the admin site (on PORT, or on ADMIN_PORT's own listener) and,
with RETENTION_DAYS, runs the hourly retention pass (one process at a time, decided in the
database). Every serving process runs the scheduler (digests and recurring prompts) for the
platforms it serves; each due run is claimed once in the database.

A stop (SIGTERM or Ctrl-C) closes the intake first (the HTTP port, Socket Mode), then drains the
running turns for up to `SHUTDOWN_DRAIN_SECONDS` while this process keeps its heartbeat, so no
other process takes its turns for orphans; turns still open at the deadline are closed here, once,
with the interrupted notice. Only then does the process leave. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from bots.errors import UsageError
from bots.settings import AppSettings
from bots.workers import DRAIN, NOW
from core.crypto import MIN_SECRET_KEY_LENGTH, key_problem

if TYPE_CHECKING:
    from bots.services import Services
    from bots.slack.app import SlackAdapter

log = structlog.get_logger(__name__)


class Stops:
    """The first SIGTERM or SIGINT asks for a graceful stop; a second one for an immediate one.

    A `web` worker also takes its first process's `DRAIN` (graceful, however often) and `NOW`.
    """

    def __init__(self) -> None:
        self.graceful = asyncio.Event()
        self.immediate = asyncio.Event()
        loop = asyncio.get_running_loop()
        handlers = {
            signal.SIGINT: self._signal,
            signal.SIGTERM: self._signal,
            DRAIN: self.graceful.set,
            NOW: self._now,
        }
        for sig, handler in handlers.items():
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, handler)

    def _signal(self) -> None:
        if self.graceful.is_set():
            log.warning("stopping_now", reason="second signal")
            self.immediate.set()
        self.graceful.set()

    def _now(self) -> None:
        log.warning("stopping_now", reason="the first process stops at once")
        self.immediate.set()
        self.graceful.set()


def check_platform_settings(settings: AppSettings, *, http: bool, connections: bool) -> None:
    """Refuse to start with a half-configured platform, naming what to set."""
    slack, discord = settings.slack, settings.discord
    check_slack_install_settings(settings)
    if slack.app_token and not slack.enabled:
        raise UsageError(
            "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: set the xoxb- bot token"
        )
    socket_mode = connections and slack.app_token is not None
    if http and slack.enabled and not slack.signing_secret and not socket_mode:
        raise UsageError(
            "SLACK_SIGNING_SECRET is required to verify Slack's requests: copy it from the app's "
            "Basic Information page, or use Socket Mode (SLACK_APP_TOKEN) with the worker process"
        )
    shards, count = discord.shard_ids, discord.shard_count
    if shards and (count is None or max(shards) >= count):
        raise UsageError(
            "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT, and every id below it "
            "(e.g. DISCORD_SHARD_COUNT=4 with DISCORD_SHARD_IDS=0,1 here and 2,3 elsewhere)"
        )
    runs_slack_turns = slack.enabled and settings.turns.runs_turns("worker")
    if connections and not http and not (slack.app_token or discord.token or runs_slack_turns):
        raise UsageError(
            "nothing to run: set DISCORD_TOKEN (Discord gateway) or SLACK_APP_TOKEN (Slack Socket "
            "Mode), or SLACK_BOT_TOKEN with worker in TURN_RUNNERS (queued Slack turns)"
        )


def check_slack_install_settings(settings: AppSettings) -> None:
    """With SLACK_CLIENT_ID (many workspaces): the client secret and a SECRET_KEY that seals
    their tokens must be set."""
    slack = settings.slack
    if not slack.multi_workspace:
        return
    if slack.client_secret is None:
        raise UsageError(
            "SLACK_CLIENT_ID is set but SLACK_CLIENT_SECRET is not: copy it from the app's "
            "Basic Information page (App Credentials)"
        )
    secret = settings.keys.secret_key
    problem = key_problem(secret.get_secret_value() if secret is not None else None)
    if problem is not None:
        raise UsageError(
            f"{problem}: installations' tokens are encrypted with it; set it to a random string "
            f"of {MIN_SECRET_KEY_LENGTH}+ characters, e.g. the output of "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`, and keep it'
        )
    if slack.bot_token is not None:
        log.warning(
            "slack_bot_token_ignored",
            reason="SLACK_CLIENT_ID is set: each workspace uses its own installation's token",
        )


async def until(stop: asyncio.Event, job: Awaitable[None]) -> None:
    """Run `job` until `stop` is set (or it ends; its exception propagates)."""
    task = asyncio.ensure_future(job)
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, waiter):
        pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run_server(
    services: Services,
    *,
    http: bool,
    connections: bool,
    reuse_port: bool = False,
    role: str = "run",
) -> None:
    """Serve until stopped, then drain and leave (see the module docstring). A `role` (`web`,
    `worker`) not in TURN_RUNNERS only stores events: the turn runners answer them."""
    from bots.web import RouteInstaller, build_metrics_app, build_web_app, serve

    settings, engine = services.settings, services.engine
    engine.runs_turns = settings.turns.runs_turns(role)
    if not engine.runs_turns:
        log.info("turns_run_elsewhere", role=role, turn_runners=sorted(settings.turns.runners))
    stops = Stops()
    drained = asyncio.Event()  # the turns are done: the connections that carry replies may close
    closers: list[Callable[[], Awaitable[None]]] = []
    intake: list[Awaitable[None]] = []
    carriers: list[Awaitable[None]] = []
    slack: SlackAdapter | None = None
    if settings.slack.enabled:
        from bots.slack.setup import build_slack_adapter

        slack = build_slack_adapter(settings, engine)
        closers.append(slack.close)
        if not settings.slack.multi_workspace:
            await slack.verify_token()
        await engine.attach(slack)
    else:
        log.info("slack_not_configured", serving="health and metrics only" if http else "nothing")
    if connections and settings.discord.token:
        from bots.discord.client import DiscordAdapter

        discord_bot = DiscordAdapter(settings.discord, engine)
        carriers.append(until(drained, discord_bot.run_until_closed()))
    workers = None
    background: list[Awaitable[None]] = []
    if http:
        from bots.admin import AdminSite, build_admin_listener

        admin = AdminSite(services)
        installers: list[RouteInstaller] = []
        if slack and settings.slack.signing_secret:
            installers.append(slack.install)
        elif slack is not None and slack.installer is not None:
            installers.append(slack.installer.install)  # Socket Mode: the install pages only
        if settings.admin.port is None:
            installers.append(admin.install)
        if settings.server.web_concurrency > 1:
            from bots.workers import WebWorkers

            workers = WebWorkers(settings.server.web_concurrency - 1)
        intake.append(
            serve(
                build_web_app(services, installers),
                "0.0.0.0",
                settings.server.port,
                stops.graceful,
                reuse_port=reuse_port or workers is not None,
                on_bound=workers.start if workers else None,
            )
        )
        if settings.server.metrics_port is not None and not reuse_port:
            intake.append(
                serve(
                    build_metrics_app(settings.server),
                    settings.server.metrics_host,
                    settings.server.metrics_port,
                    stops.graceful,
                )
            )
        if settings.admin.port is not None and not reuse_port:
            intake.append(
                serve(
                    build_admin_listener(admin),
                    settings.admin.host,
                    settings.admin.port,
                    stops.graceful,
                )
            )
        if settings.admin.retention_days is not None:
            from core.lifecycle import Retention

            retention = Retention(
                services.store, engine.backends.threads, days=settings.admin.retention_days
            )
            background.append(retention.run(stops.graceful))
    if connections and slack and settings.slack.app_token:
        intake.append(until(stops.graceful, slack.socket_mode()))
    if services.scheduler is not None:  # claims only the platforms attached in this process
        background.append(services.scheduler.run(stops.graceful))
    freeze_startup_objects()
    beating = asyncio.ensure_future(engine.recovery.run(drained))
    if engine.runs_turns:  # queued turns are claimed until the stop begins
        background.append(engine.runner.run(stops.graceful))
    chores = [asyncio.ensure_future(job) for job in background]
    jobs = [asyncio.ensure_future(job) for job in (*intake, *carriers)]
    try:
        stopped = asyncio.ensure_future(stops.graceful.wait())
        await asyncio.wait([*jobs, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        for job in jobs:  # a job that failed (a refused token, a port in use) stops the server
            if job.done() and not job.cancelled() and job.exception() is not None:
                raise job.exception()  # type: ignore[misc]
        stops.graceful.set()
        # The workers drain their own turns meanwhile, under the same deadline as this process's
        # (shielded: after a second signal the `finally` signals them again and waits for them).
        stopping = [asyncio.shield(workers.stop())] if workers is not None else []
        await asyncio.gather(*jobs[: len(intake)], return_exceptions=True)

        async def drain() -> None:  # this process's turns and commands, and the workers' meanwhile
            timeout = settings.server.shutdown_drain_seconds
            commands = [_commands_drained(slack, timeout)] if slack is not None else []
            await asyncio.gather(engine.drain(timeout), *stopping, *commands)

        draining = asyncio.ensure_future(drain())
        immediate = asyncio.ensure_future(stops.immediate.wait())
        await asyncio.wait([draining, immediate], return_when=asyncio.FIRST_COMPLETED)
        immediate.cancel()
        if not draining.done():
            draining.cancel()
            return
        drained.set()
        await engine.recovery.leave()
    finally:
        drained.set()
        for job in [*jobs, *chores, beating]:
            job.cancel()
        await asyncio.gather(*jobs, *chores, beating, return_exceptions=True)
        if workers is not None:  # still running only after an immediate stop
            await workers.stop(now=True)
        for close in closers:
            await close()


# Young collections every 20,000 allocations rather than 700: a turn's objects mostly die young,
# and with the default nearly every turn moved some into the older generations, whose
# collections then came more often.
GC_THRESHOLDS = (20_000, 10, 10)


def freeze_startup_objects() -> None:
    """Hide what start-up built (modules, SDK clients, settings, token tables, plugins: about
    200,000 objects) from the garbage collector: a full collection then looks only at what the
    running server made since. Measured on `web`: full collections of 200-300 ms, which every
    Slack acknowledgement arriving meanwhile waited for, became a few milliseconds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _commands_drained(slack: SlackAdapter, timeout: float) -> None:
    """Let running slash commands end within the drain deadline (then `close` cancels them)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(slack.drain(), timeout)
