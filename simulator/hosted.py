"""OpenAI's hosted tools as the simulator plays them on the Responses wire: the items a
`web_search` call, a `code_interpreter` run and a hosted MCP server's approval request produce,
so their handling is tested offline. On the Chat Completions wire these steps are plain text."""

from __future__ import annotations

import uuid
from typing import Any

from simulator.script import CodeRun, McpApproval, Text, WebSearch


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def url_annotations(step: Text) -> list[dict[str, Any]]:
    """`url_citation` annotations of a web search step, indexed into its text."""
    if not isinstance(step, WebSearch):
        return []
    found = []
    for url, title, quoted in step.citations:
        start = step.text.find(quoted) if quoted else len(step.text)
        if start < 0:
            raise ValueError(f"the cited text {quoted!r} is not in the step's text")
        found.append(
            {
                "type": "url_citation",
                "url": url,
                "title": title,
                "start_index": start,
                "end_index": start + len(quoted),
            }
        )
    return found


def call_items(step: Text) -> list[dict[str, Any]]:
    """The hosted tool's own output items, before the message (if any)."""
    if isinstance(step, WebSearch):
        return [
            {
                "id": _id("ws"),
                "type": "web_search_call",
                "status": "completed",
                "action": {"type": "search", "query": step.query or step.text[:60]},
            }
        ]
    if isinstance(step, CodeRun):
        return [
            {
                "id": _id("ci"),
                "type": "code_interpreter_call",
                "status": "completed",
                "code": step.code,
                "container_id": _id("cntr"),
                "outputs": [{"type": "logs", "logs": step.output}],
            }
        ]
    if isinstance(step, McpApproval):
        return [
            {
                "id": _id("mcpr"),
                "type": "mcp_approval_request",
                "server_label": step.server_label,
                "name": step.name,
                "arguments": step.arguments,
            }
        ]
    return []
