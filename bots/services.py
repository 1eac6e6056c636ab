"""The composition root: builds every long-lived object once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import openai
import structlog
from openai import AsyncOpenAI

from bots.settings import AppSettings
from core.commands import CommandContext, Commands
from core.connectors import ServerConfig, choose_mode, config_path, load_config
from core.context.ports import Ports
from core.context.summaries import ChannelSummaries
from core.conversation.backends import ConversationBackends
from core.conversation.media import Media
from core.conversation.memory import Memory
from core.conversation.remote import RemoteThreads
from core.engine import Engine
from core.governance.budgets import Budgets
from core.governance.moderation import Moderator, Rule
from core.governance.usage import UsageAccounting
from core.interactive.approvals import ApprovalGate
from core.knowledge import ImageGenerator, KnowledgeBase
from core.llm import ModelClient, ResponsesClient
from core.llm.connect import build_model_client, build_moderation_client, build_openai
from core.llm.pricing import PriceTable
from core.llm.tokens import TokenCounter
from core.plugin import PluginServices
from core.schedules import BatchDigests, Digests, ScheduleCommands, Scheduler
from core.store import Store
from core.tools import ToolRegistry, discover
from core.tools.catalog import ToolCatalog
from core.tools.context import ToolContexts
from core.tools.hosted import HostedTools
from core.tools.loop import ToolLoop

if TYPE_CHECKING:
    from core.connectors.manager import Connectors

log = structlog.get_logger(__name__)


@dataclass
class Services:
    """Everything a process needs, constructed once and passed in (no globals)."""

    settings: AppSettings
    store: Store
    openai: openai.AsyncOpenAI
    model: ModelClient
    engine: Engine
    plugins: PluginServices
    knowledge: KnowledgeBase
    moderation_client: AsyncOpenAI | None = None  # `openai` is a field here, not the module
    """Moderation's own SDK client (`OPENAI_MODERATION_BASE_URL` / `_API_KEY`), else None."""
    connectors: Connectors | None = None
    """The MCP servers (`MCP_CONFIG`), when any are configured and tools are on."""
    scheduler: Scheduler | None = None
    """Digests and recurring prompts; every serving process runs its loop."""

    async def close(self) -> None:
        """Finish running turns and release connections."""
        await self.engine.drain()
        if self.scheduler is not None:
            await self.scheduler.drain()
        if self.connectors is not None:
            await self.connectors.close()
        if self.plugins.http is not None:
            await self.plugins.http.close()
        await self.openai.close()
        if self.moderation_client is not None:
            await self.moderation_client.close()
        await self.store.close()


def build_moderator(
    settings: AppSettings, client: openai.AsyncOpenAI, model: ModelClient, store: Store
) -> Moderator:
    """The moderation of input and output, by the configured policy, through `client` (moderation's
    own client when it has its own endpoint, else the shared one)."""
    moderation = settings.moderation
    return Moderator(
        client,
        store.moderation,
        model=settings.models.moderation,
        rules={name: Rule(r.threshold, r.action) for name, r in moderation.policy.items()},
        default=Rule(moderation.threshold, moderation.action),
        policy=model.policy,
        fail_open=moderation.fail_open,
        keep_text=moderation.keep_text,
        enabled=moderation.enabled,
    )


async def build_services(settings: AppSettings) -> Services:
    """Open the store (applying migrations) and wire the engine to the model client."""
    # Plugins first: a broken one stops the start before a connection or a thread is open.
    registry = discover(ToolRegistry()) if settings.tools.enabled else ToolRegistry()
    mcp_servers = mcp_configs(settings) if settings.tools.enabled else []  # a bad file: stop now
    store = await Store.open(
        settings.store.url,
        busy_timeout_ms=settings.store.busy_timeout_ms,
        pool_size=settings.store.pool_size,
    )
    client = build_openai(settings.openai)
    moderation_client = build_moderation_client(settings.openai)
    model = build_model_client(settings.openai, client)
    models = settings.models
    tokens = TokenCounter(models.chat)
    knowledge = KnowledgeBase(client, store, model=models.embedding, policy=model.policy)
    plugins = PluginServices(
        http=aiohttp.ClientSession(),
        knowledge=knowledge,
        images=ImageGenerator(client, model=models.image, policy=model.policy),
    )
    ports = Ports()
    tool_contexts = ToolContexts(plugins, settings.access.admin_user_ids, ports, tokens)
    try:
        connectors = await start_connectors(settings, mcp_servers, registry)
    except BaseException:
        if plugins.http is not None:
            await plugins.http.close()
        await client.close()
        await store.close()
        raise
    hosted = HostedTools(settings.openai, connectors)
    if reason := hosted.unavailable_reason(settings.openai.wire):
        log.warning("hosted_tools_unavailable", tools=hosted.configured, reason=reason)
    catalog = ToolCatalog(registry, [s for s in (connectors, hosted) if s is not None])
    gate = ApprovalGate(store, minutes=settings.interactive.tool_approval_minutes)
    loop = ToolLoop(
        catalog,
        tokens,
        max_steps=settings.tools.max_steps,
        timeout=settings.tools.timeout_seconds,
        gate=gate,
    )
    memory = Memory(store, tokens)
    usage = UsageAccounting(store, PriceTable(models.prices), default_model=models.chat)
    responses = (
        model if isinstance(model, ResponsesClient) else ResponsesClient(client, model.policy)
    )
    backends = ConversationBackends(
        model=model,
        responses_model=responses,
        threads=RemoteThreads(client, store, model.policy),
        usage=usage,
        tool_contexts=tool_contexts,
        openai_settings=settings.openai,
        loop=loop,
        empty_loop=ToolLoop(ToolRegistry(), tokens, max_steps=0, timeout=1),
        tokens=tokens,
        hosted=hosted,
    )
    moderator = build_moderator(settings, moderation_client or client, model, store)
    summaries = ChannelSummaries(
        ports=ports,
        model=model,
        summary_model=models.summary,
        usage=usage,
        moderator=moderator,
        tokens=tokens,
        max_input_tokens=settings.memory.summary_max_input_tokens,
        max_output_tokens=models.max_output_tokens,
    )
    budgets = Budgets(settings, store)
    digests = Digests(settings, summaries, budgets)
    commands = Commands(
        CommandContext(
            settings,
            store,
            memory,
            tokens,
            tool_contexts,
            tools=catalog,
            summaries=summaries,
            schedules=ScheduleCommands(settings, store, digests),
        )
    )
    engine = Engine(
        settings=settings,
        store=store,
        model=model,
        moderator=moderator,
        media=Media(
            client,
            model=models.transcription,
            policy=model.policy,
            max_bytes=settings.memory.max_attachment_mb * 1024 * 1024,
        ),
        memory=memory,
        tokens=tokens,
        commands=commands,
        backends=backends,
        usage=usage,
        budgets=budgets,
        gate=gate,
        ports=ports,
    )
    batches = (
        BatchDigests(store, client, digests, ports, wire=model.wire_api)
        if settings.schedules.digest_batch
        else None
    )
    scheduler = Scheduler(
        store=store,
        ports=ports,
        digests=digests,
        turns=engine.handle,
        batches=batches,
        poll_seconds=settings.schedules.poll_seconds,
        stale_after=settings.store.recovery_stale_seconds,
    )
    return Services(
        settings,
        store,
        client,
        model,
        engine,
        plugins,
        knowledge,
        moderation_client,
        connectors,
        scheduler,
    )


def mcp_configs(settings: AppSettings) -> list[ServerConfig]:
    """The servers of `MCP_CONFIG` (or `mcp.json` when present); `McpConfigError` for a bad file."""
    path = config_path(settings.connectors.config)
    return load_config(path) if path is not None else []


async def start_connectors(
    settings: AppSettings, configs: list[ServerConfig], registry: ToolRegistry
) -> Connectors | None:
    """Choose each server's mode and connect them all; None when none are configured. Raises
    `McpConfigError` (one line) for a tool name that clashes with a plugin."""
    if not configs:
        return None
    openai_settings = settings.openai
    modes = {
        c.name: choose_mode(
            c,
            settings.connectors.mode,
            wire=openai_settings.wire,
            is_openai=openai_settings.is_openai,
        )
        for c in configs
    }
    from core.connectors.manager import Connectors  # the mcp SDK, only with servers configured

    connectors = Connectors(configs, modes=modes, reserved=registry.names())
    seconds = await connectors.start()
    log.info("mcp_started", servers=len(configs), seconds=round(seconds, 3))
    return connectors
