"""What the engine asks an adapter to show beside a reply, and the ids its clicks carry back.

Every control's id is `parley:<action>:<ref>:<attempt>[:<value>]`: the ref is a turn id (or an
approval id), the attempt is the turn's attempt the control was rendered for (a control of a
superseded attempt no longer acts), the value a rating where the control carries one. An id is
never trusted on its own: the click's conversation must match the turn's (see `clicks.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "parley"
_ID = re.compile(r"^parley:([a-z]+):(\d{1,18}):(\d{1,6})(?::(positive|negative))?$")


class Action(StrEnum):
    """What a control does."""

    RATE = "rate"  # 👍/👎; the value comes with the id or the payload
    COMMENT = "comment"  # open the comment form for a rating
    AGAIN = "again"  # regenerate
    STOP = "stop"  # stop a streaming reply
    APPROVE = "approve"
    DENY = "deny"


VALUES = ("positive", "negative")


@dataclass(frozen=True, slots=True)
class ControlId:
    """A parsed control id."""

    action: Action
    ref: int
    attempt: int
    value: str = ""

    def __str__(self) -> str:
        tail = f":{self.value}" if self.value else ""
        return f"{PREFIX}:{self.action.value}:{self.ref}:{self.attempt}{tail}"


def control_id(action: Action, ref: int, attempt: int = 1, value: str = "") -> str:
    """The id of one control."""
    return str(ControlId(action, ref, attempt, value))


def parse_control_id(raw: object) -> ControlId | None:
    """A control id, or None for anything that is not one of ours (forged ids included)."""
    if not isinstance(raw, str):
        return None
    match = _ID.match(raw)
    if match is None:
        return None
    try:
        action = Action(match.group(1))
    except ValueError:
        return None
    return ControlId(action, int(match.group(2)), int(match.group(3)), match.group(4) or "")


@dataclass(frozen=True, slots=True)
class Controls:
    """The controls of one reply: feedback and regenerate when finished, stop while streaming."""

    turn_id: int
    attempt: int = 1
    finished: bool = True
    stopped: bool = False

    def id(self, action: Action, value: str = "") -> str:
        """The id of one of this reply's controls."""
        return control_id(action, self.turn_id, self.attempt, value)


@dataclass(frozen=True, slots=True)
class ApprovalPrompt:
    """A tool call waiting for a person: what to show, and the ids of Approve and Deny."""

    approval_id: int
    tool: str
    arguments: str
    requested_by: str
    minutes: float

    @property
    def approve_id(self) -> str:
        return control_id(Action.APPROVE, self.approval_id)

    @property
    def deny_id(self) -> str:
        return control_id(Action.DENY, self.approval_id)

    @property
    def text(self) -> str:
        """The prompt as plain Markdown (for platforms without buttons, and as fallback)."""
        return (
            f"I'd like to run the tool `{self.tool}` with `{self.arguments}`. "
            f"Approve or deny within {self.minutes:g} minutes."
        )


STOPPED_MARK = "_(stopped)_"
