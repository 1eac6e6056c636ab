"""Settings errors are one line without values; logs never carry a secret."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from bots.settings import load_app_settings
from core.logging import configure_logging
from core.settings import SettingsError

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))
    }
    clean.update(env)
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bots", *args],
        env=clean,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_malformed_setting_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = _run(["migrate"], {"OPENAI_WIRE_API": "grpc", "PORT": "not-a-port"}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "OPENAI_WIRE_API" in lines[0] and "PORT" in lines[0]
    assert "Traceback" not in result.stderr and "grpc" not in result.stderr


def test_a_secret_in_a_bad_setting_is_never_echoed(tmp_path: Path) -> None:
    bad = "postgres://user:hunter2secret@db:port/x"
    result = _run(["migrate"], {"DATABASE_URL": bad}, tmp_path)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "hunter2secret" not in result.stderr
    unreachable = _run(
        ["migrate"], {"DATABASE_URL": "postgres://user:hunter2secret@db/x"}, tmp_path
    )
    assert unreachable.returncode == 2 and "cannot reach PostgreSQL at postgresql://user@db/x" in (
        unreachable.stderr
    )
    assert "hunter2secret" not in unreachable.stderr


def test_console_without_a_model_says_what_to_set(tmp_path: Path) -> None:
    result = _run(["console"], {"DATABASE_URL": f"sqlite:///{tmp_path}/b.db"}, tmp_path)
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr and "--offline" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrate_twice_is_idempotent(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/b.db"
    else:  # with a password in the URL, which must not be printed
        url = request.getfixturevalue("postgres_url").replace("postgres@", "postgres:pw-XYZ@")
    env = {"DATABASE_URL": url}
    first = _run(["migrate"], env, tmp_path)
    assert "applied [1, " in first.stdout and "pw-XYZ" not in first.stdout + first.stderr
    assert "applied none" in _run(["migrate"], env, tmp_path).stdout


def test_help_lists_the_contract_commands(tmp_path: Path) -> None:
    out = _run(["--help"], {}, tmp_path).stdout
    for command in ("run", "web", "worker", "console", "migrate"):
        assert command in out


def test_wire_api_auto_picks_responses_only_for_openai() -> None:
    assert load_app_settings(_env_file=None).openai.wire == "responses"
    openai_url = load_app_settings(_env_file=None, openai_base_url="https://api.openai.com/v1")
    assert openai_url.openai.wire == "responses"
    local = load_app_settings(_env_file=None, openai_base_url="http://127.0.0.1:11434/v1")
    assert local.openai.wire == "chat"


def test_logs_redact_configured_secrets_and_token_shapes() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", ["my-signing-secret-123"], stream=stream)
    log = structlog.get_logger("test")
    log.info("oops", detail="value my-signing-secret-123 leaked", header="Bearer abcdefghijkl")
    log.error(
        "boom", error=ValueError("xoxb-1234-5678-abcdefgh"), nested={"k": ["sk-abcdefghij12"]}
    )
    text = stream.getvalue()
    assert "my-signing-secret-123" not in text
    assert "abcdefghijkl" not in text and "xoxb-1234" not in text and "sk-abcdefghij12" not in text
    assert all(json.loads(line) for line in text.splitlines())


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "MODEL_PRICES",
            "{bad",
            'MODEL_PRICES: not valid JSON; expected JSON {"model": [input, cached_input, output]}',
        ),
        (
            "MODEL_CONTEXT_WINDOWS",
            "[1,",
            'MODEL_CONTEXT_WINDOWS: not valid JSON; expected JSON {"model": tokens}',
        ),
        ("MODERATION_POLICY", "{", 'MODERATION_POLICY: not valid JSON; expected JSON {"category"'),
        (
            "SLACK_COMMANDS",
            "nope",
            'SLACK_COMMANDS: not valid JSON; expected JSON {"/slash-command"',
        ),
        ("MODEL_PRICES", '{"gpt-x": 5}', "MODEL_PRICES: gpt-x: Input should be a valid tuple"),
        ("DISCORD_SHARD_IDS", "a,b", "DISCORD_SHARD_IDS: Input should be a valid integer"),
    ],
)
def test_malformed_settings_are_one_line_naming_the_setting_and_shape(
    name: str, value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_app_settings(_env_file=None)
    message = str(caught.value)
    assert "\n" not in message and expected in message, message
    assert message.count(name) == 1, "each bad setting is named once"
    assert value not in message or len(value) < 3


def test_a_malformed_setting_at_start_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "MODEL_PRICES": "{bad",
            "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "bots", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
