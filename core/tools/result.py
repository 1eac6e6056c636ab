"""What one tool call produced."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def parse_arguments(arguments: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """Call arguments as a mapping (JSON text from the model, or already parsed); `ValueError`
    saying what is wrong otherwise."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"arguments are not valid JSON ({exc.msg} at position {exc.pos})"
            ) from None
        except RecursionError:
            raise ValueError("arguments are nested too deeply") from None
    if not isinstance(arguments, Mapping):
        raise ValueError("arguments must be a JSON object")
    return arguments
