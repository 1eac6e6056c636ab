"""Block Kit for the engine's replies: the answer's markdown blocks, controls, approval prompts
and the comment form (pure functions, no network)."""

from __future__ import annotations

import json
from typing import Any

from core.interactive.attempts import arguments_text
from core.interactive.controls import Action, ApprovalPrompt, Controls
from core.render.tables import has_table

JSON = dict[str, Any]
MARKDOWN_LIMIT = 12_000  # characters of all markdown blocks of one message, together
COMMENT_INPUT = "comment"
COMMENT_LIMIT = 2_000


def _button(text: str, action_id: str, value: str = "", style: str | None = None) -> JSON:
    button: JSON = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
    }
    if value:
        button["value"] = value
    if style:
        button["style"] = style
    return button


def feedback_element(controls: Controls) -> JSON:
    """Slack's own 👍/👎 element for AI replies (it lives in a `context_actions` block)."""
    return {
        "type": "feedback_buttons",
        "action_id": controls.id(Action.RATE),
        "positive_button": {
            "text": {"type": "plain_text", "text": "👍"},
            "value": "positive",
            "accessibility_label": "Good answer",
        },
        "negative_button": {
            "text": {"type": "plain_text", "text": "👎"},
            "value": "negative",
            "accessibility_label": "Bad answer",
        },
    }


def control_blocks(controls: Controls) -> list[JSON]:
    """Feedback, then Regenerate, for a finished reply; Stop for a streaming one."""
    block = f"parley-{controls.turn_id}-{controls.attempt}"
    if not controls.finished:
        return [
            {
                "type": "actions",
                "block_id": f"{block}-live",
                "elements": [_button("■ Stop", controls.id(Action.STOP))],
            }
        ]
    return [
        {
            "type": "context_actions",
            "block_id": f"{block}-feedback",
            "elements": [feedback_element(controls)],
        },
        {
            "type": "actions",
            "block_id": f"{block}-again",
            "elements": [_button("↻ Regenerate", controls.id(Action.AGAIN))],
        },
    ]


def message_blocks(markdown: str, controls: Controls | None) -> list[JSON] | None:
    """The blocks of one answer message: a `markdown` block (standard Markdown, tables
    included) where the text needs it (a table) or controls follow, then the controls; None
    where plain mrkdwn text suffices, or where the text is past the markdown block's limit
    (then the caller splits it into messages first, see `fits_one_message`)."""
    if (controls is None and not has_table(markdown)) or not fits_one_message(markdown):
        return None
    body = [{"type": "markdown", "text": markdown}] if markdown.strip() else []
    return body + (control_blocks(controls) if controls is not None else [])


def fits_one_message(markdown: str) -> bool:
    """Whether the text fits the markdown blocks of one message (12,000 characters together)."""
    return len(markdown) <= MARKDOWN_LIMIT


def approval_blocks(prompt: ApprovalPrompt) -> list[JSON]:
    """A tool call waiting for approval: what would run, Approve and Deny."""
    arguments = arguments_text(prompt.arguments)
    return [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f"<@{prompt.requested_by}>, I'd like to run *{prompt.tool}* with:\n"
                    f"```{arguments}```\nApprove or deny within {prompt.minutes:g} minutes."
                ),
            },
        },
        {
            "type": "actions",
            "block_id": f"parley-approval-{prompt.approval_id}",
            "elements": [
                _button("Approve", prompt.approve_id, style="primary"),
                _button("Deny", prompt.deny_id, style="danger"),
            ],
        },
    ]


def decided_blocks(text: str) -> list[JSON]:
    """An approval prompt once decided: the outcome, no buttons."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def comment_offer_blocks(text: str, action_id: str) -> list[JSON]:
    """The ephemeral thanks for a rating, with a button that opens the comment form."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "elements": [_button("Add a comment", action_id)]},
    ]


def comment_view(callback_id: str, where: JSON) -> JSON:
    """The modal that takes a comment on a rating; `where` is the conversation, kept in
    private_metadata and checked again on submission."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": json.dumps(where),
        "title": {"type": "plain_text", "text": "Your feedback"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": COMMENT_INPUT,
                "label": {"type": "plain_text", "text": "What was good or bad about the answer?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": COMMENT_INPUT,
                    "multiline": True,
                    "max_length": COMMENT_LIMIT,
                },
            }
        ],
    }


def submitted_comment(view: JSON) -> str:
    """The comment typed into the form ('' when the payload has none)."""
    values = view.get("state", {}).get("values", {})
    entry = values.get(COMMENT_INPUT, {}).get(COMMENT_INPUT, {}) if isinstance(values, dict) else {}
    value = entry.get("value") if isinstance(entry, dict) else None
    return value if isinstance(value, str) else ""
