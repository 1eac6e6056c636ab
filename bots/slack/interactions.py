"""Slack's interactivity for the engine's controls: block_actions (feedback, regenerate, stop,
approve/deny), the comment modal (views.open, view_submission), and the App Home and agent
messaging DM-open signal (app_home_opened)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.blocks import comment_offer_blocks, comment_view, decided_blocks, submitted_comment
from bots.slack.convert import Target
from bots.slack.home import home_view
from bots.slack.reply import editing_reply, explain
from core.engine import Engine
from core.events import Platform, User
from core.interactive.clicks import UNKNOWN, Click, ClickResult
from core.interactive.controls import Action, control_id, parse_control_id
from core.interactive.home import QUICK_PROMPTS, home_summary

log = structlog.get_logger(__name__)

OURS = re.compile(r"^parley:")
GREETING = "Hi! Ask me anything here. For example:\n" + "\n".join(
    f"• {text}" for _, text in QUICK_PROMPTS
)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dig(body: dict[str, Any], *path: str) -> str:
    node: Any = body
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return _str(node)


class SlackControls:
    """Listeners for the controls' clicks; they ack at once and act in the background."""

    def __init__(
        self,
        engine: Engine,
        client: AsyncWebClient,
        *,
        user_of: Callable[[str], Awaitable[User]],
        spawn: Callable[..., None],
    ) -> None:
        self._engine = engine
        self._client = client
        self._user_of = user_of
        self._spawn = spawn
        self._greeted: set[tuple[str, str]] = set()  # (team, user) greeted in this process

    def register(self, app: AsyncApp) -> None:
        """Ours before the catch-all acks (Bolt runs the first listener that matches)."""
        app.action(OURS)(self._on_action)
        app.view(OURS)(self._on_view)
        app.event("app_home_opened")(self._on_home_opened)

    # -- block_actions ----------------------------------------------------------------------

    async def _on_action(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions else {}
        action = action if isinstance(action, dict) else {}
        control = parse_control_id(action.get("action_id"))
        channel, team = _dig(body, "channel", "id"), _dig(body, "team", "id")
        user_id = _dig(body, "user", "id")
        if control is None or not (channel and team and user_id):
            self._later(self._tell(channel, user_id, "", UNKNOWN))
            return
        thread = _dig(body, "container", "thread_ts") or _dig(body, "message", "thread_ts")
        if control.action == Action.COMMENT:  # the form must open within 3 s of the click
            where = {"channel": channel, "team": team, "thread": thread}
            try:
                await self._client.views_open(
                    trigger_id=_str(body.get("trigger_id")),
                    view=comment_view(str(control), where),
                )
            except SlackApiError as exc:
                log.warning("slack_call_failed", method="views.open", error=explain(exc))
            return
        click = Click(
            control,
            await self._user_of(user_id),
            Platform.SLACK,
            team,
            channel,
            value=_str(action.get("value")),
        )
        message_ts = _dig(body, "container", "message_ts")
        self._later(self._act(click, thread, message_ts))

    async def _act(self, click: Click, thread: str, message_ts: str) -> None:
        target = Target(click.channel, thread or None, click.user.id, click.workspace)

        def replace() -> Any:
            return editing_reply(self._client, target, existing=message_ts or None)

        result = await self._engine.interactions.click(click, replace)
        if result.updated and message_ts:
            await self._call(
                "chat.update",
                self._client.chat_update(
                    channel=click.channel,
                    ts=message_ts,
                    text=result.updated,
                    blocks=decided_blocks(result.updated),
                ),
            )
        await self._tell(click.channel, click.user.id, thread, result.text, result, click)

    async def _tell(
        self,
        channel: str,
        user: str,
        thread: str,
        text: str,
        result: ClickResult | None = None,
        click: Click | None = None,
    ) -> None:
        """An ephemeral answer to the clicker (with the comment offer after a rating)."""
        if not (channel and user and text):
            return
        blocks = None
        if result is not None and click is not None and result.offer_comment:
            control = click.control
            offer = control_id(Action.COMMENT, control.ref, control.attempt, result.offer_comment)
            blocks = comment_offer_blocks(text, offer)
        await self._call(
            "chat.postEphemeral",
            self._client.chat_postEphemeral(
                channel=channel,
                user=user,
                text=text,
                thread_ts=thread or None,
                blocks=blocks,
            ),
        )

    # -- the comment form -------------------------------------------------------------------

    async def _on_view(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        view = body.get("view") if isinstance(body.get("view"), dict) else {}
        assert isinstance(view, dict)
        control = parse_control_id(view.get("callback_id"))
        try:
            where = json.loads(_str(view.get("private_metadata")) or "{}")
        except ValueError:
            where = {}
        where = where if isinstance(where, dict) else {}
        user_id, team = _dig(body, "user", "id"), _dig(body, "team", "id")
        channel, thread = _str(where.get("channel")), _str(where.get("thread"))
        if control is None or control.action != Action.COMMENT or where.get("team") != team:
            log.info("slack_view_refused", reason="not one of ours")
            self._later(self._tell(channel, user_id, thread, UNKNOWN))
            return
        click = Click(
            control,
            await self._user_of(user_id),
            Platform.SLACK,
            team,
            channel,
            comment=submitted_comment(view),
        )
        self._later(self._comment(click, thread))

    async def _comment(self, click: Click, thread: str) -> None:
        result = await self._engine.interactions.click(click)
        await self._tell(click.channel, click.user.id, thread, result.text)

    # -- App Home and the DM-open signal ----------------------------------------------------

    async def _on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        user_id, tab = _str(event.get("user")), _str(event.get("tab"))
        team = _str(body.get("team_id")) or _dig(event, "view", "team_id")
        if not user_id:
            return
        if tab == "messages":  # agent messaging: the person opened the DM with the bot
            channel = _str(event.get("channel"))
            if channel and (team, user_id) not in self._greeted:
                self._greeted.add((team, user_id))
                await self._call(
                    "chat.postMessage",
                    self._client.chat_postMessage(channel=channel, text=GREETING),
                )
            return
        user = await self._user_of(user_id)
        summary = await home_summary(
            self._engine.store, self._engine.settings, Platform.SLACK, team, user
        )
        await self._call(
            "views.publish", self._client.views_publish(user_id=user_id, view=home_view(summary))
        )

    # -- helpers ----------------------------------------------------------------------------

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        self._spawn(work, command="interaction")

    async def _call(self, method: str, call: Awaitable[Any]) -> None:
        try:
            await call
        except SlackApiError as exc:
            log.warning("slack_call_failed", method=method, error=explain(exc))
