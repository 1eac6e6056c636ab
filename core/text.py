"""Splitting long replies for platforms with message-length limits (shared by every adapter)."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*```([\w+#.-]*)")
# Preferred cut points, best first: paragraph, line, sentence end, word.
_BREAKS = ("\n\n", "\n", ". ", " ")


def split_message(text: str, limit: int) -> list[str]:
    """Split `text` into chunks of at most `limit` characters.

    Cuts at paragraph, then line, then sentence, then word boundaries, and only hard-cuts a word
    longer than a chunk. A fenced code block cut across chunks is closed at the end of one and
    reopened (with its language tag) at the start of the next. No chunk is empty.
    """
    if limit < 16:
        raise ValueError("limit must be at least 16 characters")
    chunks: list[str] = []
    rest = text.strip("\n")
    reopen = ""  # the fence line to reopen in the next chunk, if a block is open
    while rest:
        room = limit - len(reopen)
        candidate = reopen + rest
        if len(candidate) <= limit:
            chunks.append(candidate)
            break
        cut = _cut_point(rest, room - 4)  # keep room for a closing fence
        piece, rest = rest[:cut], rest[cut:].lstrip("\n")
        if rest.startswith(" "):
            rest = rest[1:]
        body = reopen + piece.rstrip()
        fence = _open_fence(body)
        if fence is not None:
            body = body.rstrip("\n") + "\n```"
            reopen = f"```{fence}\n" if len(fence) < limit // 4 else "```\n"
        else:
            reopen = ""
        if body.strip():
            chunks.append(body)
    return [chunk for chunk in chunks if chunk.strip()]


def _cut_point(text: str, room: int) -> int:
    """The best index at or before `room` to cut `text`."""
    room = max(room, 1)
    for separator in _BREAKS:
        index = text.rfind(separator, 0, room)
        if index > room // 3:
            return index + (len(separator) if separator != "\n\n" else 0)
    return room


def _open_fence(text: str) -> str | None:
    """The language tag of a code block left open at the end of `text`, or None."""
    tag: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if match:
            tag = None if tag is not None else match.group(1)
    return tag
