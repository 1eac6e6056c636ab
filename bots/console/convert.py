"""Pure conversions between console input and the engine's types, and text made safe to show."""

from __future__ import annotations

import getpass
import re
import uuid
from collections.abc import Iterable

from core.events import ConversationKey, Event, Platform, User

BLOCK = '"""'
"""Opens a multi-line block at the start of a line; the next one closes it."""
CONTINUE = "\\"
"""At the end of a line: the message continues on the next line."""

# C0 controls but tab and newline, DEL, C1 controls (0x9b is CSI on some terminals) and surrogates.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


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


def decode_line(data: bytes, encoding: str = "utf-8") -> str:
    """One line read from a pipe or file: undecodable bytes become U+FFFD, the line end goes."""
    return data.removesuffix(b"\n").removesuffix(b"\r").decode(encoding, errors="replace")


def printable(text: str) -> str:
    """`text` as it may reach a terminal: control characters other than newline and tab are
    shown escaped (ESC as `\\x1b`), so neither the model nor a pasted line can move the cursor,
    recolour, retitle or clear the terminal. CRLF line ends become newlines."""
    if text.isprintable():
        return text
    text = text.replace("\r\n", "\n")
    return _UNPRINTABLE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def help_text(console: Iterable[str], engine: str) -> str:
    """`/help` in the console: its own commands and ways of typing, then the engine's commands."""
    return "\n".join(["Console:", *console, "Commands:", engine])


class Composer:
    """Builds one message from the lines typed: a line ending with `\\` continues on the next,
    and a line starting with `\"\"\"` opens a block that ends at a line ending with `\"\"\"`.

    `feed` takes what one Enter submitted (a pasted chunk may hold newlines) and returns the
    message once it is complete, else None.
    """

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._block = False

    @property
    def pending(self) -> bool:
        """Whether a message is half typed (a continuation prompt is due)."""
        return self._block or bool(self._lines)

    def reset(self) -> None:
        """Drop the half-typed message."""
        self._lines.clear()
        self._block = False

    def feed(self, line: str) -> str | None:
        if self._block:
            end = line.rstrip()
            if end.endswith(BLOCK):
                self._lines.append(end[: -len(BLOCK)])
                return self._take()
            self._lines.append(line)
            return None
        start = line.lstrip()
        if start.startswith(BLOCK):
            rest = start[len(BLOCK) :]
            if rest.rstrip().endswith(BLOCK):  # """one line"""
                self._lines.append(rest.rstrip()[: -len(BLOCK)])
                return self._take()
            self._block = True
            if rest.strip():
                self._lines.append(rest)
            return None
        if line.endswith(CONTINUE):
            self._lines.append(line[: -len(CONTINUE)])
            return None
        self._lines.append(line)
        return self._take()

    def _take(self) -> str:
        text = "\n".join(self._lines).strip()
        self.reset()
        return text
