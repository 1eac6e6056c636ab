"""Files and the Batch API through the real SDK: upload, create, poll, download, injected modes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from simulator import Fail, Simulator, Text

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key="sk-test", base_url=sim.base_url, max_retries=0) as c:
        yield c


def chat_line(custom_id: str, text: str, model: str = "gpt-6-luna") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT,
        "body": {"model": model, "messages": [{"role": "user", "content": text}]},
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


async def upload(client: openai.AsyncOpenAI, lines: list[dict[str, Any]]) -> str:
    uploaded = await client.files.create(file=("input.jsonl", jsonl(lines)), purpose="batch")
    return uploaded.id


async def download(client: openai.AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    content = await client.files.content(file_id)
    return [json.loads(line) for line in content.text.splitlines()]


async def test_files_upload_retrieve_list_content_and_delete(client) -> None:
    data = b'{"hello": "world"}\n'
    uploaded = await client.files.create(file=("input.jsonl", data), purpose="batch")
    assert (uploaded.object, uploaded.bytes, uploaded.filename) == (
        "file",
        len(data),
        "input.jsonl",
    )
    assert uploaded.purpose == "batch" and uploaded.status == "processed"
    assert (await client.files.retrieve(uploaded.id)).id == uploaded.id
    assert (await client.files.content(uploaded.id)).content == data
    listed = [f.id async for f in client.files.list(purpose="batch")]
    assert listed == [uploaded.id]
    deleted = await client.files.delete(uploaded.id)
    assert deleted.deleted and deleted.id == uploaded.id
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        await client.files.content(uploaded.id)


async def test_a_chat_batch_completes_and_its_output_parses(sim: Simulator, client) -> None:
    file_id = await upload(client, [chat_line("a", "first"), chat_line("b", "second")])
    created = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h", metadata={"job": "nightly"}
    )
    assert created.status == "validating" and created.metadata == {"job": "nightly"}
    batch = await client.batches.retrieve(created.id)
    assert batch.status == "completed"
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 2, "completed": 2, "failed": 0}
    assert batch.model == "gpt-6-luna" and batch.error_file_id is None
    assert batch.usage is not None and batch.usage.input_tokens > 0
    output = await download(client, batch.output_file_id)
    assert [line["custom_id"] for line in output] == ["a", "b"]
    assert all(line["id"].startswith("batch_req_") and line["error"] is None for line in output)
    assert output[0]["response"]["status_code"] == 200
    assert output[0]["response"]["request_id"].startswith("req_")
    body = output[0]["response"]["body"]
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "You said: first"
    output_file = await client.files.retrieve(batch.output_file_id or "")
    assert output_file.purpose == "batch_output"


async def test_a_responses_batch_runs_scripts_and_default_tools(sim: Simulator, client) -> None:
    tools = [
        {
            "type": "function",
            "name": "calculate",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
                "additionalProperties": False,
            },
        }
    ]
    lines = [
        {
            "custom_id": cid,
            "method": "POST",
            "url": RESPONSES,
            "body": {"model": "gpt-6-luna", "input": text, "tools": tools, "stream": True},
        }
        for cid, text in (("scripted", "hi"), ("maths", "what is 12*7"))
    ]
    sim.enqueue(Text("from the script"))
    batch = await client.batches.create(
        input_file_id=await upload(client, lines), endpoint=RESPONSES, completion_window="24h"
    )
    batch = await client.batches.retrieve(batch.id)
    output = {
        line["custom_id"]: line["response"]["body"]
        for line in await download(client, batch.output_file_id)
    }
    assert output["scripted"]["output"][0]["content"][0]["text"] == "from the script"
    call = output["maths"]["output"][0]
    assert (call["type"], call["name"], call["arguments"]) == (
        "function_call",
        "calculate",
        '{"expression": "12*7"}',
    )


async def test_failed_lines_go_to_the_error_file(sim: Simulator, client) -> None:
    sim.fail_batch_lines("bad-*")
    sim.enqueue(Text("fine"), Fail(503, message="overloaded"))
    lines = [chat_line("ok-1", "x"), chat_line("bad-1", "y"), chat_line("ok-2", "z")]
    batch = await client.batches.create(
        input_file_id=await upload(client, lines), endpoint=CHAT, completion_window="24h"
    )
    batch = await client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 3, "completed": 1, "failed": 2}
    [good] = await download(client, batch.output_file_id)
    assert good["custom_id"] == "ok-1"
    assert good["response"]["body"]["choices"][0]["message"]["content"] == "fine"
    errors = {line["custom_id"]: line for line in await download(client, batch.error_file_id)}
    assert errors["bad-1"]["response"]["status_code"] == 500
    assert errors["bad-1"]["response"]["body"]["error"]["type"] == "server_error"
    assert errors["ok-2"]["response"]["status_code"] == 503
    assert errors["ok-2"]["response"]["body"]["error"]["message"] == "overloaded"


async def test_fail_matching_and_fail_next_rules_apply_to_lines(sim: Simulator, client) -> None:
    lines = [chat_line("1", "one"), chat_line("2", "poison pill"), chat_line("3", "three")]
    file_id = await upload(client, lines)  # before the rule: the upload's body matches it too
    sim.fail_matching("poison", Fail(400, message="bad input"))
    sim.fail_next("chat", Fail(429))
    batch = await client.batches.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h"
    )
    batch = await client.batches.retrieve(batch.id)
    errors = {line["custom_id"]: line for line in await download(client, batch.error_file_id)}
    assert {cid: e["response"]["status_code"] for cid, e in errors.items()} == {"1": 429, "2": 400}
    assert [line["custom_id"] for line in await download(client, batch.output_file_id)] == ["3"]


async def test_hold_mode_stays_in_progress_until_finished(sim: Simulator, client) -> None:
    sim.batch_mode = "hold"
    batch = await client.batches.create(
        input_file_id=await upload(client, [chat_line("a", "x")]),
        endpoint=CHAT,
        completion_window="24h",
    )
    for _ in range(3):
        polled = await client.batches.retrieve(batch.id)
        assert polled.status == "in_progress" and polled.output_file_id is None
        assert polled.request_counts is not None and polled.request_counts.total == 1
    [finished] = await sim.finish_batches(batch.id)
    assert finished["status"] == "completed"
    polled = await client.batches.retrieve(batch.id)
    assert polled.status == "completed" and len(await download(client, polled.output_file_id)) == 1


async def test_a_held_batch_finishes_through_the_admin_route_and_can_be_cancelled(
    sim: Simulator, client
) -> None:
    admin = sim.base_url.removesuffix("/v1") + "/_sim"
    async with aiohttp.ClientSession() as http:
        await http.post(f"{admin}/config", json={"batch_mode": "hold"})
        first, second = [
            await client.batches.create(
                input_file_id=await upload(client, [chat_line("a", "x"), chat_line("b", "y")]),
                endpoint=CHAT,
                completion_window="24h",
            )
            for _ in range(2)
        ]
        async with http.post(
            f"{admin}/finish_batches", json={"id": first.id, "outcome": "expire"}
        ) as response:
            assert response.status == 200
            [finished] = await response.json()
    assert finished["status"] == "expired"
    cancelling = await client.batches.cancel(second.id)
    assert cancelling.status == "cancelling"
    cancelled = await client.batches.retrieve(second.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at
    assert cancelled.request_counts is not None
    assert cancelled.request_counts.model_dump() == {"total": 2, "completed": 0, "failed": 2}
    skipped = await download(client, cancelled.error_file_id)
    assert {line["error"]["code"] for line in skipped} == {"batch_cancelled"}
    with pytest.raises(openai.BadRequestError):
        await client.batches.cancel(second.id)


async def test_fail_mode_fails_the_batch_with_errors(client) -> None:
    async with (
        Simulator(batch_mode="fail") as failing,
        openai.AsyncOpenAI(api_key="k", base_url=failing.base_url, max_retries=0) as c,
    ):
        batch = await c.batches.create(
            input_file_id=await upload(c, [chat_line("a", "x")]),
            endpoint=CHAT,
            completion_window="24h",
        )
        batch = await c.batches.retrieve(batch.id)
    assert batch.status == "failed" and batch.failed_at
    assert batch.errors is not None and batch.errors.data
    assert batch.errors.data[0].code == "simulated_failure"
    assert batch.output_file_id is None and batch.error_file_id is None
    assert not failing.requests_to("chat")


async def test_expire_mode_keeps_partial_output(sim: Simulator, client) -> None:
    sim.batch_mode = "expire"
    lines = [chat_line(f"r{i}", f"q{i}") for i in range(5)]
    batch = await client.batches.create(
        input_file_id=await upload(client, lines), endpoint=CHAT, completion_window="24h"
    )
    batch = await client.batches.retrieve(batch.id)
    assert batch.status == "expired" and batch.expired_at
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 5, "completed": 2, "failed": 3}
    assert [line["custom_id"] for line in await download(client, batch.output_file_id)] == [
        "r0",
        "r1",
    ]
    expired = await download(client, batch.error_file_id)
    assert [line["custom_id"] for line in expired] == ["r2", "r3", "r4"]
    assert expired[0]["response"] is None
    assert expired[0]["error"]["code"] == "batch_expired"
    sim.batch_expire_after = 4
    batch = await client.batches.create(
        input_file_id=await upload(client, lines), endpoint=CHAT, completion_window="24h"
    )
    batch = await client.batches.retrieve(batch.id)
    assert batch.request_counts is not None and batch.request_counts.completed == 4


async def test_invalid_input_lines_fail_validation(client) -> None:
    wrong_url = {**chat_line("b", "x"), "url": RESPONSES}
    other_model = chat_line("d", "x", model="gpt-6-sol")
    data = jsonl([chat_line("a", "x"), wrong_url, chat_line("a", "again"), other_model])
    uploaded = await client.files.create(file=("in.jsonl", data + b"not json\n"), purpose="batch")
    batch = await client.batches.create(
        input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h"
    )
    batch = await client.batches.retrieve(batch.id)
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data
    assert [(e.code, e.line) for e in batch.errors.data] == [
        ("mismatched_endpoint", 2),
        ("duplicate_custom_id", 3),
        ("mismatched_model", 4),
        ("invalid_json_line", 5),
    ]


async def test_bad_create_requests_are_refused(client) -> None:
    with pytest.raises(openai.NotFoundError):
        await client.batches.create(
            input_file_id="file-missing", endpoint=CHAT, completion_window="24h"
        )
    file_id = await upload(client, [chat_line("a", "x")])
    with pytest.raises(openai.BadRequestError):
        await client.batches.create(
            input_file_id=file_id,
            endpoint="/v1/completions",
            completion_window="24h",
        )
    assistants = await client.files.create(file=("a.jsonl", b"{}"), purpose="assistants")
    with pytest.raises(openai.BadRequestError):
        await client.batches.create(
            input_file_id=assistants.id, endpoint=CHAT, completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        await client.batches.retrieve("batch_missing")


async def test_batches_list_newest_first_across_pages(client) -> None:
    ids = []
    for index in range(3):
        batch = await client.batches.create(
            input_file_id=await upload(client, [chat_line("a", str(index))]),
            endpoint=CHAT,
            completion_window="24h",
        )
        ids.append(batch.id)
    first_page = await client.batches.list(limit=2)
    assert [b.id for b in first_page.data] == ids[::-1][:2] and first_page.has_more
    assert [b.id async for b in client.batches.list(limit=2)] == ids[::-1]


async def test_line_failures_and_expiry_are_scriptable_from_another_process(
    sim: Simulator, client
) -> None:
    admin = sim.base_url.removesuffix("/v1") + "/_sim"
    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{admin}/fail_batch_lines",
            json={"pattern": "flaky-?", "step": {"status": 502, "message": "bad gateway"}},
        )
        await http.post(f"{admin}/config", json={"batch_mode": "expire", "batch_expire_after": 2})
    lines = [chat_line("flaky-1", "x"), chat_line("steady", "y"), chat_line("late", "z")]
    batch = await client.batches.create(
        input_file_id=await upload(client, lines), endpoint=CHAT, completion_window="24h"
    )
    batch = await client.batches.retrieve(batch.id)
    assert batch.status == "expired"
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 3, "completed": 1, "failed": 2}
    errors = {line["custom_id"]: line for line in await download(client, batch.error_file_id)}
    assert errors["flaky-1"]["response"]["status_code"] == 502
    assert errors["late"]["error"]["code"] == "batch_expired"
    sim.reset()
    sim.batch_mode = "complete"
    batch = await client.batches.create(
        input_file_id=await upload(client, lines), endpoint=CHAT, completion_window="24h"
    )
    batch = await client.batches.retrieve(batch.id)
    assert batch.request_counts is not None and batch.request_counts.failed == 0, "reset clears"
