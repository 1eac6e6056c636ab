"""The start-up check of the configured models: not served, shut down, or shutting down soon."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import structlog

from core.llm.client import ModelClient

log = structlog.get_logger(__name__)

LIST_TIMEOUT = 10.0  # seconds for `GET /v1/models` at start
SHOWN_MODELS = 5  # models named in a "not served" warning


async def served_models(model: ModelClient) -> list[str] | None:
    """The ids the server lists at `GET /v1/models`, or None when it does not list any."""
    try:
        page = await model.openai.models.list(timeout=LIST_TIMEOUT)
        ids = [item.id for item in page.data]
    except Exception as exc:  # a compatible server may not serve /models
        log.info("model_list_skipped", error=type(exc).__name__)
        return None
    if not ids:
        log.info("model_list_skipped", error="the server lists no models")
        return None
    return ids


def not_served(name: str, served: list[str], base_url: str) -> str:
    """The warning for a configured model the server does not list."""
    shown = ", ".join(served[:SHOWN_MODELS])
    more = f" and {len(served) - SHOWN_MODELS} more" if len(served) > SHOWN_MODELS else ""
    return (
        f"model {name} is not among the models {base_url} lists ({shown}{more}); set "
        "OPENAI_MODEL / OPENAI_SUMMARY_MODEL to one it serves"
    )


async def check_models(model: ModelClient, names: Iterable[str], *, warning_days: int) -> list[str]:
    """A warning for each model the server does not list (when it lists its models), and for each
    that is shut down or shuts down within `warning_days`."""
    warnings = []
    served = await served_models(model)
    base_url = str(model.openai.base_url.copy_with(username=None, password=None, query=None))
    today = datetime.now(UTC).date()
    for name in sorted(set(names)):
        if served is not None and name not in served:
            message = not_served(name, served, base_url.rstrip("/") + "/models")
            log.warning("model_not_served", model=name, message=message)
            warnings.append(message)
            continue
        try:
            shutdown = await model.shutdown_date(name)
        except Exception as exc:  # a compatible server may not serve /models/{id}
            log.info("model_check_skipped", model=name, error=type(exc).__name__)
            continue
        if shutdown is None:
            continue
        days = (shutdown - today).days
        if days <= warning_days:
            state = "was shut down" if days < 0 else f"shuts down in {days} days"
            log.warning("model_shutdown", model=name, shutdown_date=shutdown.isoformat())
            message = (
                f"model {name} {state} (on {shutdown.isoformat()}); choose a current model "
                "in OPENAI_MODEL / OPENAI_SUMMARY_MODEL"
            )
            log.warning("model_shutdown_notice", message=message)
            warnings.append(message)
    return warnings
