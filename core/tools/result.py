"""What one tool call produced."""

from __future__ import annotations

from dataclasses import dataclass

from core.events import OutboundFile
from core.llm.types import ImagePart


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call produced: text for the model (or person), files it handed over, and
    images for the model where the wire takes them in a tool result."""

    ok: bool
    output: str
    files: tuple[OutboundFile, ...] = ()
    images: tuple[ImagePart, ...] = ()
