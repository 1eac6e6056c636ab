"""The simulator speaks OpenAI's wire protocols: the real SDK works against it unmodified."""

from __future__ import annotations

import asyncio
import base64
import math
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from simulator import Fail, Simulator, Text, ToolCalls


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key="sk-test", base_url=sim.base_url, max_retries=0) as c:
        yield c


async def test_responses_stream_parallel_function_calls(sim: Simulator, client) -> None:
    sim.enqueue(ToolCalls.of(("add", {"a": 1, "b": 2}), ("now", {"zone": "UTC"})))
    stream = await client.responses.create(model="gpt-6-luna", input="hi", stream=True)
    calls = []
    async for event in stream:
        if event.type == "response.output_item.done" and event.item.type == "function_call":
            calls.append((event.item.name, event.item.arguments, event.item.call_id))
    assert [(n, a) for n, a, _ in calls] == [
        ("add", '{"a": 1, "b": 2}'),
        ("now", '{"zone": "UTC"}'),
    ]
    assert all(call_id.startswith("call_") for _, _, call_id in calls)


async def test_responses_non_streaming_text_and_usage(client) -> None:
    response = await client.responses.create(model="gpt-6-luna", input="hello")
    assert response.output_text == "You said: hello"
    assert response.usage is not None and response.usage.input_tokens > 0


async def test_chat_streams_tool_call_fragments_and_usage(sim: Simulator, client) -> None:
    sim.enqueue(ToolCalls.of(("lookup", {"query": "a fairly long argument value"})))
    stream = await client.chat.completions.create(
        model="gpt-6-luna",
        messages=[{"role": "user", "content": "x"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    arguments, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            for fragment in choice.delta.tool_calls or ():
                arguments += fragment.function.arguments or ""
            finish = choice.finish_reason or finish
    assert arguments == '{"query": "a fairly long argument value"}'
    assert finish == "tool_calls" and usage is not None and usage.prompt_tokens > 0


async def test_chat_structured_output_follows_the_schema(client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["summary", "tags"],
        "additionalProperties": False,
    }
    result = await client.chat.completions.create(
        model="gpt-6-luna",
        messages=[{"role": "user", "content": "x"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": schema, "strict": True},
        },
    )
    import json

    data = json.loads(result.choices[0].message.content or "")
    assert set(data) == {"summary", "tags"} and isinstance(data["tags"], list)


async def test_chat_logprobs(sim: Simulator, client) -> None:
    sim.enqueue(Text("sure", logprob=-2.5))
    result = await client.chat.completions.create(
        model="gpt-6-luna", messages=[{"role": "user", "content": "x"}], logprobs=True
    )
    assert result.choices[0].logprobs.content[0].logprob == -2.5  # type: ignore[union-attr]


async def test_rate_limit_and_quota_errors_look_like_openai(sim: Simulator, client) -> None:
    sim.fail_next("chat", Fail(429, retry_after=2))
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["retry-after"] == "2"
    sim.fail_next("chat", Fail(429, code="insufficient_quota"))
    with pytest.raises(openai.RateLimitError) as quota:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert quota.value.code == "insufficient_quota"
    assert sim.attempts["chat"] == 2


async def test_a_cut_stream_raises_in_the_sdk(sim: Simulator, client) -> None:
    sim.enqueue(Text("a" * 100, cut_after=20))
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(Exception):  # noqa: B017 - the transport's own error type
        async for _ in stream:
            pass


async def test_moderation_rules_flag_matching_input(sim: Simulator, client) -> None:
    sim.flag("attack", violence=0.93)
    result = await client.moderations.create(
        model="omni-moderation-latest", input=["plan the attack", "plan the picnic"]
    )
    assert [r.flagged for r in result.results] == [True, False]
    assert result.results[0].category_scores.violence == 0.93


async def test_embeddings_are_similarity_preserving_in_both_encodings(client) -> None:
    texts = ["the cat sat on the mat", "a cat on a mat", "quarterly revenue report"]
    floats = await client.embeddings.create(model="e", input=texts, encoding_format="float")
    packed = await client.embeddings.create(model="e", input=texts)  # the SDK asks for base64
    vectors = [d.embedding for d in floats.data]
    assert [round(x, 5) for x in packed.data[0].embedding] == [round(x, 5) for x in vectors[0]]

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.prod(
            math.sqrt(sum(v * v for v in w)) for w in (a, b)
        )

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])


async def test_transcription_and_images(client) -> None:
    result = await client.audio.transcriptions.create(
        model="gpt-transcribe", file=("clip.ogg", b"SIMTEXT:hello from a voice clip")
    )
    assert result.text == "hello from a voice clip"
    image = await client.images.generate(model="gpt-image-1", prompt="a heron")
    assert base64.b64decode(image.data[0].b64_json or "").startswith(b"\x89PNG")  # type: ignore[index]


async def test_models_carry_shutdown_dates(client) -> None:
    model = await client.models.retrieve("gpt-4o-mini")
    assert model.shutdown_date == "2027-01-14"  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("no-such-model")


async def test_conversations_keep_items_across_responses(sim: Simulator, client) -> None:
    conversation = await client.conversations.create(metadata={"platform": "slack"})
    await client.responses.create(model="m", conversation=conversation.id, input="first")
    items = await client.conversations.items.list(conversation.id, order="asc")
    assert [i.type for i in items.data] == ["message", "message"]
    sim.delete_conversation(conversation.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model="m", conversation=conversation.id, input="again")


async def test_a_wrong_key_is_refused(sim: Simulator) -> None:
    async with (
        Simulator(api_key="sk-right") as strict,
        openai.AsyncOpenAI(api_key="sk-wrong", base_url=strict.base_url, max_retries=0) as c,
    ):
        with pytest.raises(openai.AuthenticationError):
            await c.models.list()


async def test_admin_routes_script_it_from_another_process(sim: Simulator, client) -> None:
    admin = sim.base_url.removesuffix("/v1") + "/_sim"
    async with aiohttp.ClientSession() as http:
        await http.post(f"{admin}/enqueue", json=[{"kind": "text", "text": "scripted"}])
        result = await client.responses.create(model="m", input="x")
        assert result.output_text == "scripted"
        async with http.get(f"{admin}/requests") as response:
            recorded = await response.json()
    assert recorded[-1]["endpoint"] == "responses"


async def test_the_cli_serves_and_stops_cleanly() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulator",
        "--port",
        "0",
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    assert line.startswith("simulator listening on http://127.0.0.1:")
    base_url = line.split()[-1]
    async with openai.AsyncOpenAI(api_key="k", base_url=base_url, max_retries=0) as c:
        assert (await c.responses.create(model="m", input="ping")).output_text == "You said: ping"
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0
