"""An OpenAI-compatible HTTP server on loopback: deterministic, scriptable, fault-injecting, recording."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from simulator import chat_wire, extras, responses_wire
from simulator.batches import FilesAndBatches
from simulator.plan import Ask, chunks, default_step
from simulator.script import Fail, Recorded, Step, Text, ToolCalls, step_from_json

JSON = dict[str, Any]


class Simulator(FilesAndBatches):
    """Serves the parts of the OpenAI API this project uses, from a script or a default rule."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        latency: float = 0.0,
        chunk_size: int = 8,
        default_tools: bool = True,
        batch_mode: str = "complete",
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.chunk_size = chunk_size
        self.default_tools = default_tools
        """Unscripted requests call offered `calculate` / `now` tools for arithmetic and time asks
        and answer tool results from their output (False: echo as before)."""
        self.models: dict[str, dict[str, Any]] = {k: dict(v) for k, v in extras.MODELS.items()}
        self.requests: list[Recorded] = []
        self.attempts: defaultdict[str, int] = defaultdict(int)
        self._matching: list[tuple[str, Fail]] = []
        self._arrived = asyncio.Condition()
        self.conversations: dict[str, JSON] = {}
        self._init_files_and_batches(batch_mode)  # files, file_contents, batches, batch_mode
        self.vector_stores: dict[str, JSON] = {}
        self.record = True
        self._queue: deque[Step] = deque()
        self._failures: defaultdict[str, deque[Fail]] = defaultdict(deque)
        self._flags: list[tuple[str, dict[str, float]]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- control --------------------------------------------------------------------------

    def enqueue(self, *steps: Step) -> None:
        """Queue replies for the next generation requests (Responses or Chat Completions)."""
        self._queue.extend(steps)

    def fail_next(self, endpoint: str, failure: Fail, times: int = 1) -> None:
        """Make the next `times` requests to `endpoint` fail."""
        self._failures[endpoint].extend([failure] * times)

    def fail_matching(self, substring: str, failure: Fail, times: int = 1) -> None:
        """Make the next `times` requests whose body contains `substring` fail (one user's
        conversation, say, while the others' requests go through)."""
        self._matching.extend([(substring, failure)] * times)

    def flag(self, substring: str, **scores: float) -> None:
        """Moderation rule: inputs containing `substring` get these scores (`self_harm` = self-harm)."""
        mapped = {_category(name): value for name, value in scores.items()}
        self._flags.append((substring.lower(), mapped))

    async def wait_for(self, endpoint: str, count: int = 1, timeout: float = 10) -> list[Recorded]:
        """Wait until `count` requests to `endpoint` have arrived (they are recorded on arrival)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests_to(endpoint)) >= count)
        return self.requests_to(endpoint)

    def requests_to(self, endpoint: str) -> list[Recorded]:
        """Recorded requests to one endpoint."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def delete_conversation(self, conversation_id: str) -> None:
        """Forget a conversation so the next use of its id answers 404."""
        self.conversations.pop(conversation_id, None)

    def reset(self) -> None:
        """Clear queues, rules, failures and records."""
        self._queue.clear()
        self._failures.clear()
        self._flags.clear()
        self._matching.clear()
        self.requests.clear()
        self.attempts.clear()
        self._reset_batches()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and serve; `base_url` is set once listening."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.on_response_prepare.append(_request_id)
        app.router.add_route("*", "/_sim/{action}", self._admin)
        app.router.add_route("*", "/v1/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        bound = sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound}/v1"

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- routing --------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"].strip("/")
        endpoint, handler = self._route(request.method, tail)
        if handler is None:
            return _error(404, f"Unknown request URL: {request.method} /v1/{tail}", "unknown_url")
        body, failure = await self._body(request)
        self.attempts[endpoint] += 1
        if self.record:
            headers = {
                k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"
            }
            async with self._arrived:
                self.requests.append(
                    Recorded(
                        endpoint, request.method, "/v1/" + tail, body, headers, time.monotonic()
                    )
                )
                self._arrived.notify_all()
        if failure is not None:
            return failure
        if not self._authorized(request):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        injected = self._injected(endpoint, body)
        if injected is not None:
            return await _fail(injected)
        return await handler(request, tail, body or {})

    def _injected(self, endpoint: str, body: JSON | None) -> Fail | None:
        """The `fail_next` / `fail_matching` failure due for this request, if any (used up)."""
        injected = self._failures[endpoint]
        if injected:
            return injected.popleft()
        if self._matching and body:
            text = str(body)
            for index, (substring, step) in enumerate(self._matching):
                if substring in text:
                    del self._matching[index]
                    return step
        return None

    async def _batch_call(self, url: str, body: JSON) -> tuple[int, JSON]:
        """One batch line through its endpoint's handler, never streamed (so no HTTP request is
        needed); the script queue and the fail_next / fail_matching rules apply as to a request."""
        tail = url.removeprefix("/v1/").strip("/")
        endpoint, handler = self._route("POST", tail)
        injected = self._injected(endpoint, body)
        if injected is not None:
            response: web.StreamResponse = await _fail(injected)
        else:
            response = await handler(None, tail, {**body, "stream": False})
        raw = response.body if isinstance(response, web.Response) else None
        return response.status, json.loads(raw) if isinstance(raw, bytes) else {}

    def _route(self, method: str, tail: str) -> tuple[str, Any]:
        parts = tail.split("/")
        head = parts[0]
        table: dict[tuple[str, str], tuple[str, Any]] = {
            ("POST", "responses"): ("responses", self._responses),
            ("POST", "chat"): ("chat", self._chat),
            ("POST", "moderations"): ("moderations", self._moderations),
            ("POST", "embeddings"): ("embeddings", self._embeddings),
            ("POST", "audio"): ("transcriptions", self._transcriptions),
            ("POST", "images"): ("images", self._images),
            ("GET", "models"): ("models", self._models),
        }
        if head == "files":
            return "files", self._files
        if head == "batches":
            return "batches", self._batches_api
        if head == "conversations":
            return "conversations", self._conversations
        if head == "vector_stores":
            return "vector_stores", self._vector_stores
        return table.get((method, head), ("unknown", None))

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return False
        return self.api_key is None or auth[7:] == self.api_key

    async def _body(self, request: web.Request) -> tuple[JSON | None, web.Response | None]:
        if request.method in ("GET", "DELETE") or not request.can_read_body:
            return None, None
        if request.content_type.startswith("multipart/"):
            form: JSON = {}
            async for part in await request.multipart():
                if part.filename:  # type: ignore[union-attr]
                    data = await part.read()  # type: ignore[union-attr]
                    form[part.name or "file"] = {"filename": part.filename, "size": len(data)}  # type: ignore[union-attr]
                    form["_bytes"] = data
                else:
                    form[part.name or ""] = await part.text()  # type: ignore[union-attr]
            return form, None
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None, _error(400, "We could not parse the JSON body of your request.", None)
        return (data if isinstance(data, dict) else {"_": data}), None

    # -- generation -----------------------------------------------------------------------

    def _next_step(self, ask: Ask) -> Step:
        if self._queue:
            return self._queue.popleft()
        return default_step(ask, use_tools=self.default_tools)

    async def _wait(self, step: Step) -> None:
        delay = self.latency + getattr(step, "delay", 0.0)
        if delay > 0:
            await asyncio.sleep(delay)

    async def _chat(self, request: web.Request, tail: str, body: JSON) -> web.StreamResponse:
        ask = chat_wire.ask(body)
        step = self._next_step(ask)
        await self._wait(step)
        if isinstance(step, Fail):
            return await _fail(step, delayed=True)
        if not body.get("stream"):
            return web.json_response(chat_wire.completion(ask, step))
        pieces = chunks(step.text, self.chunk_size) if isinstance(step, Text) else []
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = chat_wire.stream(ask, step, pieces, include_usage)
        return await self._sse(request, ({"data": e} for e in events), step, done_marker=True)

    async def _responses(self, request: web.Request, tail: str, body: JSON) -> web.StreamResponse:
        conversation_id = body.get("conversation")
        if isinstance(conversation_id, dict):
            conversation_id = conversation_id.get("id")
        history: list[JSON] = []
        if conversation_id:
            conversation = self.conversations.get(conversation_id)
            if conversation is None:
                return _error(404, f"Conversation with id '{conversation_id}' not found.", None)
            history = conversation["items"]
        ask = responses_wire.ask(body, history)
        step = self._next_step(ask)
        await self._wait(step)
        if isinstance(step, Fail):
            return await _fail(step, delayed=True)
        if conversation_id:
            self._append_items(conversation_id, responses_wire.input_items(body))
        if not body.get("stream"):
            output = responses_wire.output_items(step, ask)
            if conversation_id:
                self._append_items(conversation_id, output)
            return web.json_response(responses_wire.response(body, ask, output, "completed", step))
        pieces = chunks(step.text, self.chunk_size) if isinstance(step, Text) else []
        events = list(responses_wire.stream(body, ask, step, pieces))
        if conversation_id:
            self._append_items(conversation_id, events[-1]["response"]["output"])
        return await self._sse(
            request, ({"event": e["type"], "data": e} for e in events), step, done_marker=False
        )

    async def _sse(
        self,
        request: web.Request,
        events: Iterable[JSON],
        step: Text | ToolCalls,
        *,
        done_marker: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        cut_after = step.cut_after if isinstance(step, Text) else None
        pace = step.pace if isinstance(step, Text) else 0.0
        sent = 0
        for sequence, event in enumerate(events):
            if pace and sequence:
                await asyncio.sleep(pace)
            data = event["data"]
            if "type" in data:
                data["sequence_number"] = sequence
            if cut_after is not None:
                sent += _delta_length(data)
                if sent > cut_after:
                    assert request.transport is not None
                    request.transport.abort()  # a connection cut mid-stream, no completion
                    return response
            line = (
                f"event: {event['event']}\n" if "event" in event else ""
            ) + f"data: {json.dumps(data)}\n\n"
            try:
                await response.write(line.encode())
            except ConnectionResetError:  # the client went away (a test killed it): stop quietly
                return response
        if done_marker:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # -- other endpoints ------------------------------------------------------------------

    async def _moderations(self, request: web.Request, tail: str, body: JSON) -> web.Response:
        return web.json_response(extras.moderation(body, self._flags))

    async def _embeddings(self, request: web.Request, tail: str, body: JSON) -> web.Response:
        return web.json_response(extras.embeddings(body))

    async def _transcriptions(self, request: web.Request, tail: str, body: JSON) -> web.Response:
        text = extras.transcript(body.get("_bytes", b""))
        if body.get("response_format") == "text":
            return web.Response(text=text, content_type="text/plain")
        return web.json_response({"text": text, "usage": {"type": "duration", "seconds": 1}})

    async def _images(self, request: web.Request, tail: str, body: JSON) -> web.Response:
        return web.json_response(extras.images(body))

    async def _models(self, request: web.Request, tail: str, body: JSON) -> web.Response:
        parts = tail.split("/", 1)
        if len(parts) == 1:
            data = [extras.model_object(name, extra) for name, extra in self.models.items()]
            return web.json_response({"object": "list", "data": data})
        name = parts[1]
        if name not in self.models:
            return _error(404, f"The model '{name}' does not exist", "model_not_found")
        return web.json_response(extras.model_object(name, self.models[name]))

    async def _vector_stores(self, request: web.Request, tail: str, body: JSON) -> web.Response:
        parts = tail.split("/")[1:]
        now = int(time.time())
        if request.method == "POST" and not parts:
            store_id = f"vs_{uuid.uuid4().hex[:16]}"
            self.vector_stores[store_id] = {
                "id": store_id,
                "object": "vector_store",
                "created_at": now,
                "name": body.get("name", ""),
                "usage_bytes": 0,
                "file_counts": {
                    "in_progress": 0,
                    "completed": 0,
                    "failed": 0,
                    "cancelled": 0,
                    "total": 0,
                },
                "status": "completed",
                "metadata": body.get("metadata") or {},
                "last_active_at": now,
                "files": [],
            }
            return web.json_response(_public(self.vector_stores[store_id]))
        store = self.vector_stores.get(parts[0]) if parts else None
        if store is None:
            return _error(404, "No vector store found.", None)
        if len(parts) == 1:
            return web.json_response(_public(store))
        if request.method == "POST":
            entry = {
                "id": body.get("file_id", ""),
                "object": "vector_store.file",
                "created_at": now,
                "vector_store_id": store["id"],
                "status": "completed",
                "usage_bytes": 0,
                "last_error": None,
            }
            store["files"].append(entry)
            store["file_counts"]["completed"] += 1
            store["file_counts"]["total"] += 1
            return web.json_response(entry)
        if len(parts) == 3:
            found = next((f for f in store["files"] if f["id"] == parts[2]), None)
            return web.json_response(found) if found else _error(404, "No file found.", None)
        return web.json_response({"object": "list", "data": store["files"], "has_more": False})

    async def _conversations(self, request: web.Request, tail: str, body: JSON) -> web.Response:
        parts = tail.split("/")[1:]
        method = request.method
        if not parts:
            if method != "POST":
                return _error(404, "Unknown request URL", "unknown_url")
            items = body.get("items") or []
            if len(items) > 20:
                return _error(400, "At most 20 items can be added at a time.", None)
            conversation_id = f"conv_{uuid.uuid4().hex[:24]}"
            self.conversations[conversation_id] = {
                "id": conversation_id,
                "object": "conversation",
                "created_at": int(time.time()),
                "metadata": dict(body.get("metadata") or {}),
                "items": [],
            }
            self._append_items(conversation_id, items)
            return web.json_response(_public(self.conversations[conversation_id]))
        conversation = self.conversations.get(parts[0])
        if conversation is None:
            return _error(404, f"Conversation with id '{parts[0]}' not found.", None)
        if len(parts) == 1:
            if method == "DELETE":
                del self.conversations[parts[0]]
                return web.json_response(
                    {"id": parts[0], "object": "conversation.deleted", "deleted": True}
                )
            if method == "POST":
                conversation["metadata"] = dict(body.get("metadata") or {})
            return web.json_response(_public(conversation))
        return self._conversation_items(request, conversation, parts[2:], body)

    def _conversation_items(
        self, request: web.Request, conversation: JSON, rest: list[str], body: JSON
    ) -> web.Response:
        items: list[JSON] = conversation["items"]
        if rest:
            item = next((i for i in items if i["id"] == rest[0]), None)
            if item is None:
                return _error(404, f"Item with id '{rest[0]}' not found.", None)
            if request.method == "DELETE":
                items.remove(item)
                return web.json_response(_public(conversation))
            return web.json_response(item)
        if request.method == "POST":
            new = body.get("items") or []
            if len(new) > 20:
                return _error(400, "At most 20 items can be added at a time.", None)
            added = self._append_items(conversation["id"], new)
            return web.json_response(_item_list(added))
        ordered = items if request.query.get("order", "desc") == "asc" else items[::-1]
        after = request.query.get("after")
        if after:
            ids = [i["id"] for i in ordered]
            ordered = ordered[ids.index(after) + 1 :] if after in ids else []
        limit = int(request.query.get("limit", 20))
        return web.json_response(_item_list(ordered[:limit], has_more=len(ordered) > limit))

    def _append_items(self, conversation_id: str, items: Iterable[JSON]) -> list[JSON]:
        added = []
        for raw in items:
            item = dict(raw)
            item.setdefault("type", "message")
            prefix = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}.get(
                item["type"], "item"
            )
            item.setdefault("id", f"{prefix}_{uuid.uuid4().hex[:16]}")
            if item["type"] == "message":
                item.setdefault("status", "completed")
                if isinstance(item.get("content"), str):
                    kind = "output_text" if item.get("role") == "assistant" else "input_text"
                    item["content"] = [{"type": kind, "text": item["content"]}]
            self.conversations[conversation_id]["items"].append(item)
            added.append(item)
        return added

    # -- admin (for simulators in another process) -----------------------------------------

    async def _admin(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        data: Any = await request.json() if request.can_read_body else None
        if action == "enqueue":
            self.enqueue(*(step_from_json(dict(s)) for s in data))
        elif action == "fail_next":
            self.fail_next(data["endpoint"], Fail(**data["step"]), int(data.get("times", 1)))
        elif action == "flag":
            self.flag(data["substring"], **data.get("scores", {}))
        elif action == "config":
            self.latency = float(data.get("latency", self.latency))
            self.chunk_size = int(data.get("chunk_size", self.chunk_size))
            self.record = bool(data.get("record", self.record))
            self.default_tools = bool(data.get("default_tools", self.default_tools))
            self.batch_mode = str(data.get("batch_mode", self.batch_mode))
            if "batch_expire_after" in data:
                after = data["batch_expire_after"]
                self.batch_expire_after = None if after is None else int(after)
        elif action == "fail_batch_lines":
            step = Fail(**data["step"]) if data.get("step") else None
            self.fail_batch_lines(data["pattern"], step)
        elif action == "finish_batches":
            data = data or {}
            try:
                finished = await self.finish_batches(
                    data.get("id"), str(data.get("outcome", "complete"))
                )
            except (KeyError, ValueError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(finished)
        elif action == "requests":
            return web.json_response(
                [
                    {
                        "endpoint": r.endpoint,
                        "method": r.method,
                        "path": r.path,
                        "body": _jsonable(r.body),
                        "at": r.at,
                    }
                    for r in self.requests
                ]
            )
        elif action == "reset":
            self.reset()
        else:
            return web.json_response({"error": f"unknown action {action}"}, status=404)
        return web.json_response({"ok": True, "attempts": dict(self.attempts)})


def _category(name: str) -> str:
    for category in extras.MODERATION_CATEGORIES:
        if category.replace("/", "_").replace("-", "_") == name:
            return category
    return name


def _delta_length(data: JSON) -> int:
    if data.get("type") == "response.output_text.delta":
        return len(data["delta"])
    choices = data.get("choices") or []
    return sum(len((c.get("delta") or {}).get("content") or "") for c in choices)


def _public(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in {"items", "files"}}


def _item_list(items: list[JSON], has_more: bool = False) -> JSON:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


async def _request_id(_request: web.Request, response: web.StreamResponse) -> None:
    """Every answer carries an `x-request-id`, as OpenAI's do."""
    response.headers.setdefault("x-request-id", f"req_{uuid.uuid4().hex[:24]}")


def _jsonable(body: JSON | None) -> JSON | None:
    if body is None:
        return None
    return {k: v for k, v in body.items() if not isinstance(v, bytes)}


def _error(status: int, message: str, code: str | None) -> web.Response:
    return web.json_response(Fail(status, code=code, message=message).body(), status=status)


async def _fail(failure: Fail, *, delayed: bool = False) -> web.Response:
    if failure.delay and not delayed:
        await asyncio.sleep(failure.delay)
    return web.json_response(failure.body(), status=failure.status, headers=failure.headers())
