"""Search the team's knowledge base (files added with `python -m bots ingest PATH...`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.plugin import ToolContext, ToolError, tool


@tool
async def search_knowledge(
    ctx: ToolContext,
    query: str,
    top_k: Annotated[int, Field(description="How many passages to return", ge=1, le=10)] = 4,
) -> str:
    """Search the team's documents and return the most relevant passages with their sources; cite them.

    Args:
        query: what to look for, in plain words
    """
    knowledge = ctx.services.knowledge
    if knowledge is None:
        raise ToolError("no knowledge base is configured on this server")
    hits = await knowledge.search(query, top_k)
    if not hits:
        return (
            "The knowledge base is empty: an admin can add files with `python -m bots ingest PATH`."
        )
    return "\n\n".join(f"[{i}] {hit.source}\n{hit.text}" for i, hit in enumerate(hits, 1))
