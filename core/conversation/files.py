"""PDFs and text files attached to a message, for the model.

At intake their text is extracted (pypdf for PDFs, in a thread) so a damaged, encrypted or
non-UTF-8 file is refused with a clear notice before the turn. When the request is built, each
file gets a share of the room the token budget leaves: on the Responses wire a file that fits
goes as an `input_file` (the bytes), on the Chat Completions wire as its extracted text; a file
that does not fit goes as its text cut to the room, with a visible note (to the model and the
user). Its tokens count in the turn's estimate like the rest of the context.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError, PdfStreamError

from core.events import Attachment
from core.llm.tokens import TokenCounter
from core.llm.types import FilePart, Message

PDF = "application/pdf"
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/javascript",
        "application/x-sh",
        "application/sql",
    }
)
PAGE_BREAK = "\f"
PAGE_TOKENS = 255  # OpenAI also shows the model each PDF page as an image: a per-page estimate
MAX_PAGES = 500


class FileRefused(Exception):
    """A file that cannot be read; the message names it and says why."""


def is_document(attachment: Attachment) -> bool:
    """PDFs and text files (what this module reads)."""
    mime = attachment.mime_type.lower()
    return mime == PDF or mime.startswith("text/") or mime in TEXT_TYPES


def extract(attachment: Attachment) -> str:
    """The file's text (PDF pages separated by form feeds); `FileRefused` when unreadable."""
    data = attachment.data or b""
    if attachment.mime_type.lower() != PDF:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FileRefused(f"I can't read {attachment.name}: it is not UTF-8 text") from None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileNotDecryptedError("a password is needed")
        pages = [page.extract_text() or "" for page in reader.pages[:MAX_PAGES]]
    except (FileNotDecryptedError, NotImplementedError):
        raise FileRefused(
            f"I can't read {attachment.name}: it is password-protected; send an unprotected copy"
        ) from None
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, OSError):
        raise FileRefused(
            f"I can't read {attachment.name}: the file is damaged or not really a PDF"
        ) from None
    return PAGE_BREAK.join(pages)


@dataclass(frozen=True, slots=True)
class Fitted:
    """The files as model input, the tokens they take, and notes for the user about cuts."""

    parts: tuple[FilePart, ...]
    tokens: int
    notes: tuple[str, ...]


def fit(
    attachments: tuple[Attachment, ...], tokens: TokenCounter, room: int, *, wire: str
) -> Fitted:
    """Each document (text extracted at intake) within its share of `room` tokens."""
    files = [a for a in attachments if a.text is not None and a.data is not None]
    if not files:
        return Fitted((), 0, ())
    share = max(room // len(files), 0)
    parts: list[FilePart] = []
    notes: list[str] = []
    used = 0
    for attachment in files:
        assert attachment.data is not None and attachment.text is not None
        text = attachment.text
        pages = text.split(PAGE_BREAK) if attachment.mime_type.lower() == PDF else [text]
        cost = tokens.count(text) + (PAGE_TOKENS * len(pages) if len(pages) > 1 or text else 0)
        if cost <= share:
            parts.append(
                FilePart(
                    attachment.name,
                    attachment.mime_type,
                    attachment.data,
                    text.replace(PAGE_BREAK, "\n\n"),
                )
            )
            used += cost if wire == "responses" else tokens.count(text)
            continue
        kept, note = _cut(pages, tokens, share, is_pdf=len(pages) > 1)
        parts.append(
            FilePart(
                attachment.name,
                attachment.mime_type,
                attachment.data,
                kept,
                note=note,
                send_as_text=True,
            )
        )
        used += tokens.count(kept)
        notes.append(f"{attachment.name} is longer than I can read in one go: I read {note}.")
    return Fitted(tuple(parts), used, tuple(notes))


def _cut(pages: list[str], tokens: TokenCounter, room: int, *, is_pdf: bool) -> tuple[str, str]:
    """Whole pages (or a prefix of the text) within `room`, and a note saying what was kept."""
    if not is_pdf:
        kept = tokens.truncate(pages[0], room)
        return kept, f"the first {len(kept):,} of {len(pages[0]):,} characters"
    chosen: list[str] = []
    spent = 0
    for page in pages:
        cost = tokens.count(page) + 2
        if spent + cost > room:
            break
        chosen.append(page)
        spent += cost
    if not chosen:
        first = tokens.truncate(pages[0], room)
        return first, f"part of page 1 of {len(pages)}"
    return "\n\n".join(chosen), f"pages 1-{len(chosen)} of {len(pages)}"


def with_files(messages: tuple[Message, ...], parts: tuple[FilePart, ...]) -> tuple[Message, ...]:
    """Attach this turn's documents to its user message (the last one)."""
    if not parts or not messages or messages[-1].role != "user":
        return messages
    return (*messages[:-1], replace(messages[-1], files=parts))
