"""Files and the Batch API: JSONL requests run through the simulator's own endpoint handlers.

`batch_mode` decides what a new batch does (validation failures always fail it):

- ``"complete"`` (default): every line runs while the create call is answered; the create reply
  says ``validating`` and the first retrieve says ``completed``.
- ``"hold"``: the batch stays ``in_progress`` until `finish_batches()` (or ``/_sim/finish_batches``)
  finishes it, or it is cancelled.
- ``"fail"``: the batch ends ``failed`` with `errors`, no lines run.
- ``"expire"``: the first `batch_expire_after` lines run (default: half), the batch ends
  ``expired`` and the rest go to the error file as ``batch_expired``.

A line fails (an error-file line whose ``response.status_code`` is the failure's status) when its
custom_id matches a `fail_batch_lines` pattern, or when its request fails as a request would: a
scripted `Fail` step, a `fail_next(endpoint)` or a `fail_matching(substring)` rule. Lines also take
scripted `Text` / `ToolCalls` steps from the queue, in order. Once a batch has ended,
``request_counts.total == completed + failed`` (expired or cancelled lines count as failed).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from aiohttp import web

from simulator.script import Fail

JSON = dict[str, Any]

BATCH_MODES = ("complete", "hold", "fail", "expire")
BATCH_OUTCOMES = ("complete", "fail", "expire")
BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/moderations")
EXPIRED = "This request could not be executed before the completion window expired."
CANCELLED = "This request was not executed because the batch was cancelled."
LINE_FAILURE = Fail(500, code="server_error", message="simulated batch line failure")
_TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True, slots=True)
class Line:
    """One request of a batch's input file."""

    number: int
    custom_id: str
    body: JSON


def _now() -> int:
    return int(time.time())


def _error(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> web.Response:
    body = Fail(status, code=code, message=message).body()
    body["error"]["param"] = param
    return web.json_response(body, status=status)


def _listing(items: list[JSON], after: str | None, limit: int) -> JSON:
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def _limit(request: web.Request, default: int, most: int) -> int:
    try:
        return max(1, min(int(request.query.get("limit", default)), most))
    except ValueError:
        return default


def parse_lines(data: bytes, endpoint: str) -> tuple[list[Line], list[JSON]]:
    """The input file's requests, and its validation errors (OpenAI's `errors.data` entries)."""
    errors: list[JSON] = []

    def problem(code: str, message: str, line: int | None, param: str | None = None) -> None:
        errors.append({"code": code, "message": message, "param": param, "line": line})

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        problem("invalid_file", "The input file is not UTF-8 encoded JSONL.", None)
        return [], errors
    lines: list[Line] = []
    seen: set[str] = set()
    model: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError:
            problem("invalid_json_line", f"Line {number} is not valid JSON.", number)
            continue
        if not isinstance(entry, dict):
            problem("invalid_json_line", f"Line {number} is not a JSON object.", number)
            continue
        custom_id = entry.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            problem("missing_required_parameter", "custom_id is required.", number, "custom_id")
            continue
        if custom_id in seen:
            problem(
                "duplicate_custom_id",
                f"The custom_id {custom_id!r} is used more than once.",
                number,
                "custom_id",
            )
            continue
        seen.add(custom_id)
        if str(entry.get("method", "")).upper() != "POST":
            problem("invalid_method", "Only POST requests are supported.", number, "method")
            continue
        if str(entry.get("url", "")).rstrip("/") != endpoint:
            problem(
                "mismatched_endpoint",
                f"The url of line {number} does not match the batch endpoint {endpoint}.",
                number,
                "url",
            )
            continue
        body = entry.get("body")
        if not isinstance(body, dict):
            problem("invalid_request", "body must be a JSON object.", number, "body")
            continue
        line_model = body.get("model")
        if model is not None and line_model != model:
            problem(
                "mismatched_model",
                "All requests in a batch must use the same model.",
                number,
                "body.model",
            )
            continue
        model = line_model if isinstance(line_model, str) else model
        lines.append(Line(number, custom_id, body))
    if not lines and not errors:
        problem("empty_file", "The input file has no requests.", None)
    return lines, errors


def _usage(bodies: list[JSON]) -> JSON:
    """Token usage summed over the successful lines' bodies (either wire's field names)."""
    tokens_in = tokens_out = 0
    for body in bodies:
        usage = body.get("usage") or {}
        tokens_in += int(usage.get("input_tokens", usage.get("prompt_tokens", 0)) or 0)
        tokens_out += int(usage.get("output_tokens", usage.get("completion_tokens", 0)) or 0)
    return {
        "input_tokens": tokens_in,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": tokens_out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": tokens_in + tokens_out,
    }


class FilesAndBatches:
    """The `/v1/files` and `/v1/batches` endpoints, mixed into `Simulator`."""

    files: dict[str, JSON]
    file_contents: dict[str, bytes]
    batches: dict[str, JSON]
    batch_expire_after: int | None
    _batch_mode: str
    _pending: dict[str, list[Line]]
    _output_expiry: dict[str, int]
    _line_failures: list[tuple[str, Fail]]
    _batch_call: Callable[[str, JSON], Awaitable[tuple[int, JSON]]]

    def _init_files_and_batches(self, batch_mode: str) -> None:
        self.files = {}
        self.file_contents = {}
        """Each file's bytes (uploads and batch output/error files), by file id."""
        self.batches = {}
        """Batch objects by id, as retrieve returns them."""
        self.batch_mode = batch_mode
        self.batch_expire_after = None
        """In "expire" mode, how many lines run before the batch expires (None: half)."""
        self._pending = {}
        self._output_expiry = {}
        self._line_failures = []

    # -- control --------------------------------------------------------------------------

    @property
    def batch_mode(self) -> str:
        """What new batches do: "complete" (default), "hold", "fail" or "expire"."""
        return self._batch_mode

    @batch_mode.setter
    def batch_mode(self, mode: str) -> None:
        if mode not in BATCH_MODES:
            raise ValueError(f"batch_mode must be one of {', '.join(BATCH_MODES)}, not {mode!r}")
        self._batch_mode = mode

    def fail_batch_lines(self, pattern: str, failure: Fail | None = None) -> None:
        """Batch lines whose custom_id matches the glob `pattern` ("bad-*", "req-3") fail with
        `failure` (default: HTTP 500), until `reset()`."""
        self._line_failures.append((pattern, failure or LINE_FAILURE))

    async def finish_batches(
        self, batch_id: str | None = None, outcome: str = "complete"
    ) -> list[JSON]:
        """Finish held (``batch_mode="hold"``) batches: all of them, or `batch_id`; `outcome` is
        "complete", "fail" or "expire". Returns the finished batch objects."""
        if outcome not in BATCH_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(BATCH_OUTCOMES)}")
        if batch_id is not None and batch_id not in self._pending:
            raise KeyError(f"batch {batch_id} is not held in progress")
        ids = [batch_id] if batch_id is not None else list(self._pending)
        finished = []
        for held in ids:
            lines = self._pending.pop(held)
            await self._run_batch(self.batches[held], lines, outcome)
            finished.append(dict(self.batches[held]))
        return finished

    def _reset_batches(self) -> None:
        self._line_failures.clear()

    # -- files ----------------------------------------------------------------------------

    def add_file(
        self, data: bytes, filename: str, purpose: str, expires_at: int | None = None
    ) -> JSON:
        """Store a file as an upload would, and return its file object."""
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": _now(),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": expires_at,
            "status_details": None,
        }
        self.file_contents[file_id] = data
        return self.files[file_id]

    async def _files(self, request: web.Request, tail: str, body: JSON) -> web.StreamResponse:
        parts = tail.split("/")[1:]
        method = request.method
        if not parts:
            if method == "POST":
                if "_bytes" not in body:
                    return _error(400, "'file' is a required property", None, "file")
                info = body.get("file") or {}
                created = self.add_file(
                    body["_bytes"],
                    str(info.get("filename") or "upload"),
                    str(body.get("purpose") or "assistants"),
                )
                return web.json_response(created)
            if method == "GET":
                purpose = request.query.get("purpose")
                items = [f for f in self.files.values() if not purpose or f["purpose"] == purpose]
                if request.query.get("order", "desc") != "asc":
                    items = items[::-1]
                return web.json_response(
                    _listing(items, request.query.get("after"), _limit(request, 10_000, 10_000))
                )
            return _error(405, f"Method {method} is not allowed on /v1/files", None)
        file_id = parts[0]
        found = self.files.get(file_id)
        if found is None:
            return _error(404, f"No such File object: {file_id}", None, "id")
        if len(parts) == 2 and parts[1] == "content" and method == "GET":
            return web.Response(
                body=self.file_contents.get(file_id, b""), content_type="application/octet-stream"
            )
        if len(parts) == 1 and method == "GET":
            return web.json_response(found)
        if len(parts) == 1 and method == "DELETE":
            del self.files[file_id]
            self.file_contents.pop(file_id, None)
            return web.json_response({"id": file_id, "object": "file", "deleted": True})
        return _error(404, f"Unknown request URL: {method} /v1/{tail}", "unknown_url")

    # -- batches --------------------------------------------------------------------------

    async def _batches_api(self, request: web.Request, tail: str, body: JSON) -> web.StreamResponse:
        parts = tail.split("/")[1:]
        method = request.method
        if not parts:
            if method == "POST":
                return await self._create_batch(body)
            if method == "GET":
                items = list(self.batches.values())[::-1]
                return web.json_response(
                    _listing(items, request.query.get("after"), _limit(request, 20, 100))
                )
            return _error(405, f"Method {method} is not allowed on /v1/batches", None)
        batch = self.batches.get(parts[0])
        if batch is None:
            return _error(404, f"No batch found with id '{parts[0]}'.", None, "batch_id")
        if len(parts) == 1 and method == "GET":
            return web.json_response(batch)
        if parts[1:] == ["cancel"] and method == "POST":
            return self._cancel_batch(batch)
        return _error(404, f"Unknown request URL: {method} /v1/{tail}", "unknown_url")

    async def _create_batch(self, body: JSON) -> web.Response:
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not body.get(name):
                return _error(400, f"Missing required parameter: '{name}'.", None, name)
        endpoint = str(body["endpoint"]).rstrip("/")
        if endpoint not in BATCH_ENDPOINTS:
            return _error(
                400,
                f"Invalid value for 'endpoint': {endpoint!r}; supported: "
                + ", ".join(BATCH_ENDPOINTS),
                "invalid_value",
                "endpoint",
            )
        if body["completion_window"] != "24h":
            return _error(
                400,
                "Only the '24h' completion_window is supported.",
                "invalid_value",
                "completion_window",
            )
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            return _error(400, "metadata must be an object.", "invalid_type", "metadata")
        input_file = self.files.get(body["input_file_id"])
        if input_file is None:
            return _error(
                404, f"No such File object: {body['input_file_id']}", None, "input_file_id"
            )
        if input_file["purpose"] != "batch":
            return _error(
                400,
                "The input file must be uploaded with purpose 'batch'.",
                "invalid_value",
                "input_file_id",
            )
        now = _now()
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        batch: JSON = {
            "id": batch_id,
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": input_file["id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata,
            "model": None,
            "usage": None,
        }
        expires_after = body.get("output_expires_after")
        if isinstance(expires_after, dict) and isinstance(expires_after.get("seconds"), int):
            self._output_expiry[batch_id] = expires_after["seconds"]
        self.batches[batch_id] = batch
        reply = dict(batch)
        lines, errors = parse_lines(self.file_contents.get(input_file["id"], b""), endpoint)
        if lines and isinstance(lines[0].body.get("model"), str):
            batch["model"] = lines[0].body["model"]
        if errors:
            self._fail_batch(batch, errors)
        elif self.batch_mode == "fail":
            self._fail_batch(batch, None)
        else:
            batch.update(
                status="in_progress",
                in_progress_at=_now(),
                request_counts={"total": len(lines), "completed": 0, "failed": 0},
            )
            if self.batch_mode == "hold":
                self._pending[batch_id] = lines
            else:
                await self._run_batch(batch, lines, self.batch_mode)
        return web.json_response(reply)

    def _fail_batch(self, batch: JSON, errors: list[JSON] | None) -> None:
        errors = errors or [
            {
                "code": "simulated_failure",
                "message": "The batch failed (simulated).",
                "param": None,
                "line": None,
            }
        ]
        batch.update(
            status="failed",
            failed_at=_now(),
            errors={"object": "list", "data": errors},
            request_counts={"total": 0, "completed": 0, "failed": 0},
        )

    def _cancel_batch(self, batch: JSON) -> web.Response:
        if batch["status"] in _TERMINAL:
            return _error(
                400, f"Cannot cancel a batch with status '{batch['status']}'.", None, "batch_id"
            )
        now = _now()
        lines = self._pending.pop(batch["id"], [])
        batch.update(status="cancelling", cancelling_at=now)
        reply = dict(batch)
        skipped = [_line_error(line, "batch_cancelled", CANCELLED) for line in lines]
        self._finalize(batch, [], skipped)
        batch.update(status="cancelled", cancelled_at=_now())
        return web.json_response(reply)

    async def _run_batch(self, batch: JSON, lines: list[Line], outcome: str) -> None:
        if outcome == "fail":
            self._fail_batch(batch, None)
            return
        run = lines
        skipped: list[JSON] = []
        if outcome == "expire":
            count = self.batch_expire_after
            count = len(lines) // 2 if count is None else max(0, min(count, len(lines)))
            run = lines[:count]
            skipped = [_line_error(line, "batch_expired", EXPIRED) for line in lines[count:]]
        results = [await self._run_line(batch["endpoint"], line) for line in run]
        self._finalize(batch, results, skipped)
        if outcome == "expire":
            batch.update(status="expired", expired_at=_now())
        else:
            batch.update(status="completed", completed_at=_now())

    async def _run_line(self, endpoint: str, line: Line) -> JSON:
        failure = next((f for p, f in self._line_failures if fnmatchcase(line.custom_id, p)), None)
        if failure is not None:
            if failure.delay:
                await asyncio.sleep(failure.delay)
            status, body = failure.status, failure.body()
        else:
            try:
                status, body = await self._batch_call(endpoint, line.body)
            except Exception as exc:  # a line must not take the whole batch down
                status = 500
                body = Fail(500, code="server_error", message=f"{type(exc).__name__}: {exc}").body()
        return {
            "id": f"batch_req_{uuid.uuid4().hex[:24]}",
            "custom_id": line.custom_id,
            "response": {
                "status_code": status,
                "request_id": f"req_{uuid.uuid4().hex[:24]}",
                "body": body,
            },
            "error": None,
        }

    def _finalize(self, batch: JSON, results: list[JSON], skipped: list[JSON]) -> None:
        ok: list[JSON] = []
        failed: list[JSON] = []
        for result in results:
            (ok if 200 <= result["response"]["status_code"] < 300 else failed).append(result)
        failed += skipped
        batch.update(status="finalizing", finalizing_at=_now())
        seconds = self._output_expiry.get(batch["id"])
        expires_at = _now() + seconds if seconds is not None else None
        if ok:
            output = self.add_file(
                _jsonl(ok), f"{batch['id']}_output.jsonl", "batch_output", expires_at
            )
            batch["output_file_id"] = output["id"]
        if failed:
            errors = self.add_file(
                _jsonl(failed), f"{batch['id']}_error.jsonl", "batch_output", expires_at
            )
            batch["error_file_id"] = errors["id"]
        batch["request_counts"] = {
            "total": len(results) + len(skipped),
            "completed": len(ok),
            "failed": len(failed),
        }
        batch["usage"] = _usage([r["response"]["body"] for r in ok])


def _line_error(line: Line, code: str, message: str) -> JSON:
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:24]}",
        "custom_id": line.custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def _jsonl(entries: list[JSON]) -> bytes:
    return "".join(json.dumps(entry) + "\n" for entry in entries).encode()
