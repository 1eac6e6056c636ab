"""The simulator's non-generation endpoints: moderations, embeddings, audio, images, models."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
import time
import zlib
from typing import Any

from core.governance.moderation import CATEGORIES
from simulator.plan import count_tokens

MODERATION_CATEGORIES = CATEGORIES

MODELS: dict[str, dict[str, Any]] = {
    name: {"shutdown_date": None}
    for name in (
        "gpt-6-astra",
        "gpt-6.2-astra",
        "gpt-6-sol",
        "gpt-6.1-sol",
        "gpt-6.2-sol",
        "gpt-6.1-terra",
        "gpt-6-luna",
        "gpt-transcribe",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "omni-moderation-latest",
        "gpt-image-1",
    )
} | {"gpt-4o-mini": {"shutdown_date": "2027-01-14"}}


def moderation_inputs(raw: Any) -> list[str]:
    """Each moderation input as text (an image part becomes its URL marker)."""
    if isinstance(raw, str):
        return [raw]
    texts: list[str] = []
    if isinstance(raw, list) and raw and all(isinstance(x, dict) for x in raw):
        # A list of parts is one multimodal input.
        return [" ".join(p.get("text", "") if p.get("type") == "text" else "[image]" for p in raw)]
    for item in raw or []:
        texts.append(item if isinstance(item, str) else str(item))
    return texts


def moderation(body: dict[str, Any], rules: list[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    """A moderation result per input, scored by the substring rules."""
    results = []
    for text in moderation_inputs(body.get("input")):
        scores = dict.fromkeys(MODERATION_CATEGORIES, 0.0001)
        lowered = text.lower()
        for needle, rule_scores in rules:
            if needle in lowered:
                for category, score in rule_scores.items():
                    scores[category] = max(scores[category], score)
        results.append(
            {
                "flagged": any(score >= 0.5 for score in scores.values()),
                "categories": {c: s >= 0.5 for c, s in scores.items()},
                "category_scores": scores,
                "category_applied_input_types": {c: ["text"] for c in scores},
            }
        )
    return {
        "id": f"modr-{int(time.time() * 1000)}",
        "model": body.get("model", ""),
        "results": results,
    }


_WORD = re.compile(r"[a-z0-9]+")


def embed(text: str, dimensions: int) -> list[float]:
    """Hashed bag of words: texts sharing words point the same way; L2-normalised."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Embeddings in float or base64 (little-endian float32) encoding."""
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else list(raw or [])
    texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in inputs]
    dims = int(body.get("dimensions") or 256)
    data = []
    for index, text in enumerate(texts):
        vector = embed(text, dims)
        if body.get("encoding_format") == "base64":
            value: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        else:
            value = vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = sum(count_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", ""),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def transcript(data: bytes) -> str:
    """`SIMTEXT:<text>` files transcribe to their text; anything else to a size marker."""
    if data.startswith(b"SIMTEXT:"):
        return data[len(b"SIMTEXT:") :].decode("utf-8", "replace")
    return f"transcript of {len(data)} bytes"


def png(size: int = 8) -> bytes:
    """A small valid grey PNG."""
    raw = b"".join(b"\x00" + b"\x80" * size for _ in range(size))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def images(body: dict[str, Any]) -> dict[str, Any]:
    """Generated images as base64 PNGs."""
    encoded = base64.b64encode(png()).decode()
    count = int(body.get("n") or 1)
    return {
        "created": int(time.time()),
        "data": [
            {"b64_json": encoded, "revised_prompt": body.get("prompt", "")} for _ in range(count)
        ],
        "usage": {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110},
    }


def model_object(name: str, extra: dict[str, Any]) -> dict[str, Any]:
    """A model object with its extra fields (e.g. shutdown_date)."""
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system", **extra}
