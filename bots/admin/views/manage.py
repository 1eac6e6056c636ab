"""Settings (per workspace and channel: the same overrides `/config` writes, audited) and Data
(retention, erasing a person's messages, the audit log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bots.admin.auth import redirect
from bots.admin.site import Route, Site
from core.conversation.overrides import OVERRIDABLE, SWITCHES, parse_override
from core.events import Platform
from core.lifecycle import erase_person

CLEAR = object()  # a change that removes the override
SELECTS = {
    "summary": ("on", "off"),
    "reply_controls": ("on", "off"),
    "backend": ("local", "openai"),
}
TOOL_CHOICES = ("inherit", "enable", "disable")
MAX_VALUE = 20_000  # characters of one typed value (a system prompt)


@dataclass(frozen=True, slots=True)
class Scope:
    """A workspace or channel whose settings the page edits."""

    name: str  # as stored: workspace:<platform>:<id> or channel:<platform>:<workspace>:<id>
    kind: str
    label: str


def parse_scope(name: str) -> Scope | None:
    """The scope named, if it is a workspace or channel scope of a known platform."""
    parts = name.split(":")
    platforms = {p.value for p in Platform}
    if len(parts) == 3 and parts[0] == "workspace" and parts[1] in platforms and parts[2]:
        return Scope(name, "workspace", f"{parts[1]} workspace {parts[2]}")
    if len(parts) == 4 and parts[0] == "channel" and parts[1] in platforms and all(parts[2:]):
        return Scope(name, "channel", f"{parts[1]} channel {parts[3]} in {parts[2]}")
    return None


def shown(name: str, value: Any) -> str:
    """An override as the form shows it."""
    if name in SWITCHES:
        return "on" if value else "off"
    if name == "temperature" and value is None:
        return "default"
    return "" if value is None else str(value)


def routes(site: Site) -> list[Route]:
    """The management pages and actions."""

    def tool_names() -> list[str]:
        registry = site.services.engine.backends.registry
        return registry.names() if registry else []

    async def known_scopes() -> list[Scope]:
        names = set(await site.store.scoped.scopes())
        for platform, workspace, channel in await site.store.browse.channels():
            names.add(f"workspace:{platform}:{workspace}")
            names.add(f"channel:{platform}:{workspace}:{channel}")
        scopes = [scope for scope in map(parse_scope, sorted(names)) if scope is not None]
        return sorted(scopes, key=lambda s: (s.name.split(":")[1:3], s.kind != "workspace", s.name))

    async def page(
        request: web.Request,
        scope: Scope | None,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        typed: dict[str, str] | None = None,
    ) -> web.Response:
        current = await site.store.scoped.in_scope(scope.name) if scope else {}
        values = {name: shown(name, current[name]) for name in OVERRIDABLE if name in current}
        tools = {
            name: ("enable" if current[f"tool.{name}"] else "disable")
            if f"tool.{name}" in current
            else "inherit"
            for name in tool_names()
        }
        return site.pages.render(
            request,
            "settings.html",
            status=status,
            title="Settings",
            scopes=await known_scopes(),
            scope=scope,
            overridable=OVERRIDABLE,
            selects=SELECTS,
            values={**values, **(typed or {})},
            tools=tools,
            tool_choices=TOOL_CHOICES,
            defaults={
                "system_prompt": site.settings.models.system_prompt,
                "model": site.settings.models.chat,
                "temperature": shown("temperature", site.settings.models.temperature),
                "max_output_tokens": site.settings.models.max_output_tokens,
                "summary": shown("summary", site.settings.memory.summary_enabled),
                "backend": site.settings.memory.backend,
                "reply_controls": shown("reply_controls", site.settings.interactive.reply_controls),
            },
            errors=errors or {},
            saved=request.query.get("saved", ""),
            changes=await site.store.audit.recent(50, action_prefix="setting."),
        )

    async def settings_page(request: web.Request) -> web.StreamResponse:
        name = request.query.get("scope", "")
        scope = parse_scope(name) if name else None
        if name and scope is None:
            return await page(request, None, status=400, errors={"scope": "Unknown scope."})
        return await page(request, scope)

    async def save(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        scope = parse_scope(str(form.get("scope", "")))
        if scope is None:
            return await page(request, None, status=400, errors={"scope": "Unknown scope."})
        current = await site.store.scoped.in_scope(scope.name)
        changes: list[tuple[str, Any]] = []
        errors: dict[str, str] = {}
        typed: dict[str, str] = {}
        for name in OVERRIDABLE:
            raw = str(form.get(name, "")).replace("\r\n", "\n").strip()
            typed[name] = raw
            if not raw:
                if name in current:
                    changes.append((name, CLEAR))
                continue
            if len(raw) > MAX_VALUE:
                errors[name] = f"{name}: at most {MAX_VALUE:,} characters"
                continue
            try:
                value = parse_override(name, raw)
            except ValueError as exc:
                errors[name] = str(exc)
                continue
            if name not in current or current[name] != value:
                changes.append((name, value))
        for tool in tool_names():
            choice, key = str(form.get(f"tool.{tool}", "inherit")), f"tool.{tool}"
            if choice not in TOOL_CHOICES:
                errors[key] = f"{tool}: choose inherit, enable or disable"
            elif choice == "inherit" and key in current:
                changes.append((key, CLEAR))
            elif choice != "inherit" and current.get(key) != (choice == "enable"):
                changes.append((key, choice == "enable"))
        if errors:
            return await page(request, scope, status=400, errors=errors, typed=typed)
        actor = site.actor(request)
        for name, value in changes:
            if value is CLEAR:
                await site.store.scoped.clear(scope.name, name, actor, via="site")
            else:
                await site.store.scoped.set(scope.name, name, value, actor, via="site")
        query = urlencode({"scope": scope.name, "saved": str(len(changes))})
        return redirect(f"/admin/settings?{query}")

    async def data(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
        purged = request.query.get("purged", "")
        entries = await site.store.audit.recent(100)
        report = (
            next((e for e in entries if e.action == "purge.user" and e.target == purged), None)
            if purged
            else None
        )
        return site.pages.render(
            request,
            "data.html",
            status=status,
            title="Data",
            retention_days=site.settings.admin.retention_days,
            last_pass=await site.store.jobs.last_done("retention"),
            user=request.query.get("user", ""),
            error=error,
            report=report,
            entries=entries,
        )

    async def data_page(request: web.Request) -> web.StreamResponse:
        return await data(request)

    async def purge(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        user_id = str(form.get("user_id", "")).strip()
        if not user_id or len(user_id) > 200:
            return await data(request, status=400, error="Give the person's user id.")
        if str(form.get("confirm", "")).strip() != user_id:
            return await data(
                request, status=400, error="Type the user id again to confirm: nothing was erased."
            )
        await erase_person(
            site.store, site.services.engine.backends.threads, user_id, actor=site.actor(request)
        )
        return redirect(f"/admin/data?{urlencode({'purged': user_id})}")

    return [
        ("GET", "/admin/settings", settings_page),
        ("POST", "/admin/settings", save),
        ("GET", "/admin/data", data_page),
        ("POST", "/admin/purge", purge),
    ]
