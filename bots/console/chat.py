"""The console's transport: read what is typed, print streamed replies.

Input is read in a daemon thread (readline on a terminal, bytes from a pipe), so neither Ctrl-C
nor the end of the program waits for Enter. Everything shown passes through `convert.printable`,
so model output cannot drive the terminal, and log lines wait while a reply or the prompt holds
the line.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TextIO, cast

import structlog

from bots.console import convert
from core.commands import split_command
from core.engine import Engine
from core.events import OutboundFile
from core.interactive.clicks import Click
from core.interactive.controls import Action, ApprovalPrompt, ControlId, Controls
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
PROMPT, MORE_PROMPT = "you> ", "...> "
BOT = "bot> "
THINKING = "\x1b[2mthinking…\x1b[0m"  # dim; shown on a terminal until the first text arrives
ERASE_LINE = "\r\x1b[K"
INTERRUPTED = "(interrupted)"
GOODBYE = "(bye)"
CTRL_C = "\x03"
"""How the line editor hands over Ctrl-C at the prompt (bound to end the line with it)."""
HISTORY_LENGTH = 1000


# -- the screen --------------------------------------------------------------------------------


class LogGate(io.TextIOBase):
    """The log stream while the console runs: log lines written while the console holds the
    current line (a reply streaming, the prompt) wait, and follow once that line has ended."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._held: list[str] | None = None

    def write(self, text: str) -> int:
        with self._lock:
            if self._held is not None:
                self._held.append(text)
            else:
                self._emit(text)
        return len(text)

    def flush(self) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", None) or "utf-8"

    def hold(self) -> None:
        with self._lock:
            if self._held is None:
                self._held = []

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, None
            if held:
                self._emit("".join(held))

    def _emit(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.target.write(text)
            self.target.flush()


@contextlib.contextmanager
def _logs_through(gate: LogGate) -> Iterator[None]:
    """Route what is logged to the gate's target (stderr) through the gate while the console
    runs: structlog's writer, the standard library's stream handlers and `sys.stderr` itself.
    The renderers and the secret redaction stay as configured."""
    factory = structlog.get_config()["logger_factory"]
    ours = isinstance(factory, structlog.WriteLoggerFactory)
    if ours and getattr(factory, "_file", None) is gate.target:
        structlog.configure(logger_factory=structlog.WriteLoggerFactory(file=cast(TextIO, gate)))
    handlers = [
        h
        for h in logging.getLogger().handlers
        if type(h) is logging.StreamHandler and h.stream is gate.target
    ]
    for handler in handlers:
        handler.setStream(gate)
    try:
        with contextlib.redirect_stderr(cast(TextIO, gate)):
            yield
    finally:
        gate.release()
        for handler in handlers:
            handler.setStream(gate.target)
        if ours:
            structlog.configure(logger_factory=factory)


class Screen:
    """stdout as the console uses it: text shown escaped, a partial line at most, logs held
    while a partial line is showing."""

    def __init__(self, out: TextIO, logs: LogGate | None = None) -> None:
        self.out = out
        self.tty = _is_terminal(out)
        self.logs = logs
        self._line_start = True

    def text(self, text: str) -> None:
        """Show text that came from the model, a command or the user (escaped)."""
        self.raw(convert.printable(text))

    def line(self, text: str) -> None:
        """Show `text` on lines of its own."""
        self.end_line()
        self.text(text + "\n")

    def raw(self, text: str) -> None:
        """Write the console's own text and terminal sequences as they are."""
        if not text:
            return
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text)
            self.out.flush()
        self._line_start = text.endswith("\n")

    def end_line(self) -> None:
        if not self._line_start:
            self.raw("\n")

    def hold_logs(self) -> None:
        if self.logs is not None:
            self.logs.hold()

    def release_logs(self) -> None:
        if self.logs is not None:
            self.logs.release()


class ConsoleReply:
    """Prints a streamed reply as it arrives; on a terminal a "thinking…" indicator stands after
    the `bot>` prefix until the first text replaces it."""

    def __init__(
        self,
        screen: Screen,
        decide: Callable[[ApprovalPrompt], Awaitable[None]] | None = None,
    ) -> None:
        self._screen = screen
        self._decide = decide  # asks the person at the terminal to approve a tool call
        self._streamed: list[str] = []
        self._started = False  # text shown (after the prefix)
        self._thinking = False
        self._open = False

    async def begin(self) -> None:
        self._open = True
        self._screen.hold_logs()
        self._think()

    async def append(self, delta: str) -> None:
        if delta:
            self._streamed.append(delta)
            self._show(delta)

    async def finish(self, text: str) -> None:
        streamed = "".join(self._streamed)
        if streamed and streamed != text:  # e.g. replaced after moderation
            self._pause()
            self._screen.text(text)
        elif not streamed:
            self._show(text)
        self.close()

    async def notice(self, text: str) -> None:
        self._pause()
        self._screen.line(f"(notice) {text}")
        self._think()

    async def upload(self, file: OutboundFile) -> None:
        self._pause()
        self._screen.line(f"(file {file.name}, {file.mime_type}, {len(file.data)} bytes)")
        self._think()

    async def live(self, controls: Controls) -> None:
        return None  # Ctrl-C stops a reply in the console

    async def finish_with(self, text: str, controls: Controls | None) -> None:
        await self.finish(text)  # the console's controls are /good, /bad and /again

    async def ask_approval(self, prompt: ApprovalPrompt) -> None:
        self._pause()
        self._screen.line(f"(approval) {prompt.text}")
        if self._decide is not None:
            await self._decide(prompt)
        self._think()

    def interrupted(self) -> None:
        """The reply was stopped (Ctrl-C)."""
        self._pause()
        self._screen.line(INTERRUPTED)
        self.close()

    def close(self) -> None:
        """The turn is over: end the line, let held log lines follow."""
        self._pause()
        self._open = False
        self._screen.release_logs()

    def _think(self) -> None:
        if self._open and self._screen.tty and not self._started and not self._thinking:
            self._screen.end_line()
            self._screen.raw(BOT + THINKING)
            self._thinking = True

    def _show(self, text: str) -> None:
        if self._thinking:
            self._screen.raw(ERASE_LINE + BOT)
            self._thinking = False
        elif not self._started:
            self._screen.end_line()
            self._screen.raw(BOT)
        self._started = True
        self._screen.text(text)

    def _pause(self) -> None:
        """Leave the line: the indicator is erased, a partial line ended."""
        if self._thinking:
            self._screen.raw(ERASE_LINE)
            self._thinking = False
        self._screen.end_line()


# -- input -------------------------------------------------------------------------------------


class LineEditor:
    """readline on the terminal: editing, history kept in a file, lines of any length (the
    terminal's own line discipline stops at 4095 characters). Ctrl-C at the prompt is read as a
    key that ends the line with `CTRL_C`, so the prompt answers it at once."""

    def __init__(self, stdin: TextIO, history: Path | None) -> None:
        import readline
        import termios

        self._readline = readline
        self._termios = termios
        self._fd = stdin.fileno()
        self._saved = termios.tcgetattr(self._fd)
        self._lock = threading.Lock()
        self._closed = False
        self._history = history
        if isinstance(stdin, io.TextIOWrapper):  # input() decodes with stdin's error handler
            with contextlib.suppress(ValueError):
                stdin.reconfigure(errors="replace")
        readline.set_auto_history(False)  # whole messages go into the history, see `remember`
        # GNU readline only (libedit reads another syntax): Ctrl-C goes to the end of the line,
        # inserts itself literally and accepts; the terminal must then not turn it into SIGINT.
        self._ctrl_c_key = "libedit" not in (readline.__doc__ or "") and (
            self._saved[6][termios.VINTR] == CTRL_C.encode()
        )
        if self._ctrl_c_key:
            readline.parse_and_bind(r'"\C-c": "\C-e\C-v\C-c\C-m"')
        if history is not None:
            with contextlib.suppress(OSError):
                history.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(history, os.O_CREAT | os.O_WRONLY, 0o600))
                readline.read_history_file(history)
        readline.set_history_length(HISTORY_LENGTH)

    def read(self, prompt: str) -> str | None:
        """One line from the terminal (None at Ctrl-D); runs in the input thread."""
        termios = self._termios
        with self._lock:
            if self._closed:
                return None
            before = termios.tcgetattr(self._fd)
            if self._ctrl_c_key:
                quiet = termios.tcgetattr(self._fd)
                quiet[6][termios.VINTR] = bytes([_disabled_char(self._fd)])
                termios.tcsetattr(self._fd, termios.TCSANOW, quiet)
        try:
            return input(prompt)
        except EOFError:
            return None
        finally:
            with self._lock:
                if not self._closed:
                    termios.tcsetattr(self._fd, termios.TCSANOW, before)

    def remember(self, message: str) -> None:
        readline = self._readline
        length = readline.get_current_history_length()
        if length == 0 or readline.get_history_item(length) != message:
            readline.add_history(message)

    def close(self) -> None:
        """Save the history; give the terminal back as it was found."""
        with self._lock:
            self._closed = True
            with contextlib.suppress(Exception):
                self._termios.tcsetattr(self._fd, self._termios.TCSANOW, self._saved)
        if self._history is not None:
            with contextlib.suppress(OSError):
                self._readline.write_history_file(self._history)


class LineReader:
    """What is typed, one line at a time, read in a daemon thread: waiting for a line never
    keeps Ctrl-C or the program's exit waiting for Enter. From a pipe or file bytes are read and
    decoded (undecodable bytes are replaced); on a terminal the line editor reads."""

    def __init__(self, stdin: TextIO, editor: LineEditor | None) -> None:
        self._stdin = stdin
        self._editor = editor
        self._fd = _fileno(stdin)
        self._encoding = getattr(stdin, "encoding", None) or "utf-8"
        self._buffer = bytearray()
        self._eof = False
        self._requests: queue.SimpleQueue[tuple[str, asyncio.Future[str | None]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def read(self, prompt: str) -> asyncio.Future[str | None]:
        """The next line (None at the end of input); `prompt` is shown by the line editor."""
        self._loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = self._loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="console-input", daemon=True)
            self._thread.start()
        self._requests.put((prompt, future))
        return future

    def _serve(self) -> None:
        while True:
            prompt, future = self._requests.get()
            result: str | BaseException | None
            try:
                result = self._line(prompt)
            except Exception as exc:
                result = exc
            try:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(_settle, future, result)
            except RuntimeError:  # the loop is gone: the console has ended
                return

    def _line(self, prompt: str) -> str | None:
        if self._editor is not None:
            return self._editor.read(prompt)
        if self._fd is None:
            text = self._stdin.readline()
            return text.removesuffix("\n") if text else None
        while b"\n" not in self._buffer and not self._eof:
            chunk = os.read(self._fd, 65536)
            self._eof = not chunk
            self._buffer += chunk
        if not self._buffer:
            return None
        end = self._buffer.find(b"\n") + 1 or len(self._buffer)
        line = bytes(self._buffer[:end])
        del self._buffer[:end]
        return convert.decode_line(line, self._encoding)


def _settle(future: asyncio.Future[str | None], result: str | BaseException | None) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


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
        interactive = interactive and _is_terminal(stdin) and self.screen.tty
        self.editor = LineEditor(stdin, _history_file()) if interactive else None
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
        with _logs_through(session.logs):
            await session.run()
    finally:
        session.close()
        if handling:
            loop.remove_signal_handler(signal.SIGINT)
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


# -- helpers -----------------------------------------------------------------------------------


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return None


def _disabled_char(fd: int) -> int:
    """The value that turns a terminal's special character off (_POSIX_VDISABLE)."""
    try:
        value = os.fpathconf(fd, "PC_VDISABLE")
    except (OSError, ValueError):
        return 0
    return value if 0 <= value < 256 else 0


def _history_file() -> Path | None:
    """The console's input history: under the user's data directory (XDG_DATA_HOME)."""
    try:
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    except RuntimeError:  # no home directory
        return None
    return Path(data) / "parley" / "console_history"
