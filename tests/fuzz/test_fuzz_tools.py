"""Fuzzing tool invocation: arbitrary argument strings and objects against the built-in tools.

Whatever the model sends, `core.tools.invoke` must hand back a `ToolResult` (a clear error for
bad arguments), never let an exception escape; and afterwards a valid call still works.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.plugin import PluginServices, ToolContext
from core.tools import ToolRegistry, ToolResult, discover, invoke
from core.tools.invoke import MAX_OUTPUT_CHARS
from core.tools.registry import Tool
from tests.fuzz import fuzz_settings

# Generated cases per test (max_examples), plus each test's explicit examples.
EXAMPLES: dict[str, int] = {
    "test_arbitrary_argument_strings": 250,
    "test_arbitrary_argument_objects": 150,
    "test_arguments_shaped_like_each_tool": 200,
    "test_calculator_expressions": 300,
    "test_clock_values": 150,
    "test_deeply_nested_argument_json": 10,
}
TOTAL_EXAMPLES = sum(EXAMPLES.values())
TOOL_TIMEOUT = 5.0
TOOL_NAMES = ("calculate", "now", "date_add", "date_diff")


def fuzz(test_name: str) -> settings:
    return fuzz_settings(EXAMPLES[test_name])


REGISTRY = discover(ToolRegistry())
TOOLS: dict[str, Tool] = {name: tool for name in TOOL_NAMES if (tool := REGISTRY.get(name))}
CTX = ToolContext("U1", "Ada", False, "slack", "T1", "C1", "1.2", PluginServices())


class Invoker:
    """One event loop for the module: runs `invoke` and checks what comes back."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()

    def __call__(self, tool: Tool, arguments: str | dict[str, Any]) -> ToolResult:
        started = time.perf_counter()
        try:
            result = self.runner.run(invoke(tool, arguments, CTX, default_timeout=TOOL_TIMEOUT))
        except BaseException as exc:
            raise AssertionError(
                f"invoke let {type(exc).__name__} escape: {str(exc)[:200]}"
            ) from exc
        elapsed = time.perf_counter() - started
        assert isinstance(result, ToolResult), result
        assert isinstance(result.output, str) and result.output, result
        assert len(result.output) <= MAX_OUTPUT_CHARS + len(" … [truncated]")
        if not result.ok:
            assert result.output.startswith(("invalid arguments", "error: ", "refused")), result
        assert "timed out" not in result.output, f"{tool.name}({arguments!r:.200}) hung"
        assert elapsed < TOOL_TIMEOUT + 5, f"{tool.name} took {elapsed:.1f} s"
        return result

    def assert_valid_calls_work(self) -> None:
        assert self(TOOLS["calculate"], '{"expression": "6*7"}') == ToolResult(True, "42")
        assert self(TOOLS["date_diff"], {"start": "2026-01-01", "end": "2026-03-01"}).output == (
            "59 days (8 weeks and 3 days)"
        )
        added = self(TOOLS["date_add"], '{"date": "2026-01-31", "months": 1, "days": null}')
        assert added == ToolResult(True, "2026-02-28 (Saturday)")
        now = self(TOOLS["now"], "{}")
        assert now.ok and now.output.endswith("UTC)"), now


@pytest.fixture(scope="module")
def invoker() -> Iterator[Invoker]:
    assert set(TOOLS) == set(TOOL_NAMES), REGISTRY.names()
    run = Invoker()
    yield run
    run.runner.close()


@pytest.fixture
def call(invoker: Invoker) -> Iterator[Invoker]:
    """The invoker; after each test a valid call of every tool still works."""
    yield invoker
    invoker.assert_valid_calls_work()


# -- strategies -------------------------------------------------------------------------------

nasty_text = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("\"'\\\x00\x1b\n\t{}[]:,")),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "null", "true", "9" * 50]),
    ),
    max_size=40,
).map("".join)
big_ints = st.one_of(
    st.integers(),
    st.integers(min_value=10**18, max_value=10**300),
    st.integers(min_value=-(10**300), max_value=-(10**18)),
)
huge_numbers = big_ints | st.floats(allow_nan=True, allow_infinity=True)
json_leaves = st.one_of(st.none(), st.booleans(), huge_numbers, nasty_text)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(nasty_text, children, max_size=3)
    ),
    max_leaves=8,
)
argument_names = st.sampled_from(
    ["expression", "timezone", "date", "days", "weeks", "months", "years", "start", "end", "x"]
)


@st.composite
def broken_json(draw: st.DrawFn) -> str:
    """Argument text the model might send: truncated, spliced, non-standard or not JSON at all."""
    value = draw(st.dictionaries(argument_names, json_values, max_size=4))
    text = json.dumps(value)  # NaN and Infinity come out as bare words
    how = draw(st.sampled_from(["truncate", "splice", "single-quotes", "trailing", "prose"]))
    if how == "truncate":
        return text[: draw(st.integers(min_value=0, max_value=len(text)))]
    if how == "splice":
        at = draw(st.integers(min_value=0, max_value=len(text)))
        return (
            text[:at] + draw(st.sampled_from(["{", "}", ",", '"', "\\", "\x00", "]"])) + text[at:]
        )
    if how == "single-quotes":
        return text.replace('"', "'")
    if how == "trailing":
        return text + draw(st.sampled_from([",", "}", " {}", "\n// done"]))
    return draw(nasty_text)


argument_strings = st.one_of(
    broken_json(),
    json_values.map(json.dumps),  # valid JSON of any type
    st.builds(
        lambda key, digits: f'{{"{key}": {digits}}}',
        argument_names,
        st.sampled_from(["1" + "0" * 5000, "1e400", "-1e400", "NaN", "Infinity", "0.1e-999"]),
    ),
    st.sampled_from(["", " ", "null", "[]", "{}", '""', "0", "{,}", "{'a': 1}"]),
)


# -- properties -------------------------------------------------------------------------------


@fuzz("test_arbitrary_argument_strings")
@given(name=st.sampled_from(TOOL_NAMES), arguments=argument_strings)
def test_arbitrary_argument_strings(call: Invoker, name: str, arguments: str) -> None:
    result = call(TOOLS[name], arguments)
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        assert not result.ok and result.output.startswith("invalid arguments"), result
        return
    if not isinstance(parsed, dict):
        assert result == ToolResult(False, "invalid arguments: arguments must be a JSON object")


@fuzz("test_arbitrary_argument_objects")
@given(
    name=st.sampled_from(TOOL_NAMES),
    arguments=st.dictionaries(argument_names | nasty_text, json_values, max_size=5),
)
def test_arbitrary_argument_objects(call: Invoker, name: str, arguments: dict[str, Any]) -> None:
    result = call(TOOLS[name], arguments)
    unknown = set(arguments) - set(TOOLS[name].schema["properties"])
    if unknown:
        assert not result.ok and "Extra inputs are not permitted" in result.output, result


@st.composite
def tool_shaped_arguments(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """The right keys for one tool, each with a value of the right or a wrong type."""
    name = draw(st.sampled_from(TOOL_NAMES))
    properties = TOOLS[name].schema["properties"]
    arguments: dict[str, Any] = {}
    for key in properties:
        if draw(st.integers(0, 4)) == 0:
            continue  # sometimes missing
        right = (
            st.one_of(big_ints, st.none())
            if key in ("days", "weeks", "months", "years")
            else nasty_text | st.sampled_from(["2026-02-29", "0001-01-01", "9999-12-31"])
        )
        arguments[key] = draw(right | json_values)
    if draw(st.integers(0, 5)) == 0:
        arguments[draw(nasty_text)] = draw(json_values)  # an extra key
    return name, arguments


@fuzz("test_arguments_shaped_like_each_tool")
@given(shaped=tool_shaped_arguments(), as_text=st.booleans())
def test_arguments_shaped_like_each_tool(
    call: Invoker, shaped: tuple[str, dict[str, Any]], as_text: bool
) -> None:
    name, arguments = shaped
    call(TOOLS[name], json.dumps(arguments) if as_text else arguments)


expression_parts = st.sampled_from(
    [
        "1",
        "0",
        "2",
        "9" * 300,
        "1e308",
        "0.5",
        "-",
        "+",
        "*",
        "/",
        "//",
        "%",
        "**",
        "^",
        "×",
        "÷",
        "−",
        "(",
        ")",
        ",",
        " ",
        "pi",
        "e",
        "tau",
        "sqrt(",
        "factorial(",
        "log(",
        "exp(",
        "round(",
        "min(",
        "max(",
        "abs(",
        "asin(",
        "x",
        "__import__",
        "'a'",
        "[1]",
        "lambda",
        ".real",
        "True",
    ]
)
expressions = st.one_of(
    st.lists(expression_parts, max_size=40).map("".join),
    nasty_text,
    st.text(max_size=600),
)


@fuzz("test_calculator_expressions")
@given(expression=expressions)
@example(expression="9 ** 9 ** 9")
@example(expression="factorial(1000) * factorial(1000) * factorial(1000)")
@example(expression="-" * 490 + "1")
@example(expression="(" * 200 + "1" + ")" * 200)
def test_calculator_expressions(call: Invoker, expression: str) -> None:
    result = call(TOOLS["calculate"], {"expression": expression})
    if result.ok:
        value = result.output
        assert value in ("inf", "-inf", "nan") or any(ch.isdigit() for ch in value), value


@fuzz("test_clock_values")
@given(
    timezone=nasty_text | st.sampled_from(["Europe/Paris", "europe/paris", "../etc", "/UTC", ""]),
    date=nasty_text | st.dates().map(str),
    other=nasty_text | st.dates().map(str),
    offsets=st.tuples(*(st.none() | big_ints,) * 4),
)
def test_clock_values(
    call: Invoker, timezone: str, date: str, other: str, offsets: tuple[int | None, ...]
) -> None:
    now = call(TOOLS["now"], {"timezone": timezone})
    if not now.ok:
        assert "time zone" in now.output or now.output.startswith("error: "), now
    days, weeks, months, years = offsets
    call(
        TOOLS["date_add"],
        {"date": date, "days": days, "weeks": weeks, "months": months, "years": years},
    )
    diff = call(TOOLS["date_diff"], {"start": date, "end": other})
    if diff.ok:
        assert math.isfinite(int(diff.output.split()[0]))


@fuzz("test_deeply_nested_argument_json")
@example(name="calculate", depth=5000, closed=False)
@given(
    name=st.sampled_from(TOOL_NAMES),
    depth=st.integers(min_value=2000, max_value=100_000),
    closed=st.booleans(),
)
def test_deeply_nested_argument_json(call: Invoker, name: str, depth: int, closed: bool) -> None:
    arguments = '{"expression": ' + "[" * depth + ("]" * depth + "}" if closed else "")
    result = call(TOOLS[name], arguments)
    assert not result.ok and result.output.startswith("invalid arguments")
