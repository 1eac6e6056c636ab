"""o200k token counting speed."""

from __future__ import annotations

import time

from bench.common import summarize
from core.llm.tokens import TokenCounter


def run(repeats: int) -> list[tuple[str, str, str]]:
    """Rows for the table."""
    counter = TokenCounter("gpt-6-luna")
    text = ("The quick brown fox jumps over the lazy dog; façade naïve 東京 1234. " * 20000)[
        :900_000
    ]
    counter.count("warm up")
    speeds = []
    for _ in range(repeats):
        started = time.perf_counter()
        counter.count(text)
        speeds.append(len(text.encode()) / (time.perf_counter() - started) / 1e6)
    return [("o200k token counting (MB/s)", summarize(speeds), ">= 25")]
