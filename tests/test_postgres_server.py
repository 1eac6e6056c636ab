"""The throw-away PostgreSQL server of tests/postgres.py and its fixtures."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import postgres
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]


def psql(url: str, sql: str) -> str:
    """Run SQL through the psql binary, as any client would."""
    command = [postgres.find_psql(postgres.find_pg_bin()), "-X", "-A", "-t", url, "-c", sql]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_fixture_database_accepts_connections_over_loopback(postgres_url: str) -> None:
    dbname = urlsplit(postgres_url).path.lstrip("/")
    assert psql(postgres_url, "select current_database(), 1") == f"{dbname}|1"
    if urlsplit(postgres_url).hostname == "127.0.0.1":
        assert psql(postgres_url, "select inet_server_addr()") == "127.0.0.1"


async def test_asyncpg_connects_to_the_fixture_database(postgres_url: str) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


def test_created_databases_are_distinct_and_empty(postgres_server: PostgresServer) -> None:
    first, second = postgres_server.create_database(), postgres_server.create_database()
    try:
        assert first != second
        user_tables = "select count(*) from pg_class where relnamespace = 'public'::regnamespace"
        psql(first, "create table t (x int); insert into t values (1)")
        assert psql(first, user_tables) == "1"
        assert psql(second, user_tables) == "0"
    finally:
        postgres_server.drop_database(first)
        postgres_server.drop_database(second)
    exists = "select count(*) from pg_database where datname = '{}'"
    assert psql(postgres_server.url(), exists.format(urlsplit(first).path[1:])) == "0"


def test_a_named_database_and_an_existing_server(postgres_server: PostgresServer) -> None:
    wrapped = PostgresServer.existing(postgres_server.url())
    url = wrapped.create_database("named_db")
    try:
        assert url == postgres_server.url("named_db")
        assert psql(url, "select current_database()") == "named_db"
    finally:
        wrapped.drop_database("named_db")
    wrapped.stop()  # does not stop a server it did not start
    assert psql(postgres_server.url(), "select 1") == "1"


def test_own_server_listens_only_on_loopback_and_stop_removes_it() -> None:
    with PostgresServer() as pg:
        assert pg.port is not None and pg.temp_dir is not None and pg.data_dir is not None
        port, temp_dir = pg.port, pg.temp_dir
        assert (pg.data_dir / "PG_VERSION").is_file()
        assert pg.url() == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        settings = "select string_agg(setting, ',' order by name) from pg_settings where name in"
        names = "('listen_addresses', 'unix_socket_directories', 'fsync', 'max_connections')"
        assert psql(pg.url(), f"{settings} {names}") == "off,127.0.0.1,300,"
    assert not temp_dir.exists()
    assert not accepts_connections(port)
    pg.stop()  # idempotent


def test_start_retries_when_the_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        free_port = postgres._free_port
        monkeypatch.setattr(postgres, "_free_port", lambda: next(ports, None) or free_port())
        with PostgresServer() as pg:
            assert pg.port != taken.getsockname()[1]
            assert psql(pg.url(), "select 1") == "1"


def test_a_failed_start_shows_the_server_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(postgres.SETTINGS, "shared_buffers", "'lots'")
    pg = PostgresServer()
    with pytest.raises(RuntimeError, match=r"(?s)failed to start.*shared_buffers"):
        pg.start()
    assert pg.temp_dir is None


def test_missing_binaries_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "find_pg_bin", lambda: None)
    with pytest.raises(RuntimeError, match="apt-get install -y postgresql"):
        PostgresServer().start()


@pytest.mark.parametrize("ending", ["exit", "sigterm"])
def test_the_server_is_stopped_when_the_process_ends(ending: str) -> None:
    script = (
        "import sys, time\n"
        "from tests.postgres import PostgresServer\n"
        "pg = PostgresServer().start()\n"
        "print(pg.port, pg.temp_dir, flush=True)\n"
        "if sys.argv[1] == 'sigterm':\n"
        "    time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, ending], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    port, temp_dir = child.stdout.readline().split()
    if ending == "sigterm":
        assert accepts_connections(int(port))
        child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == (-signal.SIGTERM if ending == "sigterm" else 0)
    assert not Path(temp_dir).exists()
    assert not accepts_connections(int(port))
