"""The local knowledge base: chunk files, embed them in batches, search by cosine similarity."""

from __future__ import annotations

import asyncio
import codecs
import errno
import functools
import hashlib
import re
from collections.abc import Callable, Iterable
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
SNIFF_BYTES = 1024


class MissingPathError(FileNotFoundError):
    """A path given to `ingest` does not exist; nothing was ingested."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(errno.ENOENT, "no such file or folder", str(paths[0]))
        self.paths = paths

    def __str__(self) -> str:
        return "no such file or folder: " + ", ".join(str(p) for p in self.paths)


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


def not_text(data: bytes) -> str | None:
    """Why `data` is not UTF-8 text (judged on its first KB), or None when it is."""
    head = data[:SNIFF_BYTES]
    if b"\0" in head:
        return "binary: NUL bytes in the first KB"
    try:  # a character cut at the 1 KB boundary is fine; an invalid byte before it is not
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(data) <= SNIFF_BYTES)
    except UnicodeDecodeError:
        return "not UTF-8 text: undecodable bytes in the first KB"
    return None


def list_files(paths: list[Path]) -> list[Path]:
    """The files to ingest: each path, or the files under it (sorted); `MissingPathError` when
    any path does not exist."""
    missing = [path for path in paths if not path.exists()]
    if missing:
        raise MissingPathError(missing)
    files: list[Path] = []
    for path in paths:
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


def read_file(path: Path) -> tuple[str, bytes] | str:
    """(the key it is stored under, its bytes), or why it is skipped."""
    if path.suffix.lower() not in TEXT_SUFFIXES or not path.is_file():
        return f"only {', '.join(sorted(TEXT_SUFFIXES))} files"
    try:
        return str(path.resolve()), path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"


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
    """Embeddings stored in the database; searched in memory with numpy.

    The vectors are loaded on first search and again whenever the database's revision of the files
    changes, so a running server sees files another process (`python -m bots ingest`) added."""

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
        self._revision: tuple[int, int, int] | None = None
        self._loading = asyncio.Lock()

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

    async def ingest(
        self, paths: Iterable[Path], *, progress: Callable[[str], None] | None = None
    ) -> IngestReport:
        """Add new or changed files; an unchanged file is a no-op.

        Raises `MissingPathError` (a `FileNotFoundError`) before doing anything when a path does
        not exist. Files that are not text (binary, not UTF-8), empty or unreadable are skipped
        with the reason. `progress` is called once per file with a line such as
        `[3/120] docs/a.md: added (4 chunks)`.
        """
        files = await asyncio.to_thread(list_files, list(paths))
        added: list[str] = []
        unchanged: list[str] = []
        skipped: list[str] = []
        total = 0
        for number, path in enumerate(files, 1):
            outcome, detail, chunks = await self._ingest_file(path)
            if outcome == "skipped":
                skipped.append(f"{path} ({detail})")
            elif outcome == "unchanged":
                unchanged.append(str(path))
            else:
                added.append(str(path))
                total += chunks
            if progress is not None:
                progress(
                    f"[{number}/{len(files)}] {path}: {outcome}{f' ({detail})' if detail else ''}"
                )
        if added:
            self._matrix = None
        return IngestReport(added, unchanged, skipped, total)

    async def _ingest_file(self, path: Path) -> tuple[str, str, int]:
        """Ingest one file: ("added", "N chunks", N), ("unchanged", "", 0) or
        ("skipped", reason, 0)."""
        read = await asyncio.to_thread(read_file, path)
        if isinstance(read, str):
            return "skipped", read, 0
        key, data = read
        digest = hashlib.sha256(data).hexdigest()
        stored = await self._store.knowledge.digest(key)
        reason = "empty" if not data.strip() else not_text(data)
        chunks = chunk_text(data.decode("utf-8-sig", "replace")) if reason is None else []
        if reason is None and not chunks:
            reason = "empty"
        if reason is not None:
            if stored is not None and stored != digest:  # it had passages: they are stale now
                await self._store.knowledge.replace_file(key, digest, self._model, [])
                self._matrix = None
                reason += "; its earlier passages were removed"
            return "skipped", reason, 0
        if stored == digest:
            return "unchanged", "", 0
        vectors = await self._embed([f"{c.heading}\n{c.text}" for c in chunks])
        rows = [
            KnowledgeChunk(c.position, c.heading, c.text, v.tobytes())
            for c, v in zip(chunks, vectors, strict=True)
        ]
        await self._store.knowledge.replace_file(key, digest, self._model, rows)
        return "added", f"{len(chunks)} chunk{'' if len(chunks) == 1 else 's'}", len(chunks)

    async def _load(self) -> None:
        # The revision is read before the chunks: a file ingested in between makes the next
        # search load again, instead of these chunks passing for the newer revision.
        revision = await self._store.knowledge.revision()
        rows = await self._store.knowledge.chunks(self._model)
        self._rows = [(r.path, r.position, r.heading, r.text) for r in rows]
        self._matrix = (
            np.vstack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
            if rows
            else np.zeros((0, 1))
        )
        self._revision = revision

    async def _fresh(self) -> None:
        """Load the vectors when none are loaded or the database's files changed since."""
        if self._matrix is not None and await self._store.knowledge.revision() == self._revision:
            return
        async with self._loading:  # one load at a time; the others use its result
            if self._matrix is None or await self._store.knowledge.revision() != self._revision:
                await self._load()

    async def search(self, query: str, k: int = 4) -> list[Hit]:
        """The `k` chunks most similar to the query."""
        await self._fresh()
        matrix, rows = self._matrix, self._rows  # a reload while the query is embedded is fine
        assert matrix is not None
        if not rows:
            return []
        scores = matrix @ (await self._embed([query]))[0]
        best = np.argsort(-scores)[:k]
        hits = []
        for i in best:
            path, position, heading, text = rows[i]
            hits.append(Hit(path, position, heading, text, float(scores[i])))
        return hits
