"""Start-up failures end the process with one line and a non-zero status, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.store import StoreError
from core.store.sqlite import SqliteDatabase

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))
    }
    clean.update({"PYTHONPATH": str(ROOT), **env})
    return subprocess.run(
        [sys.executable, "-m", "bots", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite:////"])
def test_a_database_url_without_a_file_is_one_line(url: str, tmp_path: Path) -> None:
    result = _run("migrate", DATABASE_URL=url)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: invalid setting DATABASE_URL: name the database file, e.g. sqlite:///data/bot.db"
    ]


def test_a_folder_as_the_database_is_one_line_without_a_thread_traceback(tmp_path: Path) -> None:
    result = _run("migrate", DATABASE_URL=f"sqlite:///{tmp_path}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a folder, not a database file" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


async def test_a_read_only_folder_is_refused_before_any_connection_thread_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root may write anywhere, so the folder's permission is simulated where it is checked.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    db = SqliteDatabase(tmp_path / "ro" / "bot.db")
    with pytest.raises(StoreError, match="is not writable"):
        await db.open()


def test_version_matches_the_package() -> None:
    from importlib import metadata

    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"parley {metadata.version('parley')}"


def test_every_subcommand_has_a_description_naming_its_settings() -> None:
    from bots.cli import SUBCOMMANDS, build_parser

    parser = build_parser()
    for name in SUBCOMMANDS:
        text = _run(name, "--help").stdout if name == "migrate" else ""
        assert name in parser.format_help()
        if text:
            assert "Reads: DATABASE_URL" in text


@pytest.mark.parametrize("command", ["worker", "discord-sync", "run"])
def test_discord_unreachable_is_one_line(command: str, tmp_path: Path) -> None:
    result = _run(
        command,
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        DISCORD_TOKEN="abc.def.ghi",
        DISCORD_API_URL="http://127.0.0.1:1/api/v10",
        MODERATION_ENABLED="false",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        LOG_LEVEL="error",
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: Discord is unreachable at http://127.0.0.1:1/api/v10 (ClientConnectorError): "
        "check DISCORD_API_URL and the network"
    )
