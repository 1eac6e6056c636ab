"""The container's install and start steps, without a container engine: the Dockerfile's script
installs parley into a fresh virtual environment, and `parley web` started from it answers
/healthz on SQLite. (One full install from the package index: about a minute.)"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "container-install.sh"

pytestmark = pytest.mark.container


def test_the_dockerfile_runs_the_install_script_and_the_procfile_commands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert "container-install deps" in dockerfile and "container-install app" in dockerfile
    assert dockerfile.index("COPY pyproject.toml") < dockerfile.index("COPY . .")
    assert re.search(r"^USER parley$", dockerfile, re.MULTILINE)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert 'ENTRYPOINT ["parley"]' in dockerfile and 'CMD ["web"]' in dockerfile
    procfile = (ROOT / "Procfile").read_text("utf-8")
    assert "python -m bots web" in procfile and "python -m bots worker" in procfile
    compose = (ROOT / "compose.yaml").read_text("utf-8")
    assert all(f"\n  {service}:" in compose for service in ("db", "web", "worker", "bot"))


def _install(venv: Path, env: dict[str, str]) -> str:
    """Create the venv and run the image's two install steps into it; the script's last output."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    for step in ("deps", "app"):
        installed = subprocess.run(
            ["sh", str(SCRIPT), step, str(ROOT), str(venv)],
            env={**env, "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert installed.returncode == 0, installed.stderr[-3000:]
    return installed.stdout


async def test_the_install_script_builds_a_venv_that_serves_healthz(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    printed = await asyncio.to_thread(_install, venv, env)
    assert printed.strip().startswith("parley ")

    process = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "parley"),
        "web",
        cwd=tmp_path,  # not the source tree: the installed package must be complete
        env={
            **{k: v for k, v in env.items() if not k.startswith(("OPENAI", "SLACK", "DISCORD"))},
            "PORT": "0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'bot.db'}",
            "LOG_FORMAT": "json",
            "MODERATION_ENABLED": "false",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        port = await asyncio.wait_for(_listening_port(process), 60)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            body = await response.json()
        assert response.status == 200
        assert body == {"status": "ok", "database": "ok", "backend": "sqlite"}
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def _listening_port(process: asyncio.subprocess.Process) -> int:
    """The port from the `http_listening` log line (PORT=0 picks a free one)."""
    assert process.stdout is not None
    seen = []
    async for line in process.stdout:
        text = line.decode(errors="replace")
        seen.append(text)
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if record.get("event") == "http_listening":
            return int(record["port"])
    raise AssertionError("parley web ended without listening:\n" + "".join(seen))
