"""Unscripted tool use: arithmetic calls `calculate`, time asks call `now`, results become text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from core.tools.registry import build_tool
from plugins import calculator, clock
from simulator import Simulator, Text, ToolCalls
from simulator.default_tools import arithmetic_in, asks_for_time

CALCULATE = build_tool(calculator.calculate, plugin="calculator")
NOW = build_tool(clock.now, plugin="clock")


def responses_tool(tool: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.schema,
        "strict": True,
    }


def chat_tool(tool: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.schema,
            "strict": True,
        },
    }


RESPONSES_TOOLS = [responses_tool(CALCULATE), responses_tool(NOW)]
CHAT_TOOLS = [chat_tool(CALCULATE), chat_tool(NOW)]


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key="sk-test", base_url=sim.base_url, max_retries=0) as c:
        yield c


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("what is 12*7", "12*7"),
        ("What's 12 times 7?", "12 * 7"),
        ("calculate (3+4)/2", "(3+4)/2"),
        ("2^10", "2^10"),
        ("compute sqrt(16) + 1", "sqrt(16) + 1"),
        ("what is max(3, 4) * 2, please", "max(3, 4) * 2"),
        ("what is 2+2?", "2+2"),
    ],
)
def test_arithmetic_asks_are_recognised(text: str, expression: str) -> None:
    assert arithmetic_in(text) == expression


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "are you still there 3?",
        "what is the plan for today?",
        "call me at 555-1234",
        "what is 3 apples",
        "42",
        "what is pi",
        "my name is Ada",
    ],
)
def test_other_messages_are_not_arithmetic(text: str) -> None:
    assert arithmetic_in(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("what time is it", (True, None)),
        ("what's the date today?", (True, None)),
        ("time in Tokyo", (True, "Asia/Tokyo")),
        ("What time is it in New York?", (True, "America/New_York")),
        ("what day is it in Europe/Madrid", (True, "Europe/Madrid")),
        ("what is the plan for today?", (False, None)),
        ("spend some time in the garden", (False, None)),
        ("remind me at noon", (False, None)),
    ],
)
def test_time_asks_are_recognised(text: str, expected: tuple[bool, str | None]) -> None:
    assert asks_for_time(text) == expected


async def test_responses_arithmetic_round_trip_non_streaming(client) -> None:
    first = await client.responses.create(
        model="gpt-6-luna", input="what is 12*7", tools=RESPONSES_TOOLS
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "calculate"
    assert json.loads(call.arguments) == {"expression": "12*7"}
    output = calculator.calculate(**json.loads(call.arguments))
    second = await client.responses.create(
        model="gpt-6-luna",
        input=[
            {"role": "user", "content": "what is 12*7"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": output},
        ],
        tools=RESPONSES_TOOLS,
    )
    assert second.output_text == "The result is 84."


async def test_responses_streams_the_default_call_as_argument_events(client) -> None:
    stream = await client.responses.create(
        model="gpt-6-luna", input="calculate (3+4)/2", tools=RESPONSES_TOOLS, stream=True
    )
    deltas, done, items = "", None, []
    async for event in stream:
        if event.type == "response.function_call_arguments.delta":
            deltas += event.delta
        elif event.type == "response.function_call_arguments.done":
            done = event.arguments
        elif event.type == "response.output_item.done":
            items.append(event.item)
    assert deltas == done == json.dumps({"expression": "(3+4)/2"})
    assert [(i.type, i.name) for i in items] == [("function_call", "calculate")]


async def test_chat_arithmetic_round_trip_streaming(client) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "2^10"}]
    stream = await client.chat.completions.create(
        model="gpt-6-luna", messages=messages, tools=CHAT_TOOLS, stream=True
    )
    call_id, name, arguments, finish = "", "", "", None
    async for chunk in stream:
        for choice in chunk.choices:
            for fragment in choice.delta.tool_calls or ():
                call_id = fragment.id or call_id
                name = (fragment.function and fragment.function.name) or name
                arguments += (fragment.function and fragment.function.arguments) or ""
            finish = choice.finish_reason or finish
    assert (name, json.loads(arguments), finish) == (
        "calculate",
        {"expression": "2^10"},
        "tool_calls",
    )
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": calculator.calculate("2^10")},
    ]
    answer = await client.chat.completions.create(
        model="gpt-6-luna", messages=messages, tools=CHAT_TOOLS
    )
    assert answer.choices[0].message.content == "The result is 1024."
    assert answer.choices[0].finish_reason == "stop"


async def test_chat_time_ask_calls_now_with_a_null_zone_or_a_named_one(client) -> None:
    plain = await client.chat.completions.create(
        model="gpt-6-luna",
        messages=[{"role": "user", "content": "what time is it?"}],
        tools=CHAT_TOOLS,
    )
    [call] = plain.choices[0].message.tool_calls or []
    assert call.function.name == "now"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"timezone": None}  # type: ignore[union-attr]
    assert plain.choices[0].finish_reason == "tool_calls"
    tokyo = await client.chat.completions.create(
        model="gpt-6-luna",
        messages=[{"role": "user", "content": "time in Tokyo"}],
        tools=CHAT_TOOLS,
    )
    [call] = tokyo.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"timezone": "Asia/Tokyo"}  # type: ignore[union-attr]


async def test_responses_time_answer_uses_the_tool_output(client) -> None:
    first = await client.responses.create(
        model="m", input="what's the date today in London?", tools=RESPONSES_TOOLS
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert (call.name, json.loads(call.arguments)) == ("now", {"timezone": "Europe/London"})
    second = await client.responses.create(
        model="m",
        input=[
            {"role": "user", "content": "what's the date today in London?"},
            {"type": "function_call", "call_id": call.call_id, "name": "now", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": "2030-05-01T10:00:00+01:00 (Wednesday, Europe/London)",
            },
        ],
    )
    assert second.output_text == "It is 2030-05-01T10:00:00+01:00 (Wednesday, Europe/London)."


async def test_the_declared_schema_decides_the_argument_names(client) -> None:
    custom = {
        "type": "function",
        "name": "calculate",
        "parameters": {
            "type": "object",
            "properties": {"formula": {"type": "string"}, "precision": {"type": "integer"}},
            "required": ["formula", "precision"],
            "additionalProperties": False,
        },
    }
    clock_without_zone = {
        "type": "function",
        "name": "now",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    }
    maths = await client.responses.create(model="m", input="what is 6 * 7", tools=[custom])
    assert json.loads(maths.output[0].arguments) == {"formula": "6 * 7", "precision": 0}  # type: ignore[union-attr]
    time_ask = await client.responses.create(
        model="m", input="what time is it", tools=[clock_without_zone]
    )
    assert json.loads(time_ask.output[0].arguments) == {}  # type: ignore[union-attr]


async def test_only_offered_tools_are_called(sim: Simulator, client) -> None:
    only_clock = [responses_tool(NOW)]
    maths = await client.responses.create(model="m", input="what is 12*7", tools=only_clock)
    assert maths.output_text == "You said: what is 12*7"
    no_tools = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "what time is it"}]
    )
    assert no_tools.choices[0].message.content == "You said: what time is it"
    refused = await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "what is 12*7"}],
        tools=CHAT_TOOLS,
        tool_choice="none",
    )
    assert refused.choices[0].message.content == "You said: what is 12*7"
    chatter = await client.responses.create(model="m", input="hello there", tools=RESPONSES_TOOLS)
    assert chatter.output_text == "You said: hello there"


async def test_scripts_win_and_the_default_can_be_switched_off(sim: Simulator, client) -> None:
    sim.enqueue(ToolCalls.of(("now", {"timezone": "UTC"})), Text("scripted"))
    scripted = await client.responses.create(model="m", input="what is 1+1", tools=RESPONSES_TOOLS)
    assert scripted.output[0].name == "now"  # type: ignore[union-attr]
    assert (await client.responses.create(model="m", input="what is 1+1")).output_text == "scripted"
    async with (
        Simulator(default_tools=False) as plain,
        openai.AsyncOpenAI(api_key="k", base_url=plain.base_url, max_retries=0) as c,
    ):
        echoed = await c.responses.create(model="m", input="what is 1+1", tools=RESPONSES_TOOLS)
        assert echoed.output_text == "You said: what is 1+1"


async def test_a_conversation_holding_the_call_answers_from_the_result(
    sim: Simulator, client
) -> None:
    conversation = await client.conversations.create()
    first = await client.responses.create(
        model="m", conversation=conversation.id, input="what is 6*7?", tools=RESPONSES_TOOLS
    )
    call = first.output[0]
    assert call.type == "function_call"
    second = await client.responses.create(
        model="m",
        conversation=conversation.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "42"}],
        tools=RESPONSES_TOOLS,
    )
    assert second.output_text == "The result is 42."


async def test_tool_errors_are_reported_in_the_answer(client) -> None:
    answer = await client.chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": "what is 1/0"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "calculate", "arguments": '{"expression": "1/0"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "error: division by zero"},
        ],
        tools=CHAT_TOOLS,
    )
    assert answer.choices[0].message.content == "The calculate tool failed: error: division by zero"
