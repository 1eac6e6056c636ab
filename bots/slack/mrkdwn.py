"""Markdown, as models write it, to Slack's mrkdwn."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^(\s*)```[\w+#.-]*\s*$")
_INLINE_CODE = re.compile(r"(`[^`\n]+`)")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str) -> str:
    """Convert one line's inline markup, leaving `code` spans untouched."""
    parts = _INLINE_CODE.split(text)
    links: list[str] = []

    def keep_link(match: re.Match[str]) -> str:
        links.append(f"<{match.group(2)}|{_escape(match.group(1))}>")
        return f"\x00{len(links) - 1}\x00"

    for i, part in enumerate(parts):
        if i % 2:  # a code span: only escape
            parts[i] = _escape(part)
            continue
        part = _LINK.sub(keep_link, part)
        part = _escape(part)
        part = _BOLD.sub(lambda m: "\x01" + m.group(2) + "\x01", part)
        part = _ITALIC_STAR.sub(r"_\1_", part)
        part = _STRIKE.sub(r"~\1~", part)
        part = part.replace("\x01", "*")
        parts[i] = re.sub("\x00(\\d+)\x00", lambda m: links[int(m.group(1))], part)
    return "".join(parts)


def to_mrkdwn(markdown: str) -> str:
    """Bold, italics, strike, links, headings and lists converted; code kept verbatim."""
    out: list[str] = []
    in_code = False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
            out.append("```")
            continue
        if in_code:
            out.append(_escape(line))
            continue
        heading = _HEADING.match(line)
        if heading:
            out.append(f"*{_inline(heading.group(1))}*")
            continue
        quote = ""
        if line.startswith(">"):
            quote, line = "> ", line[1:].lstrip()
        bullet = _BULLET.match(line)
        if bullet:
            line = f"{bullet.group(1)}• {line[bullet.end() :]}"
        out.append(quote + _inline(line))
    return "\n".join(out)
