"""Pure conversions between console input and the engine's types."""

from __future__ import annotations

import getpass
import uuid

from core.events import ConversationKey, Event, Platform, User


def session_key() -> ConversationKey:
    """A fresh conversation for one console session."""
    return ConversationKey(Platform.CONSOLE, "local", "console", uuid.uuid4().hex[:8])


def local_user() -> User:
    """The person at the terminal."""
    name = getpass.getuser()
    return User(id=name, name=name)


def line_event(key: ConversationKey, user: User, text: str) -> Event:
    """Our event for one line (or block) typed at the prompt."""
    return Event(key=key, user=user, text=text, delivery_id=uuid.uuid4().hex)
