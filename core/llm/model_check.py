"""The start-up check of the configured models: shut down, or shutting down soon."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import structlog

from core.llm.client import ModelClient

log = structlog.get_logger(__name__)


async def check_models(model: ModelClient, names: Iterable[str], *, warning_days: int) -> list[str]:
    """A warning for each model that is shut down or shuts down within `warning_days`."""
    warnings = []
    today = datetime.now(UTC).date()
    for name in sorted(set(names)):
        try:
            shutdown = await model.shutdown_date(name)
        except Exception as exc:  # a compatible server may not serve /models
            log.info("model_check_skipped", model=name, error=type(exc).__name__)
            continue
        if shutdown is None:
            continue
        days = (shutdown - today).days
        if days <= warning_days:
            state = "was shut down" if days < 0 else f"shuts down in {days} days"
            log.warning("model_shutdown", model=name, shutdown_date=shutdown.isoformat())
            warnings.append(
                f"model {name} {state} (on {shutdown.isoformat()}); choose a current model "
                "in OPENAI_MODEL / OPENAI_SUMMARY_MODEL"
            )
    for message in warnings:
        log.warning("model_shutdown_notice", message=message)
    return warnings
