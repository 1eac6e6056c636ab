"""Knowledge search (ingest, ranking, re-ingest) and image generation, through the simulator."""

from __future__ import annotations

from pathlib import Path

from bots.services import Services
from core.knowledge import chunk_text
from simulator import Simulator, Text, ToolCalls
from tests.conftest import RecordingReply, make_event

HANDBOOK = """# Holidays

Every employee gets 25 days of paid holiday per year. Unused holiday days carry over until March.

# Parking

The office car park is on level 2. Parking permits are issued by reception on request.
"""
EXPENSES = """# Expenses

Submit travel expenses within 30 days with receipts attached. Meals are reimbursed up to 40 euros.
"""


def _docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "handbook.md").write_text(HANDBOOK)
    (folder / "expenses.md").write_text(EXPENSES)
    (folder / "logo.png").write_bytes(b"\x89PNG")
    return folder


def test_chunks_follow_headings() -> None:
    chunks = chunk_text(HANDBOOK)
    assert [c.heading for c in chunks] == ["Holidays", "Parking"]
    long = chunk_text("word " * 2000, size=500)
    assert all(len(c.text) <= 650 for c in long) and len(long) > 10


async def test_ingest_then_search_ranks_the_relevant_passage_first(
    services: Services, sim: Simulator, tmp_path: Path
) -> None:
    knowledge = services.knowledge
    report = await knowledge.ingest([_docs(tmp_path)])
    assert sorted(Path(p).name for p in report.added) == ["expenses.md", "handbook.md"]
    assert report.chunks == 3 and any("logo.png" in s for s in report.skipped)
    hits = await knowledge.search("how many paid holiday days per year", 2)
    assert hits[0].heading == "Holidays" and hits[0].score > hits[1].score
    parking = await knowledge.search("where is the car park for parking", 1)
    assert parking[0].heading == "Parking"
    embeds = len(sim.requests_to("embeddings"))
    again = await knowledge.ingest([tmp_path / "docs"])
    assert again.added == [] and len(again.unchanged) == 2
    assert len(sim.requests_to("embeddings")) == embeds, (
        "re-ingesting unchanged files embeds nothing"
    )


async def test_the_model_can_search_and_cite(
    services: Services, sim: Simulator, tmp_path: Path
) -> None:
    await services.knowledge.ingest([_docs(tmp_path)])
    sim.enqueue(
        ToolCalls.of(("search_knowledge", {"query": "meal expenses reimbursed", "top_k": 1})),
        Text("Meals are reimbursed up to 40 euros [1]."),
    )
    reply = RecordingReply()
    await services.engine.handle(make_event("how much for meals?"), reply)
    tool_output = next(
        m for m in sim.requests_to("chat")[-1].body["messages"] if m["role"] == "tool"
    )  # type: ignore[index]
    assert tool_output["content"].startswith("[1] expenses.md § Expenses (part 1)")
    assert "40 euros" in tool_output["content"]


async def test_a_generated_image_is_uploaded_into_the_conversation(
    services: Services, sim: Simulator
) -> None:
    sim.enqueue(
        ToolCalls.of(("generate_image", {"prompt": "a heron at dawn", "size": None})),
        Text("Here it is."),
    )
    reply = RecordingReply()
    await services.engine.handle(make_event("draw a heron"), reply)
    assert reply.final == "Here it is."
    assert [(f.name, f.mime_type) for f in reply.files] == [("image.png", "image/png")]
    assert reply.files[0].data.startswith(b"\x89PNG")
    assert sim.requests_to("images")[0].body["size"] == "1024x1024"  # type: ignore[index]
