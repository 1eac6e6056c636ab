"""Web search citations (`url_citation` annotations) as Markdown links in the answer's text.

Both adapters render Markdown links (Slack's mrkdwn converter turns them into `<url|text>`). A
cited span that is already a link is left alone; a plain span becomes `[span](url)`; an empty
span gets the source appended as `([title](url))`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from core.llm.types import Citation

_LINK = re.compile(r"^\(?\[[^\]\n]+\]\(\S+\)\)?$")


def url_citations(annotations: Iterable[Any]) -> list[Mapping[str, Any]]:
    """The well-formed `url_citation` annotations of one output text part."""
    return [
        a
        for a in annotations
        if isinstance(a, dict)
        and a.get("type") == "url_citation"
        and isinstance(a.get("url"), str)
        and urlparse(a["url"]).scheme in ("http", "https")
    ]


def link_citations(text: str, annotations: Iterable[Mapping[str, Any]]) -> str:
    """`text` with each cited span linked to its source (annotations index into `text`)."""
    spans = []
    for a in annotations:
        start, end = a.get("start_index"), a.get("end_index")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(text):
            spans.append((start, end, a))
    # Right to left, so earlier indices stay valid; overlapping spans keep the first.
    out, limit = text, len(text) + 1
    for start, end, a in sorted(spans, key=lambda s: s[0], reverse=True):
        if end > limit:
            continue
        span = text[start:end]
        if _LINK.match(span.strip()):
            limit = start
            continue
        title = _label(a)
        url = a["url"]
        linked = f"[{span.strip()}]({url})" if span.strip() else f" ([{title}]({url}))"
        if span.strip():
            linked = span[: len(span) - len(span.lstrip())] + linked + span[len(span.rstrip()) :]
        out = out[:start] + linked + out[end:]
        limit = start
    return out


def citations_of(annotations: Iterable[Mapping[str, Any]]) -> tuple[Citation, ...]:
    """The distinct sources, in order."""
    seen: dict[str, Citation] = {}
    for a in annotations:
        seen.setdefault(a["url"], Citation(a["url"], str(a.get("title") or "")))
    return tuple(seen.values())


def _label(annotation: Mapping[str, Any]) -> str:
    title = str(annotation.get("title") or "").replace("[", "(").replace("]", ")").strip()
    return title or urlparse(annotation["url"]).hostname or "source"
