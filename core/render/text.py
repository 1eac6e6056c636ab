"""Splitting long replies for platforms with message-length limits (shared by every adapter).

`split_message` cuts at the best boundary that fits: a blank line (paragraph), then a line
end, then a sentence end, then a space, and only hard-cuts when nothing else fits. A fenced code
block (``` or ~~~, CommonMark style: the fence starts a line, a closing fence is bare and at least
as long) that a cut falls inside is closed at the end of one chunk and reopened, with its language
tag, at the start of the next. Only whitespace at a cut is dropped; every other character of the
text appears, in order, in exactly one chunk. A fence the text itself leaves open at its very end
stays open: nothing is invented for the last chunk.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

MIN_LIMIT = 16
"""The smallest limit accepted: room for a reopened fence, some code and its closing fence."""

_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^\s`]*)[^\n]*$")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"([.!?…][\"'”’)\]]*)[ \t]+")
_WORD = re.compile(r"[ \t]+")
_SPACE = re.compile(r"\s*")


@dataclass(frozen=True)
class _Fence:
    """An open code block: its fence marker (``` or longer, or ~~~) and language tag."""

    marker: str
    lang: str


@dataclass(frozen=True)
class _FenceLine:
    """A line that opens or closes a code block, and the block open after it (if any)."""

    start: int
    end: int  # end of the line's visible text (trailing spaces excluded)
    after: _Fence | None
    closes: bool


def split_message(text: str, limit: int) -> list[str]:
    """Split `text` into non-empty chunks of at most `limit` characters each.

    Prefers paragraph, then line, then sentence, then word boundaries; closes a code fence left
    open at a cut and reopens it (same language tag) in the next chunk. Raises ValueError for a
    `limit` below MIN_LIMIT.
    """
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} characters, not {limit}")
    return list(_Splitter(text, limit).chunks())


class _Splitter:
    """One split: the text, its fence lines, and the greedy walk over it."""

    def __init__(self, text: str, limit: int) -> None:
        self.text = text
        self.limit = limit
        self.fences = _scan_fences(text)
        self._ends = [fence.end for fence in self.fences]
        self._openers = {fence.start for fence in self.fences if not fence.closes}

    def chunks(self) -> Iterator[str]:
        """Yield the chunks, first to last."""
        text, pos = self.text, _skip_space(self.text, 0)
        while pos < len(text):
            opening = self._fence_at(pos)
            prefix = self._reopen(opening)
            rest = text[pos:].rstrip()
            if not rest:
                return
            if len(prefix) + len(rest) <= self.limit:
                yield prefix + rest
                return
            end = self._cut(pos, len(prefix))
            if end is None:  # only indentation fits: drop it and go on from the visible text
                pos = _skip_all_space(text, pos)
                continue
            body = text[pos:end].rstrip()
            closing = self._fence_at(pos + len(body))
            repair = closing is not None and self._repairable(closing)
            suffix = "\n" + closing.marker if closing and repair else ""
            yield prefix + body + suffix
            pos = _skip_space(text, end)

    def _cut(self, pos: int, prefix_len: int) -> int | None:
        """The end of the best body for a chunk starting at `pos`, or None if nothing fits."""
        window_end = min(len(self.text), pos + self.limit - prefix_len + 1)
        levels = [list(self._candidates(level, pos, window_end)) for level in _LEVELS]
        least = (self.limit - prefix_len) // 3
        fits = self._fits
        for good_only in (True, False):
            for candidates in levels:
                for end in candidates:
                    if (
                        end - pos > least
                        and fits(pos, end, prefix_len)
                        and (not good_only or self._good(pos, end))
                    ):
                        return end
        for candidates in levels:
            for end in candidates:
                if fits(pos, end, prefix_len):
                    return end
        for strict in (True, False):  # the last resort: a hard cut
            for end in range(window_end, pos, -1):
                if fits(pos, end, prefix_len, strict=strict):
                    return end
        return None

    def _fits(self, pos: int, end: int, prefix_len: int, *, strict: bool = True) -> bool:
        """Whether the body text[pos:end] (and any fence lines it needs) fits in a chunk.

        `strict` also refuses a cut that would start the next chunk with a mid-line run of
        backticks or tildes, which would render there as a fence.
        """
        body_end = self._visible_end(pos, end)
        if body_end == pos:
            return False
        if strict and self._false_fence_after(end):
            return False
        fence = self._fence_at(body_end)
        closer = len(fence.marker) + 1 if fence is not None and self._repairable(fence) else 0
        return prefix_len + (body_end - pos) + closer <= self.limit

    def _false_fence_after(self, end: int) -> bool:
        """Whether the next chunk would start with ``` or ~~~ that is not at a line start."""
        text = self.text
        start = _skip_space(text, end)
        if not text.startswith(("```", "~~~"), start):
            return False
        line_start = text.rfind("\n", 0, start) + 1
        return bool(text[line_start:start].strip())

    def _candidates(
        self, level: tuple[re.Pattern[str], int], pos: int, window_end: int
    ) -> Iterator[int]:
        """Cut positions (body ends) for one kind of boundary, latest first."""
        regex, group = level
        search_end = min(len(self.text), window_end + self.limit)
        matches = regex.finditer(self.text, pos, search_end)
        ends = [m.end(group) if group else m.start() for m in matches]
        return (end for end in reversed(ends) if pos < end <= window_end)

    def _good(self, pos: int, end: int) -> bool:
        """False for an awkward cut: around an empty code block, or inside `code` or a <link>."""
        text = self.text
        body_end = self._visible_end(pos, end)
        line_start = text.rfind("\n", 0, body_end) + 1
        inside = self._fence_at(body_end)
        if inside is not None:
            just_opened = line_start in self._openers
            next_start = _skip_space(text, end)
            next_end = text.find("\n", next_start)
            next_line = text[next_start : next_end if next_end >= 0 else len(text)]
            return not just_opened and not _closes(next_line, inside)
        if "\n" in text[end : _skip_all_space(text, end)]:
            return True  # a cut at a line end; inline markup cannot span lines
        line = text[line_start:body_end]
        return line.count("`") % 2 == 0 and line.count("<") <= line.count(">")

    def _visible_end(self, pos: int, end: int) -> int:
        """`end` moved back over trailing whitespace, but not before `pos`."""
        text = self.text
        while end > pos and text[end - 1].isspace():
            end -= 1
        return end

    def _fence_at(self, index: int) -> _Fence | None:
        """The code block open at `index` (a fence line counts once its text is complete)."""
        at = bisect.bisect_right(self._ends, index)
        return self.fences[at - 1].after if at else None

    def _reopen(self, fence: _Fence | None) -> str:
        """The line that reopens `fence` at the start of a chunk ("" if none or no room)."""
        if fence is None or not self._repairable(fence):
            return ""
        tagged = f"{fence.marker}{fence.lang}\n"
        if len(tagged) + len(fence.marker) + 1 <= self.limit // 2:
            return tagged
        return fence.marker + "\n"

    def _repairable(self, fence: _Fence) -> bool:
        """Whether a bare reopen and close of `fence` leave at least half a chunk for content."""
        return 2 * (len(fence.marker) + 1) <= self.limit // 2


_LEVELS: list[tuple[re.Pattern[str], int]] = [
    (_PARAGRAPH, 0),
    (_LINE, 0),
    (_SENTENCE, 1),
    (_WORD, 0),
]


def _scan_fences(text: str) -> list[_FenceLine]:
    """Every line that opens or closes a code block, in order."""
    found: list[_FenceLine] = []
    open_fence: _Fence | None = None
    for match in re.finditer(r"^.*$", text, re.MULTILINE):
        line = match.group(0)
        fence = _FENCE_LINE.match(line)
        if fence is None:
            continue
        marker, lang = fence.group(1), fence.group(2)
        if marker[0] == "`" and "`" in line[fence.end(1) :]:
            continue  # ```like this``` is inline code, not a fence
        start, end = match.start(), match.start() + len(line.rstrip())
        if open_fence is None:
            open_fence = _Fence(marker, lang)
            found.append(_FenceLine(start, end, open_fence, closes=False))
        elif _closes(line, open_fence):
            open_fence = None
            found.append(_FenceLine(start, end, None, closes=True))
    return found


def _closes(line: str, fence: _Fence) -> bool:
    """Whether `line` is a closing fence for `fence` (same character, as long, nothing after)."""
    bare = line.strip()
    char = fence.marker[0]
    return (
        len(line) - len(line.lstrip(" ")) <= 3
        and bare == char * len(bare)
        and len(bare) >= len(fence.marker)
    )


def _skip_space(text: str, pos: int) -> int:
    """Skip the whitespace a cut drops, keeping the indentation of the next line."""
    visible = _skip_all_space(text, pos)
    newline = text.rfind("\n", pos, visible)
    return newline + 1 if newline >= 0 else visible


def _skip_all_space(text: str, pos: int) -> int:
    """The index of the next non-whitespace character at or after `pos`."""
    match = _SPACE.match(text, pos)
    return match.end() if match else pos
