"""Digests through OpenAI's Batch API (`DIGEST_BATCH=true`): work that can wait, at half price.

The digests due in one pass (per platform) become one JSONL file of requests, uploaded to
`/v1/files` and sent to `/v1/batches` through the server's own SDK client. The batch is stored
with its runs (each with the request's input and links), so any process, after a restart too,
polls it: with back-off (a minute, doubling, at most half an hour), one process at a time (a
lease on its row). When it ends, each result is posted once (a run is taken from the batch in
one conditional write) and priced at batch rates; a line that failed is retried as a direct call,
and a batch that expired, failed or was cancelled falls back to direct calls for what it did not
answer, with a log line saying so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import openai
import structlog

from core.context.ports import Ports
from core.llm import chat, responses
from core.llm.types import Completed, ModelRequest, Usage
from core.schedules.digests import DigestInput, Digests
from core.schedules.outcomes import Outcome, conclude
from core.store import Store
from core.store.schedules import Batch, Run

log = structlog.get_logger(__name__)

ENDPOINTS = {"chat": "/v1/chat/completions", "responses": "/v1/responses"}
WINDOW = 24 * 3600.0  # the Batch API's completion window
GRACE = 3600.0  # past the window with no end reported: given up on and cancelled
LEASE = 600.0  # one process polls (and posts the results of) a batch at a time
CONCURRENCY = 8  # results posted (or retried directly) at once
_RUNNING = ("validating", "in_progress", "finalizing", "cancelling")


def batch_line(custom_id: str, request: ModelRequest, wire: str) -> dict[str, Any]:
    """One JSONL line of a batch: the request as its wire's (non-streaming) body."""
    body = (responses if wire == "responses" else chat).request_body(request)
    body.pop("stream", None)
    body.pop("stream_options", None)
    return {"custom_id": custom_id, "method": "POST", "url": ENDPOINTS[wire], "body": body}


def completed_of(body: dict[str, Any], wire: str) -> Completed:
    """A batch result's response body as a finished call; `ValueError` when it has no answer."""
    if wire == "responses":
        texts = [
            part.get("text", "")
            for item in body.get("output") or ()
            if isinstance(item, dict) and item.get("type") == "message"
            for part in item.get("content") or ()
            if isinstance(part, dict) and part.get("type") == "output_text"
        ]
        usage = body.get("usage") or {}
        counts = Usage(
            int(usage.get("input_tokens") or 0),
            int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0),
            int(usage.get("output_tokens") or 0),
        )
        if not texts:
            raise ValueError("the response has no output text")
        return Completed("".join(texts), (), counts, str(body.get("model") or ""))
    choices = body.get("choices") or []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ValueError("the completion has no message content")
    usage = body.get("usage") or {}
    counts = Usage(
        int(usage.get("prompt_tokens") or 0),
        int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
    )
    return Completed(content, (), counts, str(body.get("model") or ""))


class BatchDigests:
    """Submits due digests as batches, and polls and collects them."""

    def __init__(
        self,
        store: Store,
        client: openai.AsyncOpenAI,
        digests: Digests,
        ports: Ports,
        *,
        wire: str,
        first_poll: float = 60.0,
        max_poll: float = 1800.0,
    ) -> None:
        self._store = store
        self._client = client
        self._digests = digests
        self._ports = ports
        self.wire = wire
        self._first_poll = first_poll
        self._max_poll = max_poll

    async def submit(
        self, platform: str, due: Sequence[tuple[Run, DigestInput]], *, now: float
    ) -> list[tuple[Run, DigestInput]]:
        """Send `due` as one batch; returns those to run directly instead (the batch could not
        be created: the Files or Batch API is unavailable)."""
        if not due:
            return []
        lines = [batch_line(_custom_id(run), self._digests.request(d), self.wire) for run, d in due]
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        endpoint = ENDPOINTS[self.wire]
        try:
            uploaded = await self._client.files.create(
                file=("digests.jsonl", data), purpose="batch"
            )
            created = await self._client.batches.create(
                input_file_id=uploaded.id,
                endpoint=endpoint,  # type: ignore[arg-type]
                completion_window="24h",
                metadata={"parley": "digests", "platform": platform},
            )
        except openai.OpenAIError as exc:
            log.warning(
                "digest_batch_not_submitted",
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
                digests=len(due),
                fallback="direct calls",
            )
            return list(due)
        batch = Batch(
            id=created.id,
            platform=platform,
            endpoint=endpoint,
            input_file_id=uploaded.id,
            status="submitted",
            remote_status=str(created.status),
            polls=0,
            next_poll_at=now + self._first_poll,
            created_at=now,
            expires_at=now + WINDOW,
        )
        payloads = [(run, d.to_json(), d.since, d.until) for run, d in due]
        moved = await self._store.schedules.batched(batch, payloads)
        log.info("digest_batch_submitted", batch=created.id, digests=len(moved), bytes=len(data))
        return []

    async def poll(self, platforms: Sequence[str], *, now: float) -> int:
        """Poll the batches that are due (and nobody else polls); returns how many ended."""
        ended = 0
        for batch in await self._store.schedules.due_batches(platforms, now=now):
            if await self._store.schedules.lease_batch(batch.id, now=now, lease=LEASE):
                ended += await self._poll_one(batch, now)
        return ended

    def _later(self, batch: Batch, now: float) -> float:
        """The next poll: the first a minute after submission, then waits doubling to the cap."""
        return now + min(self._first_poll * 2 ** (batch.polls + 1), self._max_poll)

    async def _poll_one(self, batch: Batch, now: float) -> int:
        schedules = self._store.schedules
        try:
            remote = await self._client.batches.retrieve(batch.id)
        except openai.OpenAIError as exc:
            if now < batch.expires_at + GRACE:
                log.warning("digest_batch_poll_failed", batch=batch.id, error=type(exc).__name__)
                later = self._later(batch, now)
                await schedules.poll_later(batch.id, batch.remote_status, next_poll_at=later)
                return 0
            remote = None
        status = str(remote.status) if remote is not None else "unreachable"
        if status in _RUNNING:
            if now < batch.expires_at + GRACE:
                await schedules.poll_later(batch.id, status, next_poll_at=self._later(batch, now))
                return 0
            status = "overdue"
            await self._cancel(batch)
        results: dict[str, dict[str, Any]] = {}
        failures: dict[str, str] = {}
        try:
            if remote is not None:
                for file_id in (remote.output_file_id, remote.error_file_id):
                    if file_id:
                        _read_results(await self._client.files.content(file_id), results, failures)
        except openai.OpenAIError as exc:  # the results cannot be read now: try again later
            log.warning("digest_batch_download_failed", batch=batch.id, error=type(exc).__name__)
            if now < batch.expires_at + GRACE:
                await schedules.poll_later(batch.id, status, next_poll_at=self._later(batch, now))
                return 0
            status = "unreadable"  # given up: what it answered is run directly too
        if status != "completed":
            log.warning(
                f"digest_batch_{status}",
                batch=batch.id,
                answered=len(results),
                fallback="direct calls for the digests it did not answer",
            )
        slots = asyncio.Semaphore(CONCURRENCY)

        async def finish(run: Run) -> None:
            async with slots:
                if not await schedules.take(run.id):
                    return  # another process took it
                try:
                    outcome = await self._finish(run, results, failures, now)
                except Exception as exc:  # this digest's failure must not stop the others
                    log.error("digest_batch_result_failed", run=run.id, error=type(exc).__name__)
                    outcome = Outcome("failed", f"{type(exc).__name__}: {str(exc)[:200]}")
                await conclude(self._store, self._ports, run, outcome, now=now)

        await asyncio.gather(*(finish(run) for run in await schedules.batch_runs(batch.id)))
        await schedules.collected(batch.id, status, now=now)
        log.info("digest_batch_collected", batch=batch.id, status=status, answered=len(results))
        return 1

    async def _finish(
        self,
        run: Run,
        results: dict[str, dict[str, Any]],
        failures: dict[str, str],
        now: float,
    ) -> Outcome:
        digest = DigestInput.from_json(run.payload)
        body = results.get(_custom_id(run))
        if body is not None:
            try:
                done = completed_of(body, self.wire)
            except ValueError as exc:
                failures[_custom_id(run)] = str(exc)
            else:
                return await self._digests.publish(run, digest, done, batch=True)
        log.warning(
            "digest_batch_line_failed",
            run=run.id,
            error=failures.get(_custom_id(run), "no result"),
            retry="direct call",
        )
        return await self._digests.run_direct(run, digest, now=now)

    async def _cancel(self, batch: Batch) -> None:
        try:
            await self._client.batches.cancel(batch.id)
        except openai.OpenAIError as exc:
            log.warning("digest_batch_cancel_failed", batch=batch.id, error=type(exc).__name__)


def _custom_id(run: Run) -> str:
    return f"run-{run.id}"


def _read_results(
    content: Any, results: dict[str, dict[str, Any]], failures: dict[str, str]
) -> None:
    """Sort a batch output or error file's lines into answered bodies and failures."""
    for raw in content.text.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            continue
        response = line.get("response") or {}
        status = response.get("status_code") if isinstance(response, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        if isinstance(status, int) and 200 <= status < 300 and isinstance(body, dict):
            results[line["custom_id"]] = body
        else:
            error = line.get("error") or (body.get("error") if isinstance(body, dict) else None)
            if not isinstance(error, dict):
                error = {"message": str(error or "no response")}
            code = status or error.get("code") or "error"
            failures[line["custom_id"]] = f"{code}: {error.get('message')}"[:300]
