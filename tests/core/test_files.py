"""PDFs and text files in messages: made here with pypdf's writer (plain, encrypted, corrupt),
sent through the engine on both wires: `input_file` parts on Responses, extracted text on Chat
Completions, cut to the budget with a visible note; unreadable files get a clear notice."""

from __future__ import annotations

import io
from collections.abc import Callable

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from bots.services import build_services
from bots.settings import AppSettings as Settings
from core.events import Attachment, ConversationKey, Event, Platform, User
from simulator import Simulator
from tests.conftest import RecordingReply

_count = iter(range(10**6))


def make_pdf(pages: list[str], *, password: str | None = None) -> bytes:
    """A PDF with one line of Helvetica text per page."""
    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(612, 792)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        fonts = DictionaryObject({NameObject("/F1"): writer._add_object(font)})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 10 Tf 20 700 Td ({text}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(stream)
    if password:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _event(*files: tuple[str, str, bytes], text: str = "what does it say?") -> Event:
    return Event(
        key=ConversationKey(Platform.CONSOLE, "w", "c", f"t{next(_count)}"),
        user=User("u1", "ada"),
        text=text,
        delivery_id=f"f{next(_count)}",
        attachments=tuple(Attachment(n, m, len(d), data=d) for n, m, d in files),
    )


async def _run(make_settings: Callable[..., Settings], wire: str, event: Event, **more: object):
    services = await build_services(
        make_settings(openai_wire_api=wire, moderation_enabled=False, **more)
    )
    try:
        reply = RecordingReply()
        outcome = await services.engine.handle(event, reply)
        return reply, outcome
    finally:
        await services.close()


async def test_a_pdf_goes_as_text_on_chat_and_as_input_file_on_responses(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    pdf = make_pdf(["Quarterly revenue grew 12 percent", "Costs fell"])
    reply, outcome = await _run(make_settings, "chat", _event(("q3.pdf", "application/pdf", pdf)))
    user = (sim.requests_to("chat")[-1].body or {})["messages"][-1]["content"]
    assert user.startswith("what does it say?\n\n[Attached file q3.pdf]\n")
    assert "Quarterly revenue grew 12 percent" in user and "Costs fell" in user
    assert reply.notices == [] and outcome is not None
    assert outcome.usage.prompt_tokens > 20, "the file's tokens are counted"
    await _run(make_settings, "responses", _event(("q3.pdf", "application/pdf", pdf)))
    content = (sim.requests_to("responses")[-1].body or {})["input"][-1]["content"]
    assert content[0] == {"type": "input_text", "text": "what does it say?"}
    assert content[1]["type"] == "input_file" and content[1]["filename"] == "q3.pdf"
    assert content[1]["file_data"].startswith("data:application/pdf;base64,JVBER")


async def test_a_text_file_on_both_wires(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    notes = ("notes.md", "text/markdown", b"# Plan\nship on friday\n")
    await _run(make_settings, "chat", _event(notes))
    user = (sim.requests_to("chat")[-1].body or {})["messages"][-1]["content"]
    assert "[Attached file notes.md]\n# Plan\nship on friday" in user
    await _run(make_settings, "responses", _event(notes))
    content = (sim.requests_to("responses")[-1].body or {})["input"][-1]["content"]
    assert content[1]["type"] == "input_file" and content[1]["file_data"].startswith(
        "data:text/markdown"
    )


async def test_a_long_pdf_is_cut_to_the_budget_with_a_note(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    pages = [f"Page {i} " + "lorem ipsum dolor " * 60 for i in range(1, 41)]
    event = _event(("long.pdf", "application/pdf", make_pdf(pages)))
    reply, _ = await _run(
        make_settings, "responses", event, context_budget_tokens=2000, summary_enabled=False
    )
    [note] = reply.notices
    assert note.startswith("long.pdf is longer than I can read in one go: I read pages 1-")
    assert note.endswith(" of 40.")
    content = (sim.requests_to("responses")[-1].body or {})["input"][-1]["content"]
    assert content[1]["type"] == "input_text", "too large for an input_file: its cut text"
    assert content[1]["text"].startswith("[Attached file long.pdf (pages 1-")
    assert "Page 1 " in content[1]["text"] and "Page 40 " not in content[1]["text"]


async def test_encrypted_corrupt_and_undecodable_files_are_refused_clearly(
    sim: Simulator, make_settings: Callable[..., Settings]
) -> None:
    event = _event(
        ("secret.pdf", "application/pdf", make_pdf(["hidden"], password="pw")),
        ("broken.pdf", "application/pdf", b"%PDF-1.7\nnot really a pdf at all"),
        ("latin.txt", "text/plain", "caf\xe9".encode("latin-1")),
        ("open.pdf", "application/pdf", make_pdf(["still readable"])),
    )
    reply, _ = await _run(make_settings, "chat", event)
    assert reply.notices == [
        "I can't read secret.pdf: it is password-protected; send an unprotected copy",
        "I can't read broken.pdf: the file is damaged or not really a PDF",
        "I can't read latin.txt: it is not UTF-8 text",
    ]
    user = (sim.requests_to("chat")[-1].body or {})["messages"][-1]["content"]
    assert "still readable" in user and "hidden" not in user
    assert reply.final is not None, "the turn still answers"
