"""Running tools: validation, defaults, permissions, threads, timeouts, failures, files."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.events import OutboundFile
from core.plugin import PluginServices, ToolContext, ToolError, tool
from core.tools import ToolRegistry, invoke
from core.tools.slash import (
    UsageError,
    list_tools,
    parse_slash,
    slash_arguments,
    suggest,
    usage_line,
)


def _ctx(admin: bool = False, send_file=None) -> ToolContext:  # type: ignore[no-untyped-def]
    return ToolContext(
        "u1", "Ada", admin, "console", "w", "c", "t", PluginServices(send_file=send_file)
    )


def repeat(text: str, times: int = 2) -> str:
    """Repeat text.

    Args:
        text: what to repeat
        times: how often
    """
    return text * times


async def test_good_arguments_and_defaults_for_nulls() -> None:
    registry = ToolRegistry()
    t = registry.add(repeat, plugin="tests")
    assert (
        await invoke(t, '{"text": "ab", "times": null}', _ctx(), default_timeout=5)
    ).output == "abab"
    assert (await invoke(t, {"text": "x", "times": 3}, _ctx(), default_timeout=5)).output == "xxx"


async def test_invalid_json_and_invalid_values_come_back_as_clear_errors() -> None:
    t = ToolRegistry().add(repeat, plugin="tests")
    broken = await invoke(t, '{"text": ', _ctx(), default_timeout=5)
    assert not broken.ok and "not valid JSON" in broken.output
    wrong = await invoke(t, '{"text": "a", "times": "many", "extra": 1}', _ctx(), default_timeout=5)
    assert not wrong.ok
    assert "times: Input should be a valid integer" in wrong.output
    assert "extra: Extra inputs are not permitted" in wrong.output


async def test_admin_only_tools_refuse_others_without_running() -> None:
    ran = []

    @tool(admin_only=True)
    def purge(channel: str) -> str:
        """Delete everything."""
        ran.append(channel)
        return "purged"

    t = ToolRegistry().add(purge, plugin="tests")
    refused = await invoke(t, {"channel": "c"}, _ctx(admin=False), default_timeout=5)
    assert not refused.ok and "admins" in refused.output and ran == []
    assert (
        await invoke(t, {"channel": "c"}, _ctx(admin=True), default_timeout=5)
    ).output == "purged"


async def test_sync_tools_run_off_the_event_loop() -> None:
    def where() -> str:
        """Which thread runs me."""
        return threading.current_thread().name

    t = ToolRegistry().add(where, plugin="tests")
    result = await invoke(t, {}, _ctx(), default_timeout=5)
    assert result.output != threading.current_thread().name


async def test_timeouts_and_exceptions_become_results() -> None:
    @tool(timeout=0.05)
    async def slow() -> str:
        """Never finishes in time."""
        await asyncio.Event().wait()
        return ""

    def boom() -> str:
        """Raises."""
        raise RuntimeError("disk on fire")

    def expected() -> str:
        """Raises a tool error."""
        raise ToolError("no such customer")

    registry = ToolRegistry()
    assert (await invoke(registry.add(slow, plugin="t"), {}, _ctx(), default_timeout=5)).output == (
        "error: slow timed out after 0.05 s"
    )
    assert (await invoke(registry.add(boom, plugin="t"), {}, _ctx(), default_timeout=5)).output == (
        "error: RuntimeError: disk on fire"
    )
    assert (
        await invoke(registry.add(expected, plugin="t"), {}, _ctx(), default_timeout=5)
    ).output == ("error: no such customer")


async def test_files_are_handed_to_the_adapter() -> None:
    sent: list[OutboundFile] = []

    async def send(file: OutboundFile) -> None:
        sent.append(file)

    def draw() -> OutboundFile:
        """Draw a picture."""
        return OutboundFile("a.png", "image/png", b"png")

    result = await invoke(
        ToolRegistry().add(draw, plugin="t"), {}, _ctx(send_file=send), default_timeout=5
    )
    assert result.output == "sent file a.png" and [f.name for f in sent] == ["a.png"]


def test_slash_parsing_quoting_and_usage() -> None:
    t = ToolRegistry().add(repeat, plugin="tests")
    name, words = parse_slash('repeat text="hello world" times=3')
    assert name == "repeat" and slash_arguments(t, words) == {"text": "hello world", "times": "3"}
    assert slash_arguments(t, ["solo"]) == {"text": "solo"}, "one required parameter: positional"
    with pytest.raises(UsageError) as missing:
        slash_arguments(t, ["times=3"])
    assert "missing text" in str(missing.value)
    assert usage_line(t) == "usage: /tool repeat text=<string> [times=<integer>] — Repeat text"
    with pytest.raises(UsageError, match="check the quotes"):
        parse_slash('repeat text="unterminated')
    with pytest.raises(UsageError, match="control characters"):
        parse_slash("repeat text=\x1b[31m")
    assert "Did you mean repeat" in suggest("repaet", ["repeat", "calculate"])
    assert list_tools([t]) == "repeat — Repeat text"


def test_plugin_config_reads_prefixed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic_settings import SettingsConfigDict

    from core.plugin import PluginConfig

    class WeatherConfig(PluginConfig):
        model_config = SettingsConfigDict(env_prefix="PLUGIN_WEATHER_", env_file=None)
        api_url: str = "https://weather.example"
        days: int = 3

    monkeypatch.setenv("PLUGIN_WEATHER_DAYS", "5")
    config = WeatherConfig()
    assert (config.api_url, config.days) == ("https://weather.example", 5)
