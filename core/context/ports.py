"""The platforms' ports by name: registered by the engine when an adapter attaches, read by the
tool contexts (history tools) and commands (`/summarize`)."""

from __future__ import annotations

from core.events import Platform, PlatformPort


class Ports:
    """One `PlatformPort` per platform."""

    def __init__(self) -> None:
        self._ports: dict[str, PlatformPort] = {}

    def add(self, port: PlatformPort) -> None:
        self._ports[port.platform.value] = port

    def get(self, platform: Platform | str) -> PlatformPort | None:
        return self._ports.get(platform.value if isinstance(platform, Platform) else platform)

    def names(self) -> list[str]:
        """The platforms with a port here."""
        return list(self._ports)
