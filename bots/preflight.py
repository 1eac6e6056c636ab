"""Checks at server start for what would make every turn fail, said once and before anyone writes.

`preflight` runs after the services are built and before the server takes events: it warns when
no model is configured, stops the start when the moderation endpoint does not answer (a vLLM or
Ollama server has no `/v1/moderations`, so every message would be refused), and runs the model
check (models the server does not list, models shut down or shutting down soon).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import openai
import structlog

from bots.errors import StartupError
from core.governance.moderation import Moderator

if TYPE_CHECKING:
    from bots.services import Services
    from core.settings import Settings

log = structlog.get_logger(__name__)

ROLES = ("run", "web", "worker", "console")
MODERATION_TIMEOUT = 5.0  # seconds for the one moderation request at start

NO_MODEL = (
    "no model is configured: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (an OpenAI-compatible "
    "server such as vLLM or Ollama)"
)
WAYS_OUT = (
    "set MODERATION_ENABLED=false, or give moderation its own endpoint with "
    "OPENAI_MODERATION_BASE_URL / OPENAI_MODERATION_API_KEY (e.g. OPENAI_MODERATION_API_KEY "
    "alone uses OpenAI's moderation while OPENAI_BASE_URL serves the chat model)"
)


async def preflight(
    services: Services,
    settings: Settings,
    *,
    role: str,
    moderation_timeout: float = MODERATION_TIMEOUT,
) -> list[str]:
    """Check what every turn depends on; returns the warnings (also logged).

    Raises `StartupError` (one line: the URL tried, the ways out, never a key) when moderation is
    on, fail-closed, and its endpoint does not answer: missing (404), unreachable, too slow, or
    refusing the key. With `MODERATION_FAIL_OPEN=true` that is a warning instead, since turns
    would go through unmoderated rather than be refused.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    own: list[str] = []
    api = settings.openai
    configured = api.api_key is not None or api.base_url is not None
    if not configured:
        own.append(no_model(role))
    moderation = settings.moderation
    if moderation.enabled and (configured or api.moderation_separate):
        problem = await check_moderation(services.engine.moderator, timeout=moderation_timeout)
        if problem is not None and not moderation.fail_open:
            raise StartupError(f"{problem}, so every message would be refused: {WAYS_OUT}")
        if problem is not None:
            own.append(
                f"{problem}; turns go through unmoderated (MODERATION_FAIL_OPEN=true): {WAYS_OUT}"
            )
    for message in own:
        log.warning("preflight_warning", role=role, message=message)
    checked = await services.engine.check_models() if configured else []  # logs its own
    return own + checked


def no_model(role: str) -> str:
    """The warning for a process started with neither an API key nor a base URL."""
    if role == "console":
        return NO_MODEL + ", or add --offline to try it with simulated replies"
    return NO_MODEL + "; until then every turn fails"


async def check_moderation(moderator: Moderator, *, timeout: float) -> str | None:
    """None when the moderation endpoint answers one tiny request, else what is wrong (one
    phrase naming the URL tried). Answers that mean a passing fault (429, 5xx) are logged only."""
    url = moderator.endpoint
    try:
        await moderator.probe(timeout=timeout)
    except (openai.NotFoundError, openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        reasons = {404: "there is no moderation endpoint", 401: "the key was refused"}
        reason = reasons.get(exc.status_code, "the key may not use it")
        return f"the moderation endpoint {url} answered {exc.status_code} ({reason})"
    except openai.APIStatusError as exc:
        if exc.status_code in (405, 501):
            return f"the moderation endpoint {url} answered {exc.status_code} (not served here)"
        log.warning("preflight_moderation_unsettled", url=url, status=exc.status_code)
        return None
    except (openai.APIConnectionError, TimeoutError) as exc:
        # the SDK's aiohttp transport reports a refused connection as a connect timeout
        unreachable = _os_error(exc)
        if unreachable is not None:
            return f"the moderation endpoint {url} could not be reached ({unreachable})"
        if isinstance(exc, openai.APITimeoutError | TimeoutError):
            return f"the moderation endpoint {url} did not answer within {timeout:g} seconds"
        return f"the moderation endpoint {url} could not be reached ({type(exc).__name__})"
    except TypeError:
        return f"the moderation endpoint {url} did not answer with moderation results"
    log.info("preflight_moderation_ok", url=url)
    return None


def _os_error(exc: BaseException) -> str | None:
    """Why the connection failed, when an operating-system error (refused, unknown host, no
    route) is behind `exc`; None for a timeout."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        return "connection refused"
    if any(isinstance(c, socket.gaierror) for c in chain):
        return "host name not found"
    for c in reversed(chain):  # the innermost first: the operating system's own words
        if isinstance(c, OSError) and not isinstance(c, TimeoutError) and c.errno:
            return c.strerror or type(c).__name__
    return None
