"""Message components for the engine's controls: buttons whose custom ids carry the turn (or
approval) and the action, so any process, after any restart, can act on them (pure builders)."""

from __future__ import annotations

import discord

from core.interactive.controls import Action, ApprovalPrompt, Controls, control_id

COMMENT_INPUT = "comment"


def _view(*buttons: discord.ui.Button[discord.ui.View]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(button)
    view.stop()  # rendering only: clicks reach the adapter's on_interaction, not a stored view
    return view


def _button(
    label: str, custom_id: str, style: discord.ButtonStyle = discord.ButtonStyle.secondary
) -> discord.ui.Button[discord.ui.View]:
    return discord.ui.Button(label=label, custom_id=custom_id, style=style)


def controls_view(controls: Controls) -> discord.ui.View:
    """👍 👎 ↻ for a finished reply; ■ Stop while it streams."""
    if not controls.finished:
        return _view(_button("■ Stop", controls.id(Action.STOP)))
    return _view(
        _button("👍", controls.id(Action.RATE, "positive")),
        _button("👎", controls.id(Action.RATE, "negative")),
        _button("↻ Regenerate", controls.id(Action.AGAIN)),
    )


def approval_view(prompt: ApprovalPrompt) -> discord.ui.View:
    """Approve and Deny of a tool call."""
    return _view(
        _button("Approve", prompt.approve_id, discord.ButtonStyle.success),
        _button("Deny", prompt.deny_id, discord.ButtonStyle.danger),
    )


def comment_offer_view(ref: int, attempt: int, value: str) -> discord.ui.View:
    """The button that opens the comment form for a rating."""
    return _view(_button("Add a comment", control_id(Action.COMMENT, ref, attempt, value)))


def comment_modal(custom_id: str) -> discord.ui.Modal:
    """The comment form (an interaction response of type 9)."""
    modal = discord.ui.Modal(title="Your feedback", custom_id=custom_id, timeout=None)
    modal.add_item(
        discord.ui.TextInput(
            label="What was good or bad about the answer?",
            custom_id=COMMENT_INPUT,
            style=discord.TextStyle.paragraph,
            max_length=2000,
        )
    )
    modal.stop()
    return modal


def submitted_comment(data: object) -> str:
    """The comment typed into the form, from a modal submission's data."""
    rows = data.get("components", []) if isinstance(data, dict) else []
    for row in rows if isinstance(rows, list) else []:
        for item in row.get("components", []) if isinstance(row, dict) else []:
            if isinstance(item, dict) and item.get("custom_id") == COMMENT_INPUT:
                value = item.get("value")
                return value if isinstance(value, str) else ""
        if isinstance(row, dict) and row.get("custom_id") == COMMENT_INPUT:  # a label component
            component = row.get("component", row)
            value = component.get("value") if isinstance(component, dict) else None
            return value if isinstance(value, str) else ""
    return ""
