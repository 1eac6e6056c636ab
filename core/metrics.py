"""Prometheus metrics of the server: turns, latencies, model errors and retries, moderation,
tokens and cost, feedback, regenerations, tool approvals and scheduled runs, served at
`GET /metrics`.

With several `web` processes (WEB_CONCURRENCY) the first one sets PROMETHEUS_MULTIPROC_DIR before
anything imports this module, so every process writes its values there and any of them can answer
for all (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

TURNS = Counter("parley_turns", "Turns by how they ended", ["platform", "outcome"])
TURN_SECONDS = Histogram(
    "parley_turn_seconds",
    "Time from a turn's start to its reply finished",
    ["platform"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)
QUEUED = Counter(
    "parley_turns_queued", "Turns stored to wait for capacity in the queue", ["platform"]
)
REQUEUED = Counter(
    "parley_turns_requeued",
    "Unfinished turns of stopped processes queued to run again",
    ["platform"],
)
DUPLICATES = Counter("parley_duplicate_deliveries", "Redelivered events ignored", ["platform"])
MODEL_ERRORS = Counter("parley_model_errors", "Model calls that failed for good", ["kind"])
MODEL_RETRIES = Counter("parley_model_retries", "Model and moderation calls retried")
MODERATION = Counter(
    "parley_moderation_actions", "Moderation flags and blocks", ["direction", "action"]
)
TOKENS = Counter("parley_tokens", "Tokens used", ["model", "kind"])
COST = Counter("parley_cost_usd", "Estimated cost in US dollars", ["model"])
FEEDBACK = Counter("parley_feedback", "Ratings of replies (👍/👎)", ["platform", "value"])
REGENERATIONS = Counter("parley_regenerations", "New attempts of a turn asked for by a person")
TOOL_APPROVALS = Counter(
    "parley_tool_approvals", "Tool calls that waited for a person, by outcome", ["outcome"]
)
SCHEDULED_RUNS = Counter(
    "parley_scheduled_runs",
    "Runs of schedules (digest, prompt) by outcome (done, empty, skipped, failed)",
    ["kind", "outcome"],
)
for _kind in ("digest", "prompt"):  # every series shows from the start, at 0
    for _outcome in ("done", "empty", "skipped", "failed"):
        SCHEDULED_RUNS.labels(_kind, _outcome)


def render() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, with their content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
