"""Model-call failures classified into what to tell the user and what to tell the operator."""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import httpx2
import openai


@dataclass(frozen=True, slots=True)
class Failure:
    """How a failed model call is reported: a short user message and an actionable log line."""

    kind: str
    user_message: str
    operator_message: str


class StreamInterrupted(Exception):
    """The stream broke after text had been shown; it cannot be retried without repeating it."""


def error_code(exc: BaseException) -> str | None:
    """OpenAI's error code (e.g. `insufficient_quota`) from an API error body."""
    if isinstance(exc, openai.APIStatusError):
        code = getattr(exc, "code", None)
        if code:
            return str(code)
        body = exc.body if isinstance(exc.body, dict) else {}
        inner = body.get("error", body) if isinstance(body, dict) else {}
        if isinstance(inner, dict):
            return inner.get("code") or inner.get("type")
    return None


UNREACHABLE = "I can't reach the AI service right now. Please try again shortly."

# The endpoints this server calls, as the tail of a request path after the base URL; what comes
# before the first one that matches the whole rest of the path is the configured base URL.
_ENDPOINT = re.compile(
    r"(?:chat/completions|completions|embeddings|moderations"
    r"|responses(?:/[^/]+(?:/input_items|/cancel)?)?"
    r"|conversations(?:/[^/]+(?:/items(?:/[^/]+)?)?)?"
    r"|audio/(?:transcriptions|translations|speech)|images/(?:generations|edits|variations)"
    r"|models(?:/[^/]+)?|files(?:/[^/]+(?:/content)?)?"
    r"|vector_stores(?:/[^/]+(?:/files|/file_batches)?(?:/[^/]+)?)?|uploads(?:/[^/]+)?(?:/\w+)?)"
)
_DNS_ERRORS: tuple[type[BaseException], ...] = (
    socket.gaierror,
    getattr(aiohttp, "ClientConnectorDNSError", socket.gaierror),  # aiohttp 3.11+
)
_TRANSPORT_ERRORS = (openai.APIConnectionError, httpx2.TransportError, aiohttp.ClientError, OSError)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps: `__cause__`, `__context__`, aiohttp's `os_error` and the
    members of exception groups (each once). The SDK wraps a transport failure in
    APIConnectionError, from an httpx2 error, from the aiohttp or socket error that says what
    happened; the aiohttp transport even maps a refused connection to `ConnectTimeout`."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "os_error", None)]
        if isinstance(current, BaseExceptionGroup):
            linked += current.exceptions
        pending += [e for e in linked if isinstance(e, BaseException)]


def model_server_url(exc: BaseException) -> str | None:
    """The base URL of the server a failed request went to, from the request the SDK or httpx
    attached (never a key: keys travel in headers; user info, query and fragment are dropped)."""
    for error in causes(exc):
        request: httpx2.Request | None = None
        if isinstance(error, openai.APIError):
            request = error.request
        elif isinstance(error, httpx2.RequestError):
            request = error._request  # the public property raises when none is attached
        if request is not None:
            return _base_url(str(request.url))
    for error in causes(exc):
        if isinstance(error, aiohttp.ClientConnectorError):
            return f"{error.host}:{error.port}"
    return None


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    segments = parts.path.split("/")
    path = parts.path
    for index in range(len(segments)):
        if _ENDPOINT.fullmatch("/".join(segments[index:])):
            path = "/".join(segments[:index])
            break
    return urlunsplit((parts.scheme, netloc, path.rstrip("/"), "", ""))


def _host(url: str | None) -> str:
    host = urlsplit(url if url and "//" in url else f"//{url}").hostname if url else None
    return host or "(unknown)"


def transport_failure(exc: BaseException) -> Failure | None:
    """A refused connection, a failed DNS lookup or a failed TLS handshake, named as such with the
    server's URL; None for anything else (timeouts included)."""
    if not isinstance(exc, _TRANSPORT_ERRORS):
        return None
    chain = list(causes(exc))
    url = model_server_url(exc)
    at = f" at {url}" if url else ""
    tls = [e for e in chain if isinstance(e, ssl.SSLError)]
    if tls or any(isinstance(e, aiohttp.ClientSSLError) for e in chain):
        first = tls[0] if tls else None
        reason = getattr(first, "verify_message", None) or getattr(first, "reason", None)
        return Failure(
            "tls",
            UNREACHABLE,
            f"the TLS handshake with the model server{at} failed"
            + (f" ({reason})" if reason else "")
            + ": check its certificate, or whether OPENAI_BASE_URL should start with http://",
        )
    if any(isinstance(e, _DNS_ERRORS) for e in chain):
        return Failure(
            "dns",
            UNREACHABLE,
            f"cannot resolve the host {_host(url)} of the model server{at}: check the host name "
            "in OPENAI_BASE_URL and this machine's DNS",
        )
    if any(_refused(e) for e in chain):
        return Failure(
            "connection_refused",
            UNREACHABLE,
            f"connection refused by the model server{at}: is it running? check OPENAI_BASE_URL",
        )
    return None


def _refused(error: BaseException) -> bool:
    return isinstance(error, ConnectionRefusedError) or (
        isinstance(error, OSError) and error.errno == errno.ECONNREFUSED
    )


def classify(exc: BaseException) -> Failure:
    """Describe a model-call failure for the user and the operator (never with secrets)."""
    if isinstance(exc, StreamInterrupted):
        return Failure(
            "stream_interrupted",
            "My reply was cut off by a connection problem. Please ask again.",
            f"the model's stream broke mid-reply: {exc.__cause__ or exc}",
        )
    if isinstance(exc, openai.APIStatusError):
        status, code = exc.status_code, error_code(exc)
        if status == 429 and code == "insufficient_quota":
            return Failure(
                "insufficient_quota",
                "I can't answer right now: the AI service's quota is used up. An admin has to "
                "add credit.",
                "OpenAI answered 429 insufficient_quota: add credit or raise the spending limit "
                "of the project that OPENAI_API_KEY belongs to.",
            )
        if status == 429:
            return Failure(
                "rate_limited",
                "The AI service is busy right now. Please try again in a minute.",
                "OpenAI kept answering 429 rate limited after all retries; consider a higher "
                "rate-limit tier or fewer concurrent turns.",
            )
        if status == 401:
            return Failure(
                "auth",
                "I can't reach the AI service: it rejected my credentials. An admin has to fix it.",
                "the model API answered 401: OPENAI_API_KEY is missing, wrong or revoked.",
            )
        if status == 403:
            return Failure(
                "permission",
                "The AI service refused this request. An admin has to check the model access.",
                f"the model API answered 403 ({code or 'permission denied'}): the key's project "
                "may not have access to this model; check OPENAI_MODEL and the project.",
            )
        if status == 404:
            return Failure(
                "not_found",
                "The configured AI model is not available. An admin has to fix the setting.",
                f"the model API answered 404 ({exc.message}): check OPENAI_MODEL and "
                "OPENAI_BASE_URL.",
            )
        if status in (400, 422):
            return Failure(
                "bad_request",
                "The AI service could not process this message. Try rephrasing or shortening it.",
                f"the model API rejected the request ({status}): {exc.message}",
            )
        return Failure(
            "server_error",
            "The AI service is having trouble. Please try again shortly.",
            f"the model API kept failing with {status} after all retries.",
        )
    named = transport_failure(exc)
    if named is not None:  # before timeouts: the aiohttp transport reports these as timeouts
        return named
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return Failure(
            "timeout",
            "The AI service took too long to answer. Please try again.",
            "model calls timed out after all retries; check OPENAI_TIMEOUT and the service.",
        )
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return Failure(
            "connection",
            UNREACHABLE,
            "cannot connect to the model API after all retries; check OPENAI_BASE_URL and the "
            "network.",
        )
    return Failure(
        "internal",
        "Something went wrong while answering. Please try again.",
        f"unexpected error in the model call: {type(exc).__name__}: {exc}",
    )
