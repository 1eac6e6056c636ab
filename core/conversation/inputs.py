"""A turn's input before the model sees it: attachments, redaction, moderation, the output guard."""

from __future__ import annotations

from dataclasses import replace

from core.access import is_admin
from core.context.ports import Ports
from core.conversation.media import Media
from core.events import Event, Reply
from core.governance.budgets import Refusal
from core.governance.moderation import INPUT_BLOCKED, Moderator
from core.governance.turn_redaction import TurnRedactor
from core.llm.tokens import TokenCounter
from core.render.replies import ModeratedReply
from core.settings import Settings
from core.store import Accepted, Store


class TurnInputs:
    """Prepares what a turn's message may say and where it may go."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        tokens: TokenCounter,
        media: Media,
        moderator: Moderator,
        ports: Ports,
    ) -> None:
        self._settings = settings
        self._store = store
        self._tokens = tokens
        self._media = media
        self._moderator = moderator
        self._ports = ports

    async def media(self, event: Event, reply: Reply, accepted: Accepted) -> Event:
        """Download attachments, transcribe clips (the transcript becomes the message text)."""
        if not event.attachments:
            return event
        port = self._ports.get(event.platform)
        prepared = await self._media.prepare(event, port.download if port else None)
        for notice in prepared.notices:
            await reply.notice(notice)
        if prepared.transcript:
            await reply.notice(f"Transcript: {prepared.transcript}")
            text = prepared.event.text
            await self._store.messages.update_text(
                accepted.message_id, text, self._tokens.count(text)
            )
        return prepared.event

    async def redact(self, event: Event, accepted: Accepted, redactor: TurnRedactor) -> Event:
        """The user's text as it may leave for moderation and the model; stored as configured."""
        redacted = redactor.text(event.text)
        if redacted == event.text:
            return event
        if self._settings.redaction.store == "redacted":
            await self._store.messages.update_text(
                accepted.message_id, redacted, self._tokens.count(redacted)
            )
        return replace(event, text=redacted)

    async def moderate(self, event: Event) -> Refusal | None:
        images = [a for a in event.attachments if a.kind == "image" and a.data is not None]
        verdict = await self._moderator.check(
            event.text, key=event.key, user_id=event.user.id, direction="input", images=images
        )
        if not verdict.blocked:
            return None
        categories = ", ".join(verdict.categories)
        return Refusal("input_blocked", INPUT_BLOCKED.format(categories=categories), 0.0)

    def guard(self, reply: Reply, event: Event) -> ModeratedReply | None:
        if not self._moderator.enabled:
            return None
        return ModeratedReply(
            reply,
            self._moderator,
            key=event.key,
            user_id=event.user.id,
            every=self._settings.moderation.output_chars,
        )

    def exempt(self, event: Event) -> bool:
        return self._settings.budgets.admins_exempt and is_admin(
            event.user, self._settings.access.admin_user_ids
        )
