"""Attachments: download through the platform's loader, check limits, transcribe audio and video."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import openai
import structlog

from core.conversation.files import FileRefused, extract, is_document
from core.events import Attachment, Event
from core.llm.retry import RetryPolicy, call_with_retries
from core.llm.types import ImagePart, Message

log = structlog.get_logger(__name__)

Loader = Callable[[Attachment], Awaitable[bytes]]
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
TRANSCRIPTION_LIMIT = 25 * 1024 * 1024  # the audio API's upload limit


@dataclass(frozen=True, slots=True)
class Prepared:
    """The event with attachment data loaded, the transcript (if any) and notices for the user."""

    event: Event
    transcript: str = ""
    notices: tuple[str, ...] = ()


class Media:
    """Loads attachments with each platform's loader and turns audio into text."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        policy: RetryPolicy,
        max_bytes: int = 20 * 1024 * 1024,
    ) -> None:
        self._client = client
        self._model = model
        self._policy = policy
        self._max_bytes = max_bytes

    async def prepare(self, event: Event, loader: Loader | None) -> Prepared:
        """Load usable attachments with the platform's `loader`; transcribe audio and video;
        explain what was skipped."""
        if not event.attachments:
            return Prepared(event)
        kept: list[Attachment] = []
        transcripts: list[str] = []
        notices: list[str] = []
        limit_mb = self._max_bytes // (1024 * 1024)
        for attachment in event.attachments:
            kind = attachment.kind
            unusable_file = kind == "file" and not is_document(attachment)
            if unusable_file or (kind == "image" and attachment.mime_type not in IMAGE_TYPES):
                notices.append(
                    f"I can't read {attachment.name} ({attachment.mime_type}): I understand "
                    "PNG, JPEG, GIF and WebP images, PDFs, text files, and audio or video clips."
                )
                continue
            if attachment.size > self._max_bytes:
                notices.append(f"{attachment.name} is larger than {limit_mb} MB, so I skipped it.")
                continue
            loaded = await self._load(loader, attachment)
            if loaded is None:
                notices.append(f"I couldn't download {attachment.name}; please try again.")
                continue
            if kind == "image":
                kept.append(loaded)
                continue
            if kind == "file":
                try:
                    document = await asyncio.to_thread(extract, loaded)
                except FileRefused as exc:
                    notices.append(str(exc))
                    continue
                kept.append(replace(loaded, text=document))
                continue
            text = await self._transcribe(loaded)
            if text is None:
                notices.append(f"I couldn't transcribe {attachment.name}.")
            else:
                transcripts.append(text)
        transcript = "\n".join(transcripts)
        text = "\n\n".join(part for part in (event.text, transcript) if part)
        return Prepared(
            replace(event, text=text, attachments=tuple(kept)), transcript, tuple(notices)
        )

    async def _load(self, loader: Loader | None, attachment: Attachment) -> Attachment | None:
        if attachment.data is not None:
            return attachment
        if loader is None:
            return None
        try:
            data = await loader(attachment)
        except Exception as exc:
            log.warning(
                "attachment_download_failed",
                name=attachment.name,
                error=f"{type(exc).__name__}: {exc}",
            )
            return None
        if len(data) > self._max_bytes:
            return None
        return replace(attachment, data=data, size=len(data))

    async def _transcribe(self, attachment: Attachment) -> str | None:
        data = attachment.data
        if data is None or len(data) > TRANSCRIPTION_LIMIT:
            return None
        try:
            result = await call_with_retries(
                self._policy,
                lambda: self._client.audio.transcriptions.create(
                    model=self._model, file=(attachment.name, data)
                ),
            )
        except Exception as exc:
            log.warning(
                "transcription_failed", name=attachment.name, error=f"{type(exc).__name__}: {exc}"
            )
            return None
        return result.text.strip()


def with_images(messages: tuple[Message, ...], event: Event) -> tuple[Message, ...]:
    """Attach this turn's images to its user message (the last one) as vision input."""
    images = tuple(
        ImagePart(f"data:{a.mime_type};base64,{base64.b64encode(a.data).decode()}")
        for a in event.attachments
        if a.kind == "image" and a.data is not None
    )
    if not images or not messages or messages[-1].role != "user":
        return messages
    last = messages[-1]
    return (*messages[:-1], Message(role="user", text=last.text, images=images))
