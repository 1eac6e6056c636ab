"""The local knowledge base: chunk files, embed them in batches, search by cosine similarity."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openai

from core.llm.retry import RetryPolicy, call_with_retries
from core.store import Store
from core.store.knowledge import KnowledgeChunk

TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".rst"}
CHUNK_CHARS = 1_200
OVERLAP_CHARS = 150


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a file, with the heading it sits under."""

    position: int
    heading: str
    text: str


@dataclass(frozen=True, slots=True)
class Hit:
    """A search result."""

    path: str
    position: int
    heading: str
    text: str
    score: float

    @property
    def source(self) -> str:
        where = f" § {self.heading}" if self.heading else ""
        return f"{Path(self.path).name}{where} (part {self.position + 1})"


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an ingest did."""

    added: list[str]
    unchanged: list[str]
    skipped: list[str]
    chunks: int


def chunk_text(text: str, *, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[Chunk]:
    """Split Markdown/text at headings, then paragraphs, into chunks of about `size` characters."""
    chunks: list[Chunk] = []
    heading = ""
    buffer = ""

    def flush() -> None:
        nonlocal buffer
        if buffer.strip():
            chunks.append(Chunk(len(chunks), heading, buffer.strip()))
        buffer = buffer[-overlap:] if len(buffer) > size else ""

    for block in re.split(r"\n\s*\n", text):
        match = re.match(r"^#{1,6}\s+(.+)", block.strip())
        if match:
            if buffer.strip():
                flush()
                buffer = ""
            heading = match.group(1).strip()
        while len(block) > size:  # a very long paragraph: cut it at sentence or word ends
            cut = max(block.rfind(". ", 0, size), block.rfind(" ", 0, size), size // 2)
            buffer += block[: cut + 1]
            flush()
            block = block[cut + 1 :]
        if len(buffer) + len(block) > size:
            flush()
        buffer += ("\n\n" if buffer else "") + block
    flush()
    return chunks


class KnowledgeBase:
    """Embeddings stored in the database; searched in memory with numpy (loaded once, refreshed on ingest)."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        store: Store,
        *,
        model: str,
        policy: RetryPolicy,
        batch: int = 64,
    ) -> None:
        self._client = client
        self._store = store
        self._model = model
        self._policy = policy
        self._batch = batch
        self._matrix: np.ndarray | None = None
        self._rows: list[tuple[str, int, str, str]] = []

    async def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = []
        for start in range(0, len(texts), self._batch):
            part = texts[start : start + self._batch]
            result = await call_with_retries(
                self._policy,
                functools.partial(self._client.embeddings.create, model=self._model, input=part),
            )
            vectors += [item.embedding for item in sorted(result.data, key=lambda d: d.index)]
        matrix = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1, norms)

    async def ingest(self, paths: Iterable[Path]) -> IngestReport:
        """Add new or changed files; an unchanged file is a no-op."""
        added, unchanged, skipped, total = [], [], [], 0
        files = []
        for path in paths:
            files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for path in files:
            if path.suffix.lower() not in TEXT_SUFFIXES or not path.is_file():
                skipped.append(f"{path} (only {', '.join(sorted(TEXT_SUFFIXES))} files)")
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            key = str(path.resolve())
            if await self._store.knowledge.digest(key) == digest:
                unchanged.append(str(path))
                continue
            chunks = chunk_text(data.decode("utf-8", "replace"))
            vectors = (
                await self._embed([f"{c.heading}\n{c.text}" for c in chunks]) if chunks else None
            )
            rows = [
                KnowledgeChunk(c.position, c.heading, c.text, v.tobytes())
                for c, v in zip(chunks, vectors if vectors is not None else [], strict=True)
            ]
            await self._store.knowledge.replace_file(key, digest, self._model, rows)
            added.append(str(path))
            total += len(chunks)
        if added:
            self._matrix = None
        return IngestReport(added, unchanged, skipped, total)

    async def _load(self) -> None:
        rows = await self._store.knowledge.chunks(self._model)
        self._rows = [(r.path, r.position, r.heading, r.text) for r in rows]
        self._matrix = (
            np.vstack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
            if rows
            else np.zeros((0, 1))
        )

    async def search(self, query: str, k: int = 4) -> list[Hit]:
        """The `k` chunks most similar to the query."""
        if self._matrix is None:
            await self._load()
        assert self._matrix is not None
        if not self._rows:
            return []
        scores = self._matrix @ (await self._embed([query]))[0]
        best = np.argsort(-scores)[:k]
        hits = []
        for i in best:
            path, position, heading, text = self._rows[i]
            hits.append(Hit(path, position, heading, text, float(scores[i])))
        return hits
