"""Model-call failures classified into what to tell the user and what to tell the operator."""

from __future__ import annotations

from dataclasses import dataclass

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
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return Failure(
            "timeout",
            "The AI service took too long to answer. Please try again.",
            "model calls timed out after all retries; check OPENAI_TIMEOUT and the service.",
        )
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return Failure(
            "connection",
            "I can't reach the AI service right now. Please try again shortly.",
            "cannot connect to the model API after all retries; check OPENAI_BASE_URL and the "
            "network.",
        )
    return Failure(
        "internal",
        "Something went wrong while answering. Please try again.",
        f"unexpected error in the model call: {type(exc).__name__}: {exc}",
    )
