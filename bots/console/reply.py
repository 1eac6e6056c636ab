"""A reply printed to the console as it streams."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bots.console.terminal import BOT, ERASE_LINE, INTERRUPTED, THINKING, Screen
from core.events import OutboundFile
from core.interactive.controls import ApprovalPrompt, Controls


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
