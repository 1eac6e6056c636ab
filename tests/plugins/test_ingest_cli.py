"""`ingest` as `python -m bots ingest` runs it: a running server sees what another process ingested,
progress per file, missing paths refused, binary and empty files skipped with the reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bots.services import Services, build_services
from bots.settings import AppSettings as Settings
from core.knowledge.base import MissingPathError
from simulator import Simulator

PARKING = "# Parking\n\nThe office car park is on level 2. Permits come from reception.\n"
HOLIDAYS = "# Holidays\n\nEvery employee gets 25 days of paid holiday per year.\n"


@pytest.fixture
async def cli(make_settings: Callable[..., Settings]) -> AsyncIterator[Services]:
    """A second process's services on the same database: the `ingest` command's."""
    built = await build_services(make_settings())
    yield built
    await built.close()


async def test_a_running_server_sees_files_ingested_by_another_process(
    services: Services, cli: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = services.knowledge
    loads = 0
    original = services.store.knowledge.chunks

    async def counting(model: str):  # type: ignore[no-untyped-def]
        nonlocal loads
        loads += 1
        return await original(model)

    monkeypatch.setattr(services.store.knowledge, "chunks", counting)
    assert await server.search("where is the car park", 1) == []
    (tmp_path / "parking.md").write_text(PARKING)
    await cli.knowledge.ingest([tmp_path / "parking.md"])
    [hit] = await server.search("where is the car park", 1)
    assert "level 2" in hit.text, "the server reloaded after the other process's ingest"
    await server.search("car park", 1)
    await server.search("permits", 1)
    assert loads == 2, "no reload while nothing changed"

    (tmp_path / "parking.md").write_text(PARKING.replace("level 2", "level 5"))
    report = await cli.knowledge.ingest([tmp_path / "parking.md"])
    assert len(report.added) == 1
    [hit] = await server.search("where is the car park", 1)
    assert "level 5" in hit.text, "a re-ingested file (same file count) is seen too"
    assert loads == 3


async def test_progress_is_reported_per_file(services: Services, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(PARKING)
    (docs / "b.md").write_text(HOLIDAYS)
    (docs / "c.png").write_bytes(b"\x89PNG\r\n")
    lines: list[str] = []
    await services.knowledge.ingest([docs], progress=lines.append)
    assert lines == [
        f"[1/3] {docs / 'a.md'}: added (1 chunk)",
        f"[2/3] {docs / 'b.md'}: added (1 chunk)",
        f"[3/3] {docs / 'c.png'}: skipped (only .markdown, .md, .rst, .txt files)",
    ]
    lines.clear()
    await services.knowledge.ingest([docs / "a.md"], progress=lines.append)
    assert lines == [f"[1/1] {docs / 'a.md'}: unchanged"]


async def test_a_missing_path_is_an_error_and_nothing_is_ingested(
    services: Services, sim: Simulator, tmp_path: Path
) -> None:
    (tmp_path / "real.md").write_text(PARKING)
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FileNotFoundError) as caught:
        await services.knowledge.ingest([tmp_path / "real.md", missing])
    assert isinstance(caught.value, MissingPathError)
    assert str(caught.value) == f"no such file or folder: {missing}"
    assert caught.value.filename == str(missing)
    assert sim.requests_to("embeddings") == []
    assert await services.store.knowledge.revision() == (0, 0, 0)


async def test_binary_and_undecodable_files_are_skipped_not_embedded(
    services: Services, sim: Simulator, tmp_path: Path
) -> None:
    (tmp_path / "logo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (tmp_path / "latin1.md").write_bytes("# Café\n\nrésumé".encode("latin-1"))
    (tmp_path / "late-nul.md").write_bytes(b"# Notes\n\n" + b"a" * 2000 + b"\x00")  # past 1 KB
    # a multi-byte character cut by the 1 KB boundary is still text
    (tmp_path / "cut.md").write_bytes(b"# Cut\n\n" + b"x" * 1016 + "é".encode() + b" tail")
    names = ["cut.md", "late-nul.md", "latin1.md", "logo.md"]
    report = await services.knowledge.ingest([tmp_path / name for name in names])
    skipped = dict(line.split(" (", 1) for line in report.skipped)
    assert skipped == {
        str(tmp_path / "latin1.md"): "not UTF-8 text: undecodable bytes in the first KB)",
        str(tmp_path / "logo.md"): "binary: NUL bytes in the first KB)",
    }
    assert sorted(Path(p).name for p in report.added) == ["cut.md", "late-nul.md"]
    embedded = [text for r in sim.requests_to("embeddings") for text in (r.body or {})["input"]]
    assert not any("IHDR" in text or "sum" in text for text in embedded)


async def test_empty_files_are_reported(services: Services, sim: Simulator, tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("\n\n   \n")
    report = await services.knowledge.ingest([tmp_path / "empty.md", tmp_path / "blank.txt"])
    assert report.added == [] and report.chunks == 0
    assert report.skipped == [
        f"{tmp_path / 'empty.md'} (empty)",
        f"{tmp_path / 'blank.txt'} (empty)",
    ]
    assert sim.requests_to("embeddings") == []
    again = await services.knowledge.ingest([tmp_path / "empty.md"])
    assert again.skipped == [f"{tmp_path / 'empty.md'} (empty)"], "still reported, not 'unchanged'"


async def test_a_file_emptied_since_its_ingest_leaves_the_search(
    services: Services, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(PARKING)
    await services.knowledge.ingest([notes])
    assert await services.knowledge.search("car park", 1)
    notes.write_text("")
    report = await services.knowledge.ingest([notes])
    assert report.skipped == [f"{notes} (empty; its earlier passages were removed)"]
    assert await services.knowledge.search("car park", 1) == []
