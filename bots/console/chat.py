"""The console's session: read what is typed, hand it to the engine, show what comes back.

Everything shown passes through `convert.printable`, so model output cannot drive the terminal
(`terminal.py`), and log lines wait while a reply or the prompt holds the line.
"""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from bots.console import convert
from bots.console.reply import ConsoleReply
from bots.console.terminal import (
    CTRL_C,
    GOODBYE,
    INTERRUPTED,
    MORE_PROMPT,
    PROMPT,
    LineEditor,
    LineReader,
    LogGate,
    Screen,
    history_file,
    is_terminal,
    logs_through,
)
from core.commands import split_command
from core.engine import Engine
from core.interactive.clicks import Click
from core.interactive.controls import Action, ApprovalPrompt, ControlId
from core.store import StoreError

BANNER = (
    "Type a message and press Enter; end a line with \\ to go on to the next, or start and end "
    'a block with """. Ctrl-C stops a reply; /quit, Ctrl-D or Ctrl-C at an empty prompt leaves. '
    "/reset starts over; /help lists the commands (/ask, /usage, /memory, /pin, /tool, ...)."
)
OFFLINE_BANNER = (
    "Offline mode: replies come from the built-in simulator, not a real model. "
    "Set OPENAI_API_KEY to talk to OpenAI."
)


# -- the session -------------------------------------------------------------------------------

Command = Callable[[str], Awaitable[bool]]


class ConsoleSession:
    """One console run: read a message, hand it to the engine, show what comes back."""

    def __init__(self, engine: Engine, stdin: TextIO, stdout: TextIO) -> None:
        self.engine = engine
        self.key, self.user = convert.session_key(), convert.local_user()
        self.logs = LogGate(sys.stderr)
        if isinstance(stdout, io.TextIOWrapper):
            stdout.reconfigure(errors="replace")
        self.screen = Screen(stdout, self.logs)
        interactive = stdin is sys.stdin and stdout is sys.stdout
        interactive = interactive and is_terminal(stdin) and self.screen.tty
        self.editor = LineEditor(stdin, history_file()) if interactive else None
        self.reader = LineReader(stdin, self.editor)
        self.composer = convert.Composer()
        # The console's own commands, by name; each answers whether the session goes on.
        self.commands: dict[str, tuple[str, Command]] = {
            "ask": ("/ask <question> — ask it as it is, even when it starts with /", self.ask),
            "quit": ("/quit — leave (also Ctrl-D, or Ctrl-C at an empty prompt)", self.quit),
            "good": ("/good [comment] — rate the last answer 👍", self.good),
            "bad": ("/bad [comment] — rate the last answer 👎", self.bad),
            "again": ("/again — a new answer to the last question", self.again),
        }
        self._last_turn: int | None = None
        self._work: asyncio.Task[bool] | None = None
        self._reply: ConsoleReply | None = None
        self._reading: asyncio.Future[str | None] | None = None
        self._interrupted = False
        self._leaving = False

    async def run(self) -> None:
        self.screen.line(BANNER)
        while not self._leaving:
            chunk = await self._read()
            if chunk is None:  # the end of input (Ctrl-D), or Ctrl-C while waiting for it
                if self.editor is not None and not self._leaving:
                    self.screen.raw("\n")  # the prompt's line
                break
            if chunk.endswith(CTRL_C):  # Ctrl-C at the terminal's prompt
                if chunk == CTRL_C and not self.composer.pending:
                    self.screen.line(GOODBYE)
                    break
                self.composer.reset()
                continue
            message = self.composer.feed(chunk)
            if not message:
                continue
            if self.editor is not None:
                self.editor.remember(message)
            if not await self._handle(message):
                break

    def interrupt(self) -> None:
        """Ctrl-C (SIGINT): stop the reply or command in progress, else leave."""
        if self._work is not None and not self._work.done():
            self._interrupted = True
            self._work.cancel()
            return
        self._leaving = True
        if self._reading is not None and not self._reading.done():
            if self.editor is not None:  # the prompt is showing
                self.screen.raw("\n")
            self.screen.line(GOODBYE)
            self._reading.set_result(None)

    def close(self) -> None:
        if self.editor is not None:
            self.editor.close()

    async def _read(self) -> str | None:
        prompt = (MORE_PROMPT if self.composer.pending else PROMPT) if self.editor else ""
        if self.editor is not None:
            self.screen.hold_logs()  # the prompt holds the line
        self._reading = self.reader.read(prompt)
        try:
            return await self._reading
        finally:
            self._reading = None
            self.screen.release_logs()

    async def _handle(self, message: str) -> bool:
        """Run one message as a task Ctrl-C can cancel; whether the session goes on."""
        self._work = asyncio.create_task(self._dispatch(message))
        try:
            return await self._work
        except asyncio.CancelledError:
            if not self._interrupted:
                raise
            if self._reply is not None:
                self._reply.interrupted()
            else:
                self.screen.line(INTERRUPTED)
            return True
        finally:
            self._work, self._reply, self._interrupted = None, None, False

    async def _dispatch(self, message: str) -> bool:
        command = split_command(message)
        if command is not None and command[0] in self.commands:
            return await self.commands[command[0]][1](command[1])
        event = convert.line_event(self.key, self.user, message)
        reply = self._new_reply()
        try:
            received = await self.engine.receive(event, reply)
        except StoreError as exc:
            self.screen.line(f"(error) {exc}")
            return True
        if received.command is not None:
            text = received.command.text
            if command is not None and command[0] == "help":
                text = convert.help_text(self._help_lines(), text)
            self.screen.line(text)
            for file in received.command.files:
                await reply.upload(file)
        elif received.submission is not None and received.submission.task is not None:
            self._last_turn = received.submission.turn_id
            await received.submission.task
        reply.close()
        return True

    async def ask(self, question: str) -> bool:
        """Ask the question as a message (never as a command)."""
        if not question.strip():
            self.screen.line("Usage: /ask <question>")
            return True
        event = convert.line_event(self.key, self.user, question.strip())
        reply = self._new_reply()
        try:
            submission = await self.engine.submit(event, reply)
        except StoreError as exc:
            self.screen.line(f"(error) {exc}")
            return True
        if submission.task is not None:
            self._last_turn = submission.turn_id
            await submission.task
        reply.close()
        return True

    async def quit(self, _args: str) -> bool:
        return False

    async def good(self, comment: str) -> bool:
        """Rate the last answer 👍 (with an optional comment)."""
        return await self._click(Action.RATE, "positive", comment)

    async def bad(self, comment: str) -> bool:
        """Rate the last answer 👎 (with an optional comment)."""
        return await self._click(Action.RATE, "negative", comment)

    async def again(self, _args: str) -> bool:
        """A new attempt of the last turn, shown as a new answer."""
        return await self._click(Action.AGAIN)

    async def _click(self, action: Action, value: str = "", comment: str = "") -> bool:
        if self._last_turn is None:
            self.screen.line("Nothing to act on yet: ask something first.")
            return True
        state = await self.engine.store.interactive.turn(self._last_turn)
        attempt = state.attempt if state is not None else 1
        click = Click(
            ControlId(action, self._last_turn, attempt, value),
            self.user,
            self.key.platform,
            self.key.workspace,
            self.key.channel,
            comment=comment.strip() or None,
        )
        reply = self._new_reply()
        result = await self.engine.interactions.click(click, lambda: reply)
        if action == Action.AGAIN and result.changed:
            await self.engine.drain()  # the new attempt streams into `reply`
        else:
            self.screen.line(result.text)
        reply.close()
        return True

    async def _decide(self, prompt: ApprovalPrompt) -> None:
        """Ask at the terminal whether the tool may run; the answer is a click like any other."""
        answer = await self.reader.read("approve? [y/N] ")
        action = Action.APPROVE if (answer or "").strip().lower() in {"y", "yes"} else Action.DENY
        click = Click(
            ControlId(action, prompt.approval_id, 1),
            self.user,
            self.key.platform,
            self.key.workspace,
            self.key.channel,
        )
        self.screen.line((await self.engine.interactions.click(click)).text)

    def _new_reply(self) -> ConsoleReply:
        self._reply = ConsoleReply(self.screen, self._decide)
        return self._reply

    def _help_lines(self) -> list[str]:
        return [
            *(line for line, _ in self.commands.values()),
            'Multi-line: end a line with \\ to go on to the next; """ starts and ends a block.',
            "Ctrl-C stops a reply; Ctrl-D leaves.",
        ]


async def chat(engine: Engine, *, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """Chat with the engine on `stdin`/`stdout` until the end of input, /quit or Ctrl-C at an
    empty prompt. While it runs, log lines go to stderr between the console's lines."""
    session = ConsoleSession(engine, stdin, stdout)
    loop = asyncio.get_running_loop()
    previous: Any = signal.getsignal(signal.SIGINT)
    try:
        loop.add_signal_handler(signal.SIGINT, session.interrupt)
        handling = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        handling = False
    try:
        with logs_through(session.logs):
            await session.run()
    finally:
        session.close()
        if handling:
            loop.remove_signal_handler(signal.SIGINT)
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
