"""The console's terminal: stdout shown escaped with log lines held while a line is partial,
and input read in a daemon thread (readline on a terminal, bytes from a pipe), so neither Ctrl-C
nor the end of the program waits for Enter."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO, cast

import structlog

from bots.console import convert

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
def logs_through(gate: LogGate) -> Iterator[None]:
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
        self.tty = is_terminal(out)
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
                quiet[6][termios.VINTR] = bytes([disabled_char(self._fd)])
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
        self._fd = fileno_of(stdin)
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


# -- helpers -----------------------------------------------------------------------------------


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def fileno_of(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return None


def disabled_char(fd: int) -> int:
    """The value that turns a terminal's special character off (_POSIX_VDISABLE)."""
    try:
        value = os.fpathconf(fd, "PC_VDISABLE")
    except (OSError, ValueError):
        return 0
    return value if 0 <= value < 256 else 0


def history_file() -> Path | None:
    """The console's input history: under the user's data directory (XDG_DATA_HOME)."""
    try:
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    except RuntimeError:  # no home directory
        return None
    return Path(data) / "parley" / "console_history"
