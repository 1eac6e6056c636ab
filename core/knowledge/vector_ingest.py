"""Upload files into an OpenAI vector store for the `file_search` tool (server-side backend)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import openai

from core.store import Store

SUPPORTED = {".md", ".txt", ".pdf", ".html", ".json", ".py", ".csv", ".docx"}


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an ingest run did."""

    vector_store_id: str
    uploaded: list[str]
    unchanged: list[str]
    skipped: list[str]


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, and the supported files under named folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED
            )
        else:
            found.append(path)
    return found


async def ingest_to_openai(
    client: openai.AsyncOpenAI, store: Store, paths: Iterable[Path], *, name: str = "default"
) -> IngestReport:
    """Create the named vector store if needed and upload new or changed files into it."""
    vector_store_id = await store.vector_stores.get(name)
    if vector_store_id is None:
        created = await client.vector_stores.create(name=f"parley-{name}")
        vector_store_id = created.id
        await store.vector_stores.save(name, vector_store_id)
    uploaded, unchanged, skipped = [], [], []
    for path in expand(paths):
        if not path.is_file():
            skipped.append(f"{path} (not a file)")
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        key = str(path.resolve())
        if await store.vector_stores.file_hash(name, key) == digest:
            unchanged.append(str(path))
            continue
        uploaded_file = await client.files.create(file=(path.name, data), purpose="assistants")
        await client.vector_stores.files.create(
            vector_store_id=vector_store_id, file_id=uploaded_file.id
        )
        await store.vector_stores.record_file(name, key, digest, uploaded_file.id)
        uploaded.append(str(path))
    return IngestReport(vector_store_id, uploaded, unchanged, skipped)
