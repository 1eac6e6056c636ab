"""Markdown tables in a reply: found once here, rendered per platform by the adapters.

A table is a header row, a delimiter row (`| --- | :-: |`) and body rows, outside code fences.
Slack shows them through its `markdown` block; Discord, which renders no tables, in a code fence
so the columns stay aligned.
"""

from __future__ import annotations

import re

_DELIMITER = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def _is_row(line: str) -> bool:
    return "|" in line and bool(line.strip())


def table_spans(text: str) -> list[tuple[int, int]]:
    """(first line, line after the last) of every table, by line number."""
    lines = text.split("\n")
    spans: list[tuple[int, int]] = []
    in_code = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if _FENCE.match(line):
            in_code = not in_code
        elif (
            not in_code
            and index + 1 < len(lines)
            and _is_row(line)
            and "-" in lines[index + 1]
            and _DELIMITER.match(lines[index + 1])
        ):
            end = index + 2
            while end < len(lines) and _is_row(lines[end]) and not _FENCE.match(lines[end]):
                end += 1
            spans.append((index, end))
            index = end
            continue
        index += 1
    return spans


def has_table(text: str) -> bool:
    """Whether the text holds a Markdown table outside code."""
    return "|" in text and bool(table_spans(text))


def fence_tables(text: str) -> str:
    """The text with every table inside a code fence (for platforms that render no tables)."""
    spans = table_spans(text) if "|" in text else []
    if not spans:
        return text
    lines = text.split("\n")
    for start, end in reversed(spans):
        lines[start:end] = ["```", *lines[start:end], "```"]
    return "\n".join(lines)
