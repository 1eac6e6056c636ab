"""The console's transport: read lines, print streamed replies."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bots.console import convert
from core.engine import Engine
from core.events import OutboundFile
from core.store import StoreError

BANNER = (
    "Type a message and press Enter. /reset starts over, /quit leaves; /help lists the other "
    "commands (/usage, /memory, /pin, /tool, ...)."
)
OFFLINE_BANNER = (
    "Offline mode: replies come from the built-in simulator, not a real model. "
    "Set OPENAI_API_KEY to talk to OpenAI."
)


class ConsoleReply:
    """Prints a streamed reply as it arrives."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._streamed: list[str] = []

    async def begin(self) -> None:
        self._out.write("bot> ")
        self._out.flush()

    async def append(self, delta: str) -> None:
        self._streamed.append(delta)
        self._out.write(delta)
        self._out.flush()

    async def finish(self, text: str) -> None:
        if "".join(self._streamed) != text:
            self._out.write(("\n" if self._streamed else "") + text)
        self._out.write("\n")
        self._out.flush()

    async def notice(self, text: str) -> None:
        self._out.write(f"(notice) {text}\n")
        self._out.flush()

    async def upload(self, file: OutboundFile) -> None:
        self._out.write(f"(file {file.name}, {file.mime_type}, {len(file.data)} bytes)\n")
        self._out.flush()


async def chat(engine: Engine, *, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """Read lines from `stdin` and answer each through the engine until EOF or /quit."""
    key, user = convert.session_key(), convert.local_user()
    stdout.write(BANNER + "\n")
    stdout.flush()
    while True:
        if stdin.isatty():
            stdout.write("you> ")
            stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if text == "/quit":
            break
        event = convert.line_event(key, user, text)
        reply = ConsoleReply(stdout)
        try:
            received = await engine.receive(event, reply)
        except StoreError as exc:
            stdout.write(f"(error) {exc}\n")
            continue
        if received.command is not None:
            stdout.write(received.command.text + "\n")
            stdout.flush()
        elif received.submission is not None and received.submission.task is not None:
            await received.submission.task
