"""The HTTP front door for Slack: verify, parse and check a request before Bolt sees it.

Bolt parses a body before it checks the signature, and its parser trusts the body's shape, so an
unsigned body that is not a JSON object, or is nested a thousand levels deep, would crash it. Here
the signature is checked on the raw bytes first (401, nothing parsed), the body is parsed behind a
guard (400), and the fields the adapter and Bolt's routing read are checked for type (400):
events, slash commands, and interactivity payloads (block_actions, block_suggestion, views,
shortcuts), whose ids Bolt's listener matching indexes without checking. Bolt then verifies the
signature again and dispatches as usual. Socket Mode envelopes are checked with `problem` too.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

# Fields of a handled event that, when present, must be strings.
_EVENT_STRINGS = (
    "type",
    "subtype",
    "user",
    "bot_id",
    "channel",
    "channel_type",
    "team",
    "ts",
    "thread_ts",
    "event_ts",
    "text",
)
_REQUIRED = {"app_mention": ("user", "channel", "ts"), "message": ("channel", "ts")}
_COMMAND_STRINGS = ("command", "text", "user_id", "channel_id", "team_id", "trigger_id")
# Interactivity payloads (`payload=<json>`): fields that, when present, must be strings, and the
# identifiers Bolt's listener matching reads without checking (KeyError/TypeError otherwise).
_INTERACTION_STRINGS = ("trigger_id", "response_url", "api_app_id", "token", "callback_id")
_NEEDS_CALLBACK_ID = {
    "shortcut",
    "message_action",
    "interactive_message",
    "dialog_submission",
    "dialog_cancellation",
    "dialog_suggestion",
    "workflow_step_edit",
}
_VIEW_PAYLOADS = {"view_submission", "view_closed"}
_ASSISTANT_EVENTS = {"assistant_thread_started", "assistant_thread_context_changed"}


class Rejected(Exception):
    """The request is refused; `response` says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.response = web.json_response({"error": reason}, status=status)


def verify(verifier: SignatureVerifier | None, raw: bytes, request: web.Request) -> None:
    """Raise `Rejected(401)` unless the request carries a fresh, valid Slack signature
    (`Rejected(400)` first for a body that is not UTF-8, which Slack never sends)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "malformed request body: not UTF-8") from None
    if verifier is None:
        return
    try:
        valid = verifier.is_valid(
            text,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
        )
    except ValueError:  # a timestamp that is not a number
        valid = False
    if not valid:
        raise Rejected(401, "invalid or stale signature")


def parse(raw: bytes, request: web.Request) -> AsyncBoltRequest:
    """A Bolt request from a verified body; `Rejected(400)` when it cannot be read."""
    try:
        text = raw.decode("utf-8")
        bolt = AsyncBoltRequest(
            body=text, query=request.query_string, headers=dict(request.headers)
        )
    except (ValueError, TypeError, AttributeError, LookupError, RecursionError) as exc:
        raise Rejected(400, f"malformed request body ({type(exc).__name__})") from None
    if not bolt.body and "command=" in text and "payload=" not in text:
        # Bolt takes any form body containing the word "payload" for an interactivity payload;
        # a slash command whose text says "payload" is a plain form.
        bolt.body = dict(parse_qsl(text, keep_blank_values=True))
        bolt.context = build_async_context(AsyncBoltContext({}), bolt.body)
    reason = problem(bolt.body)
    if reason is not None:
        raise Rejected(400, reason)
    return bolt


DIRECT_EVENTS = ("app_mention", "message")


def direct_event(raw: bytes, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """For a verified Events API callback of a message or a mention: (body, event), which the
    adapter answers without Bolt's dispatch; None for anything else (Bolt routes it).
    `Rejected(400)` when such a body has the wrong shape."""
    if not raw.startswith(b"{") or b'"event_callback"' not in raw:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise Rejected(400, "malformed request body (JSONDecodeError)") from None
    if not isinstance(body, dict) or body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if not isinstance(event, dict) or event.get("type") not in DIRECT_EVENTS:
        return None
    reason = problem(body)
    if reason is not None:
        raise Rejected(400, reason)
    return body, event


def problem(body: Any) -> str | None:
    """What is wrong with the shape of a parsed body, or None."""
    if not isinstance(body, dict):
        return "the body is not an object"
    reason = _interaction_problem(body)
    if reason is not None:
        return reason
    if "command" in body:
        wrong = [f for f in _COMMAND_STRINGS if not isinstance(body.get(f, ""), str)]
        missing = [f for f in ("command", "user_id", "channel_id") if not body.get(f)]
        if wrong or missing:
            return f"slash command with missing or malformed fields: {', '.join(missing + wrong)}"
        return None
    for key in ("view", "container", "message", "state"):
        if not isinstance(body.get(key), dict | None):
            return f"{key} is not an object"
    for key in ("team", "enterprise", "user", "channel"):
        if not isinstance(body.get(key), dict | str | None):
            return f"{key} is malformed"
    if not isinstance(body.get("authorizations", []), list):
        return "authorizations is not a list"
    if "event" not in body:
        return None
    event = body["event"]
    if not isinstance(event, dict):
        return "event is not an object"
    if body.get("type") != "event_callback":
        return None
    for field in ("event_id", "team_id", "api_app_id"):
        if not isinstance(body.get(field, ""), str):
            return f"{field} is not a string"
    if not isinstance(body.get("event_time", 0), int):
        return "event_time is not a number"
    wrong = [f for f in _EVENT_STRINGS if f in event and not isinstance(event[f], str | None)]
    if wrong:
        return f"event fields of the wrong type: {', '.join(wrong)}"
    missing = [f for f in _REQUIRED.get(event.get("type", ""), ()) if not event.get(f)]
    if missing and not event.get("subtype"):
        return f"event without {', '.join(missing)}"
    files = event.get("files", [])
    if not isinstance(files, list) or not all(_file_ok(f) for f in files):
        return "event files are malformed"
    for key in ("message", "previous_message"):
        if not isinstance(event.get(key), dict | None):
            return f"event {key} is not an object"
    return _assistant_thread_problem(event)


def _interaction_problem(body: dict[str, Any]) -> str | None:
    """What is wrong with an interactivity payload (block_actions, block_suggestion, views,
    shortcuts, legacy attachments and dialogs), or None (also for any other body)."""
    kind = body.get("type")
    interactive = kind in {"block_actions", "block_suggestion"} | _VIEW_PAYLOADS
    if not (interactive or kind in _NEEDS_CALLBACK_ID):
        return None
    wrong = [f for f in _INTERACTION_STRINGS if not isinstance(body.get(f, ""), str)]
    if wrong:
        return f"{kind} fields of the wrong type: {', '.join(wrong)}"
    urls = body.get("response_urls", [])
    if not isinstance(urls, list) or not all(
        isinstance(u, dict) and isinstance(u.get("response_url", ""), str) for u in urls
    ):
        return "response_urls is malformed"
    if kind in _NEEDS_CALLBACK_ID and not isinstance(body.get("callback_id"), str):
        return f"{kind} without a callback_id"
    if kind in ("block_actions", "interactive_message"):
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return f"{kind} without actions"
        if not all(_action_ok(a, needs_id=kind == "block_actions") for a in actions):
            return f"{kind} actions are malformed"
    if kind == "block_suggestion":
        if not isinstance(body.get("action_id"), str):
            return "block_suggestion without an action_id"
        if not all(isinstance(body.get(f, ""), str) for f in ("block_id", "value")):
            return "block_suggestion fields of the wrong type: block_id, value"
    if kind in _VIEW_PAYLOADS:
        view = body.get("view")
        if not isinstance(view, dict):
            return f"{kind} without a view"
        if not all(isinstance(view.get(f), str) for f in ("type", "callback_id")):
            return f"{kind} view without a type or callback_id"
        if not isinstance(view.get("state", {}), dict):
            return f"{kind} view state is not an object"
        if view["type"] == "workflow_step" and "workflow_step" not in body:
            return f"{kind} of a workflow step without workflow_step"
    if kind == "workflow_step_edit" and "workflow_step" not in body:
        return "workflow_step_edit without workflow_step"
    return None


def _action_ok(action: Any, *, needs_id: bool) -> bool:
    if not isinstance(action, dict):
        return False
    if needs_id and not isinstance(action.get("action_id"), str):
        return False
    return all(isinstance(action.get(f, ""), str) for f in ("action_id", "block_id", "type"))


def _assistant_thread_problem(event: dict[str, Any]) -> str | None:
    """An assistant event must carry `assistant_thread` with its channel and thread; any event
    that carries one must carry an object (Bolt reads it without checking)."""
    if event.get("type") not in _ASSISTANT_EVENTS and "assistant_thread" not in event:
        return None
    thread = event.get("assistant_thread")
    if not isinstance(thread, dict):
        return "assistant_thread is not an object"
    ids = ("channel_id", "thread_ts")
    if event.get("type") in _ASSISTANT_EVENTS and not all(
        isinstance(thread.get(f), str) and thread[f] for f in ids
    ):
        return "assistant_thread without a channel_id and thread_ts"
    if not all(isinstance(thread.get(f, ""), str | None) for f in (*ids, "user_id")):
        return "assistant_thread fields of the wrong type"
    if not isinstance(thread.get("context", {}), dict | None):
        return "assistant_thread context is not an object"
    return None


def _file_ok(file: Any) -> bool:
    return (
        isinstance(file, dict)
        and isinstance(file.get("size", 0), int)
        and all(isinstance(file.get(k, ""), str | None) for k in ("name", "title", "mimetype"))
    )
