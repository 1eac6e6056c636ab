"""A plugin that cannot be imported or registered stops discovery with one line naming the
plugin, the function and the fix: entry points (fake `EntryPoint`s and a real dist-info folder)
and modules of the plugins package."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import uuid
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from core.tools import ToolDefinitionError, ToolRegistry, discover
from core.tools.discovery import TOOL_KEYWORDS

GROUP = "parley.plugins"


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Write a module (or a package of modules) under tmp_path, importable; returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str | dict[str, str], prefix: str = "plug") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        if isinstance(source, str):
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        else:
            (tmp_path / name).mkdir()
            (tmp_path / name / "__init__.py").write_text("")
            for filename, text in source.items():
                (tmp_path / name / filename).write_text(textwrap.dedent(text))
        return name

    return write


def _failure(entries: list[EntryPoint], package: str) -> str:
    with pytest.raises(ToolDefinitionError) as caught:
        discover(ToolRegistry(), package=package, entries=entries)
    message = str(caught.value)
    assert "\n" not in message, "one line"
    assert "Traceback" not in message
    return message


@pytest.fixture
def empty(code) -> str:  # type: ignore[no-untyped-def]
    """An empty plugins package, so only the entry points under test are discovered."""
    return str(code({}, prefix="emptypkg"))


WEATHER = """
    from core.plugin import tool


    @tool(timeout=5)
    def ok(city: str) -> str:
        '''Fine.'''
        return city


    @tool({options})
    async def get_forecast(city: str) -> str:
        '''Weather forecast for a city.'''
        return city
"""


def test_an_unknown_tool_keyword_names_the_plugin_function_and_the_accepted_ones(
    code, empty
) -> None:
    module = code(WEATHER.format(options="retries=3"))
    message = _failure([EntryPoint("weather", module, GROUP)], empty)
    assert message == (
        "plugin weather: get_forecast(): @tool() got an unexpected keyword 'retries'; "
        "accepted: name, admin_only, timeout, slash, approval"
    )
    assert TOOL_KEYWORDS == ["name", "admin_only", "timeout", "slash", "approval"]


def test_a_misspelt_keyword_gets_a_suggestion(code, empty) -> None:
    module = code(WEATHER.format(options="timout=5"))
    message = _failure([EntryPoint("weather", module, GROUP)], empty)
    assert message.startswith(
        "plugin weather: get_forecast(): @tool() got an unexpected keyword 'timout' "
        "(did you mean timeout?); accepted:"
    )


def test_a_positional_tool_name_is_explained(code, empty) -> None:
    module = code(WEATHER.format(options="'forecast'"))
    message = _failure([EntryPoint("weather", module, GROUP)], empty)
    assert message.startswith(
        "plugin weather: get_forecast(): @tool() takes keywords only, "
        "e.g. @tool(name='get_forecast')"
    )


def test_a_signature_that_cannot_be_strict_names_the_entry_point(code, empty) -> None:
    module = code(
        """
        from core.plugin import tool

        @tool
        def get_forecast(scores: dict[str, int]) -> str:
            '''Forecast.'''
            return ""
        """
    )
    message = _failure([EntryPoint("weather", module, GROUP)], empty)
    assert message.startswith("plugin weather: get_forecast(): parameter 'scores': ")
    assert "use a model with named fields" in message


def test_an_entry_point_at_a_function_with_an_untyped_parameter(code, empty) -> None:
    module = code("def get_forecast(city):\n    '''Forecast.'''\n    return city\n")
    message = _failure([EntryPoint("weather", f"{module}:get_forecast", GROUP)], empty)
    assert message.startswith("plugin weather: get_forecast(): parameter 'city': ")
    assert "add one (e.g. `city: str`)" in message


def test_a_parameter_type_pydantic_cannot_handle(code, empty) -> None:
    module = code(
        """
        from core.plugin import tool

        class Place:
            pass

        @tool(name="forecast")
        def get_forecast(place: Place) -> str:
            '''Forecast.'''
            return ""
        """
    )
    message = _failure([EntryPoint("weather", module, GROUP)], empty)
    assert message.startswith("plugin weather: get_forecast() (tool forecast): cannot be made")
    assert "give every parameter a plain type" in message


def test_an_invalid_tool_name_is_one_clean_line(code, empty) -> None:
    module = code(WEATHER.format(options="name='has spaces'"))
    message = _failure([EntryPoint("weather", module, GROUP)], empty)
    assert message.startswith("plugin weather: get_forecast() (tool has spaces): names must match")


def test_an_entry_point_at_a_missing_attribute(code, empty) -> None:
    module = code("X = 1\n")
    message = _failure([EntryPoint("weather", f"{module}:nothing", GROUP)], empty)
    assert message.startswith(f"plugin weather ({module}:nothing) failed to load: AttributeError")
    assert "correct the entry point in group parley.plugins" in message


def test_a_missing_dependency_says_what_to_install(code, empty, tmp_path: Path) -> None:
    module = code("import os\nimport weather_sdk_not_installed\n")
    message = _failure([EntryPoint("weather", module, GROUP)], empty)
    assert message == (
        f"plugin weather ({module}) failed to load ({tmp_path / module}.py:2): "
        "ModuleNotFoundError: No module named 'weather_sdk_not_installed'; "
        "install weather_sdk_not_installed, or uninstall its package"
    )


def test_a_plugin_that_is_not_a_function(code, empty) -> None:
    module = code("forecast = 42\n")
    message = _failure([EntryPoint("weather", f"{module}:forecast", GROUP)], empty)
    assert message.startswith("plugin weather: 42 is not a function")


def test_a_module_of_the_plugins_package_with_a_bad_decorator(code) -> None:
    package = code({"weather.py": WEATHER.format(options="retries=3")}, prefix="pkg")
    message = _failure([], package)
    assert message.startswith(
        f"plugin {package}.weather: get_forecast(): @tool() got an unexpected keyword 'retries'"
    )


def test_a_syntax_error_names_the_line(code, tmp_path: Path) -> None:
    package = code({"broken.py": "def f(:\n    pass\n"}, prefix="pkg")
    message = _failure([], package)
    assert message.startswith(
        f"plugin {package}.broken failed to import ({tmp_path / package / 'broken.py'}:1): "
        "SyntaxError"
    )
    assert message.endswith("fix the syntax error, or remove it")


def test_an_installed_distribution_is_named_in_the_fix(
    code, empty, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through importlib.metadata itself: a dist-info folder on sys.path with an entry point."""
    module = code("raise RuntimeError('PLUGIN_WEATHER_KEY is not set')\n")
    group = f"parley.test.{uuid.uuid4().hex[:8]}"
    dist = tmp_path / "weather_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: weather-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\nweather = {module}\n")
    with pytest.raises(ToolDefinitionError) as caught:
        discover(ToolRegistry(), package=empty, group=group)
    assert str(caught.value) == (
        f"plugin weather ({module}) failed to load ({tmp_path / module}.py:1): RuntimeError: "
        "PLUGIN_WEATHER_KEY is not set; fix the plugin, or uninstall weather-plugin"
    )


def test_good_plugins_still_register(code, empty) -> None:
    module = code(WEATHER.format(options="admin_only=True"))
    registry = discover(ToolRegistry(), package=empty, entries=[EntryPoint("w", module, GROUP)])
    assert registry.names() == ["get_forecast", "ok"]
    assert {tool.plugin for tool in registry} == {"w"}, "named after the entry point"
    assert registry.get("get_forecast").admin_only  # type: ignore[union-attr]


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.xfail(
    strict=True,
    reason="until bots/services.py discovers plugins before it opens the store (see the report)",
)
async def test_the_server_prints_one_line_and_exits_instead_of_hanging(tmp_path: Path) -> None:
    (tmp_path / "weather_broken.py").write_text(
        textwrap.dedent(WEATHER.format(options="retries=1"))
    )
    dist = tmp_path / "weather_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: weather-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[parley.plugins]\nweather = weather_broken\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))}
    env.update(
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
        OPENAI_API_KEY="sk-test-key-0123456789",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        PORT="0",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots",
        "web",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = await asyncio.wait_for(process.stderr.readline(), 120)  # start-up on a busy machine
        assert line.decode().strip() == (
            "error: plugin weather: get_forecast(): @tool() got an unexpected keyword 'retries'; "
            "accepted: name, admin_only, timeout, slash, approval"
        )
        try:  # the error is printed: now it must leave, not hang on open connections
            code = await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            pytest.fail("python -m bots web hung after printing the plugin error")
        assert code == 2
        assert await process.stderr.read() == b"", "one line, no traceback"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
