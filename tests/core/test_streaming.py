"""The editing reply both adapters use: throttled edits, overflow into new messages."""

from __future__ import annotations

import itertools

from core.events import OutboundFile
from core.render.streaming import EditingReply


class Sink:
    """Records what a platform would have received."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}
        self.calls: list[tuple[str, str, float]] = []
        self.now = 0.0

    async def post(self, text: str) -> str:
        message_id = f"m{len(self.messages) + 1}"
        self.messages[message_id] = text
        self.calls.append(("post", message_id, self.now))
        return message_id

    async def edit(self, message_id: str, text: str) -> None:
        self.messages[message_id] = text
        self.calls.append(("edit", message_id, self.now))

    async def delete(self, message_id: str) -> None:
        del self.messages[message_id]
        self.calls.append(("delete", message_id, self.now))

    async def typing(self) -> None:
        self.calls.append(("typing", "", self.now))

    async def notice(self, text: str) -> None:
        self.calls.append(("notice", text, self.now))

    async def upload(self, file: OutboundFile) -> None:
        self.calls.append(("upload", file.name, self.now))


async def test_deltas_are_coalesced_into_edits_at_most_once_per_interval() -> None:
    sink = Sink()
    reply = EditingReply(sink, limit=2000, interval=1.0, clock=lambda: sink.now)
    await reply.begin()
    for i in range(50):
        sink.now = i * 0.1  # fifty tokens over five seconds
        await reply.append(f"w{i} ")
    await reply.finish("".join(f"w{i} " for i in range(50)).strip())
    writes = [at for kind, _, at in sink.calls if kind in {"post", "edit"}]
    streamed = writes[:-1]  # the final edit is not throttled
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(streamed))
    assert len(writes) <= 7
    assert list(sink.messages.values()) == ["".join(f"w{i} " for i in range(50)).strip()]


async def test_a_long_reply_continues_in_new_messages() -> None:
    sink = Sink()
    reply = EditingReply(sink, limit=100, interval=0.0, clock=lambda: sink.now)
    text = "\n\n".join(f"paragraph {i} " + "x" * 40 for i in range(6))
    await reply.finish(text)
    assert len(sink.messages) >= 3
    assert all(len(message) <= 100 for message in sink.messages.values())


async def test_a_shorter_final_text_removes_extra_messages() -> None:
    sink = Sink()
    reply = EditingReply(sink, limit=50, interval=0.0, clock=lambda: sink.now)
    await reply.append("word " * 40)
    assert len(sink.messages) > 1
    await reply.finish("withheld")
    assert list(sink.messages.values()) == ["withheld"]
