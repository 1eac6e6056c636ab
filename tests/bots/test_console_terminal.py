"""The console as people use it: a real `python -m bots console` on pipes and on a pseudo-terminal.

Each test drives the program and waits for what it writes (never a fixed sleep). Slow, failing
or scripted replies come from a standalone simulator (`python -m simulator`) that the console
reaches through OPENAI_BASE_URL; plain echo replies come from `--offline`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMPT = b"you> "
WAIT = 20.0  # seconds an expected output may take (the program starts in a few)


class Program:
    """`python -m bots console ...` on pipes (`tty=False`) or on a pseudo-terminal, its output
    read as it is written."""

    def __init__(self, args: list[str], env: dict[str, str], *, tty: bool) -> None:
        argv = [sys.executable, "-m", "bots", "console", *args]
        self.tty = tty
        self.output = b""
        self._seen = 0
        self.returncode: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        if tty:
            pid, fd = pty.fork()
            if pid == 0:  # the child: a terminal of 100 columns, then the program
                with contextlib.suppress(Exception):
                    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
                    os.chdir(env["HOME"])
                    os.execve(sys.executable, argv, env)
                os._exit(127)
            self._pid, self._out, self._in = pid, fd, fd
        else:
            self._proc = subprocess.Popen(
                argv,
                env=env,
                cwd=env["HOME"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._pid, self._out, self._in = (
                self._proc.pid,
                self._proc.stdout.fileno(),
                self._proc.stdin.fileno(),
            )

    def _drain(self, timeout: float) -> bool:
        """Read what is there (waiting up to `timeout`); False once the output has ended."""
        ready, _, _ = select.select([self._out], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self._out, 65536)
        except OSError:  # EIO: the terminal's other side has closed
            chunk = b""
        self.output += chunk
        return bool(chunk)

    def expect(self, pattern: bytes, timeout: float = WAIT) -> bytes:
        """Wait for `pattern` (a regular expression) after what earlier calls matched; returns
        the output from there to the end of the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.output, self._seen)
            if match:
                seen, self._seen = self._seen, match.end()
                return self.output[seen : match.end()]
            left = deadline - time.monotonic()
            ended = left > 0 and not self._drain(min(left, 0.2))
            if left <= 0 or (ended and not regex.search(self.output, self._seen)):
                tail = self.output[self._seen :][-3000:]
                raise AssertionError(f"no {pattern!r} within {timeout}s; output since: {tail!r}")

    def send(self, data: bytes) -> None:
        """Type (or pipe) `data`, reading the output meanwhile so neither side blocks."""
        while data:
            readable, writable, _ = select.select([self._out], [self._in], [], 1.0)
            if readable:
                self._drain(0)
            if writable:
                written = os.write(self._in, data[:512])
                data = data[written:]

    def close_input(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.close()

    def signal(self, number: int) -> None:
        os.kill(self._pid, number)

    def wait(self, timeout: float = WAIT) -> int:
        """The exit code, once the program has ended (reading its output meanwhile)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                while self._drain(0.05):
                    pass
                self.returncode = os.waitstatus_to_exitcode(status)
                return self.returncode
            self._drain(0.05)
        raise AssertionError(f"still running after {timeout}s; output: {self.output[-2000:]!r}")

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
        if self.tty:
            os.close(self._out)
        else:
            assert self._proc is not None
            for stream in (self._proc.stdin, self._proc.stdout):
                with contextlib.suppress(OSError):
                    stream.close()  # type: ignore[union-attr]


class Sim:
    """A standalone simulator, scripted through its admin API."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--port", "0"],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        self.base_url = line.rsplit(" ", 1)[-1].strip()
        assert self.base_url.startswith("http"), line

    def admin(self, action: str, data: Any = None) -> Any:
        root = self.base_url.removesuffix("/v1")
        body = None if data is None else json.dumps(data).encode()
        request = urllib.request.Request(
            f"{root}/_sim/{action}",
            data=body,
            method="POST" if body is not None or action == "reset" else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def wait_for_chat(self, count: int = 1, timeout: float = WAIT) -> None:
        """Wait until `count` chat requests have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            requests = self.admin("requests")
            if sum(r["endpoint"] == "chat" for r in requests) >= count:
                return
            time.sleep(0.05)  # polling the simulator, not waiting for the program
        raise AssertionError("the console never asked the model")

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    simulator = Sim()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def scripted(sim: Sim) -> Sim:
    sim.admin("reset")
    return sim


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI", "SLACK", "DISCORD", "LOG_", "PARLEY"))
    }
    (tmp_path / "inputrc").write_text("")
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{tmp_path}/c.db",
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        INPUTRC=str(tmp_path / "inputrc"),
        TERM="xterm",
        COLUMNS="100",
        **extra,
    )
    return env


@contextlib.contextmanager
def console(tmp_path: Path, *, tty: bool, sim: Sim | None = None, **env: str) -> Iterator[Program]:
    """The console: offline, or on `sim` when one is given."""
    if sim is not None:
        env.update(OPENAI_BASE_URL=sim.base_url, OPENAI_WIRE_API="chat")
    program = Program([] if sim else ["--offline"], _env(tmp_path, **env), tty=tty)
    try:
        yield program
    finally:
        program.kill()


def _screen_line(raw: bytes) -> str:
    """How one line of terminal output ends up on screen: carriage returns go back to the first
    column, ESC[K erases the rest of the line, colour sequences show nothing."""
    cells: list[str] = []
    column = 0
    text = raw.decode("utf-8", "replace")
    i = 0
    while i < len(text):
        if text[i] == "\r":
            column, i = 0, i + 1
        elif text.startswith("\x1b[K", i):
            del cells[column:]
            i += 3
        elif (m := re.match(r"\x1b\[[0-9;]*m", text[i:])) is not None:
            i += m.end()
        else:
            cells[column : column + 1] = [text[i]]
            column, i = column + 1, i + 1
    return "".join(cells)


# -- 1. input that is not UTF-8 ----------------------------------------------------------------


def test_console_answers_input_that_is_not_utf8(tmp_path: Path) -> None:
    # PYTHONIOENCODING=utf-8:strict is how stdin is set up in a UTF-8 locale (en_US.UTF-8).
    with console(tmp_path, tty=False, PYTHONIOENCODING="utf-8:strict") as program:
        program.send(b"hi \xff there\nstill here\n")
        program.close_input()
        assert program.wait() == 0, program.output
    out = program.output.decode()
    assert "bot> You said: hi \ufffd there" in out
    assert "bot> You said: still here" in out
    assert "thinking" not in out, "no progress indicator when stdout is not a terminal"


# -- 2. Ctrl-C ---------------------------------------------------------------------------------


def test_console_ctrl_c_at_the_prompt_acts_at_once(tmp_path: Path) -> None:
    with console(tmp_path, tty=True) as program:
        program.expect(PROMPT)
        program.send(b"half a thought")
        program.expect(b"half a thought")
        program.send(b"\x03")  # with text typed: the line is dropped, a new prompt follows
        program.expect(PROMPT)
        program.send(b"\x03")  # at an empty prompt: the console ends
        assert program.wait(10) in (0, 130)
    assert b"(bye)" in program.output
    assert b"You said: half" not in program.output


def test_console_ctrl_c_stops_a_reply_in_progress(tmp_path: Path, scripted: Sim) -> None:
    scripted.admin("enqueue", [{"kind": "text", "text": "too late", "delay": 60}])
    with console(tmp_path, tty=True, sim=scripted) as program:
        program.expect(PROMPT)
        program.send(b"take your time\r")
        program.expect(b"thinking")
        program.send(b"\x03")
        program.expect(rb"\(interrupted\)")
        program.expect(PROMPT)
        program.send(b"and now?\r")
        program.expect(b"You said: and now\\?")
        program.expect(PROMPT)
        program.send(b"\x04")  # Ctrl-D
        assert program.wait(10) == 0
    assert b"too late" not in program.output


def test_console_sigint_on_pipes_stops_the_reply_then_leaves(tmp_path: Path, scripted: Sim) -> None:
    scripted.admin("enqueue", [{"kind": "text", "text": "too late", "delay": 60}])
    with console(tmp_path, tty=False, sim=scripted) as program:
        program.send(b"take your time\n")
        scripted.wait_for_chat()
        program.signal(signal.SIGINT)  # a reply is running: it stops
        program.expect(rb"\(interrupted\)")
        program.send(b"and now?\n")
        program.expect(b"You said: and now\\?\n")
        program.signal(signal.SIGINT)  # waiting for input that has not ended: it leaves
        assert program.wait(10) in (0, 130)
    assert b"too late" not in program.output


# -- 3. control characters ---------------------------------------------------------------------


def test_console_shows_control_characters_escaped(tmp_path: Path, scripted: Sim) -> None:
    from_model = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m\r\x08\x9bcleared"
    scripted.admin("enqueue", [{"kind": "text", "text": from_model}])
    with console(tmp_path, tty=False, sim=scripted) as program:
        program.send(b"first\n")
        program.send(b"echo \x1b[1Abell\x07 tab\tend\n")
        program.send(b"/pin \x1b]52;c;ZXZpbA==\x07note\n/memory\n")
        program.close_input()
        assert program.wait() == 0, program.output
    out = program.output.decode()
    for raw in ("\x1b", "\x07", "\x08", "\x9b", "\r"):
        assert raw not in out, f"{raw!r} reached the terminal"
    assert r"bot> \x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m\x0d\x08\x9bcleared" in out
    assert "You said: echo \\x1b[1Abell\\x07 tab\tend" in out, "tab is kept"
    assert r"\x1b]52;c;ZXZpbA==\x07note" in out, "command results are escaped too"


# -- 4. log lines ------------------------------------------------------------------------------


def test_console_log_lines_wait_for_the_reply_line(tmp_path: Path, scripted: Sim) -> None:
    scripted.admin("fail_next", {"endpoint": "chat", "step": {"status": 400}})
    with console(tmp_path, tty=True, sim=scripted) as program:
        program.expect(PROMPT)
        program.send(b"this one fails\r")
        program.expect(b"turn_failed")  # logged (to stderr, the same terminal) during the reply
        program.expect(PROMPT)
        program.send(b"\x04")
        assert program.wait(10) == 0
    lines = program.output.split(b"\n")
    reply = next(i for i, line in enumerate(lines) if b"bot> " in line)
    assert b"turn_failed" not in lines[reply], "a log line landed inside the reply"
    assert _screen_line(lines[reply]).startswith("bot> ")
    assert len(_screen_line(lines[reply])) > len("bot> "), "the reply's text is on its line"
    assert any(b"turn_failed" in line for line in lines[reply + 1 :])


# -- 5. a slow model ---------------------------------------------------------------------------


def test_console_shows_thinking_until_the_first_text(tmp_path: Path, scripted: Sim) -> None:
    scripted.admin("enqueue", [{"kind": "text", "text": "worth the wait", "delay": 1.0}])
    with console(tmp_path, tty=True, sim=scripted) as program:
        program.expect(PROMPT)
        program.send(b"slowly\r")
        program.expect(b"thinking")
        shown = program.expect(b"worth the wait[^\n]*\n")
        program.expect(PROMPT)
        program.send(b"\x04")
        assert program.wait(10) == 0
    line = program.output[: program.output.index(b"worth the wait")]
    line = line[line.rindex(b"\n") + 1 :] + shown.split(b"\n")[-2]
    assert _screen_line(line).rstrip() == "bot> worth the wait", "the indicator is erased"


# -- 6. line editing, history and multi-line input ---------------------------------------------


def test_console_reads_long_lines_with_readline_and_keeps_history(tmp_path: Path) -> None:
    history = tmp_path / "data" / "parley" / "console_history"
    history.parent.mkdir(parents=True)
    history.write_text("an earlier question\n")
    long_line = " ".join(f"w{i}" for i in range(1500)) + " END"  # 7k characters
    assert len(long_line) > 4096  # the terminal's own line discipline stops at 4095
    with console(tmp_path, tty=True) as program:
        program.expect(PROMPT)
        program.send(long_line.encode() + b"\r")
        program.expect(b"You said: w0 w1 .* w1499 END\r\n")
        program.expect(PROMPT)
        program.send(b"\x1b[A\x1b[A\r")  # up twice: the line kept from an earlier session
        program.expect(b"You said: an earlier question")
        program.expect(PROMPT)
        program.send(b'"""\r')
        program.expect(rb"\.\.\.> ")
        program.send(b'two\r"""\r')
        program.expect(b"You said: two")
        program.expect(PROMPT)
        program.send(b"/quit\r")
        assert program.wait(10) == 0
    assert long_line in history.read_text()


def test_console_joins_continued_lines_and_blocks(tmp_path: Path) -> None:
    with console(tmp_path, tty=False) as program:
        program.send(b"first line \\\nsecond line\n")
        program.send(b'"""\ndef f():\n    return 1\n"""\n')
        program.send(b'"""one line"""\n')
        program.close_input()
        assert program.wait() == 0, program.output
    out = program.output.decode()
    assert "bot> You said: first line \nsecond line\n" in out
    assert "bot> You said: def f():\n    return 1\n" in out
    assert "bot> You said: one line\n" in out


# -- 7. help -----------------------------------------------------------------------------------


def test_console_help_lists_its_own_commands(tmp_path: Path) -> None:
    with console(tmp_path, tty=False) as program:
        program.send(b"/help\n/ask /reset is what?\n/quit\nnever read\n")
        assert program.wait() == 0, program.output
    out = program.output.decode()
    assert "/ask <question> — " in out
    assert "/quit — " in out
    assert "/pin — Pin a note" in out, "the engine's commands follow"
    assert "bot> You said: /reset is what?" in out, "/ask asks, even a command"
    assert "Conversation reset" not in out
    assert "never read" not in out
