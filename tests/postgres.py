"""A real, throw-away PostgreSQL server on loopback, for the tests and benchmarks.

``PostgresServer()`` runs ``initdb`` into a fresh temporary directory (on /dev/shm when that is a
roomy tmpfs) and starts the server on 127.0.0.1 on a free port (no Unix socket), tuned for speed
over durability. It is stopped and its directory removed by ``stop()``, at the end of a ``with``
block, or at interpreter exit (also on SIGTERM; not on SIGKILL). ``PostgresServer.existing(url)``
wraps a server someone else runs instead.

``initdb`` and ``postgres`` refuse to run as root: as root, the server runs as the ``postgres``
system user (created by Debian's package; a ``parleypg`` system user is made if it is missing).

    with PostgresServer() as pg:
        url = pg.create_database()  # postgresql://postgres@127.0.0.1:PORT/test_...
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

__all__ = ["PostgresServer", "find_pg_bin", "find_psql"]

INSTALL_HINT = (
    "PostgreSQL is not installed: run `apt-get install -y postgresql` (Debian) or put initdb "
    "on PATH (its directory must also hold pg_ctl, postgres and psql)"
)

# Settings for a throw-away server: durability off, room for many test connections.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
}

_PORT_TAKEN = re.compile(r"could not bind|Address already in use|could not create any TCP/IP")
_START_ATTEMPTS = 5
_names = itertools.count(1)


def find_pg_bin() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: from $PATH, else the newest Debian one."""
    candidates: list[Path] = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)  # through /usr/local/bin symlinks

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bin_dir in candidates:
        if all((bin_dir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bin_dir
    return None


def find_psql(bin_dir: Path | None) -> Path:
    """The psql client: beside the server binaries, else from $PATH."""
    if bin_dir and (bin_dir / "psql").is_file():
        return bin_dir / "psql"
    if found := shutil.which("psql"):
        return Path(found)
    raise RuntimeError(INSTALL_HINT)


def _temp_root() -> str | None:
    """/dev/shm if it is a roomy tmpfs, else None (the usual temp dir).

    A database is ~300 new files: on a slow disk, creating one took ~200 ms, on tmpfs ~10 ms.
    """
    shm = Path("/dev/shm")
    try:
        roomy = shutil.disk_usage(shm).free >= 2 * 1024**3  # Docker's default is 64 MB
    except OSError:
        return None
    return str(shm) if roomy and os.access(shm, os.W_OK | os.X_OK) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """The user to run initdb and postgres as when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "parleypg"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    # check=False: another process may have created it meanwhile; getpwnam tells.
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "parleypg"],
        capture_output=True,
        check=False,
    )
    try:
        return pwd.getpwnam("parleypg")
    except KeyError:
        raise RuntimeError(
            "running as root, and no `postgres` user exists to run PostgreSQL as; "
            "`useradd --system parleypg` failed"
        ) from None


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresServer:
    """A PostgreSQL server on 127.0.0.1: a throw-away one we start, or an existing one."""

    def __init__(self, bin_dir: Path | None = None, *, existing_url: str | None = None) -> None:
        self.bin_dir = bin_dir or find_pg_bin()
        self.port: int | None = urlsplit(existing_url).port if existing_url else None
        self.temp_dir: Path | None = None
        self._existing_url = existing_url
        self._user: pwd.struct_passwd | None = None
        self._strategy: str | None = None

    @classmethod
    def existing(cls, url: str) -> PostgresServer:
        """Wrap a running server; ``url`` must be allowed to create and drop databases."""
        return cls(existing_url=url)

    @property
    def data_dir(self) -> Path | None:
        return self.temp_dir / "data" if self.temp_dir else None

    @property
    def log_file(self) -> Path | None:
        return self.temp_dir / "postgres.log" if self.temp_dir else None

    @property
    def running(self) -> bool:
        return self._existing_url is not None or self.temp_dir is not None

    def url(self, dbname: str = "postgres") -> str:
        """The URL of database ``dbname`` on this server."""
        if self._existing_url:
            return urlsplit(self._existing_url)._replace(path="/" + quote(dbname)).geturl()
        if self.port is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(dbname)}"

    def start(self) -> PostgresServer:
        """Create a fresh cluster and start it on a free port; a no-op if it is running."""
        if self.running:
            return self
        if self.bin_dir is None:
            raise RuntimeError(INSTALL_HINT)
        self._user = _server_user()
        self.temp_dir = Path(tempfile.mkdtemp(prefix="parley-pg-", dir=_temp_root()))
        _live.add(self)
        _install_exit_hooks()
        try:
            if self._user:
                os.chown(self.temp_dir, self._user.pw_uid, self._user.pw_gid)
            self._initdb()
            self._start_on_free_port()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server at once (no checkpoint) and remove its directory; idempotent."""
        _live.discard(self)
        temp_dir, self.temp_dir, self.port, self._strategy = self.temp_dir, None, None, None
        if temp_dir is None:
            return
        data_dir = temp_dir / "data"
        if (data_dir / "postmaster.pid").exists():
            self._run_as_server(
                [self._bin("pg_ctl"), "stop", "-D", data_dir, "-m", "immediate", "-w", "-t", "30"],
                check=False,
            )
        shutil.rmtree(temp_dir, ignore_errors=True)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a unique name if None); returns its URL."""
        name = name or f"test_{os.getpid()}_{next(_names)}_{secrets.token_hex(3)}"
        self.psql(f"CREATE DATABASE {_quote_ident(name)} TEMPLATE template0{self._copy_strategy()}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database (by name, or the URL create_database gave), closing its connections.

        Needs PostgreSQL 13+; no error if the database is gone.
        """
        if "://" in name:
            name = unquote(urlsplit(name).path.lstrip("/"))
        self.psql(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    def psql(self, sql: str, dbname: str | None = None) -> str:
        """Run SQL with psql (on ``dbname``, else the admin database); returns its bare output."""
        admin_url = self._existing_url if self._existing_url and dbname is None else None
        url = admin_url or self.url(dbname or "postgres")
        psql = [find_psql(self.bin_dir), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        result = subprocess.run(
            [*psql, url, "-c", sql],
            capture_output=True,
            text=True,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed on {sql!r}: {result.stderr.strip()}")
        return result.stdout

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._existing_url or (self.url() if self.port else "stopped")
        return f"<PostgresServer {where}>"

    # -- internals --

    def _copy_strategy(self) -> str:
        """FILE_COPY where the server has it (15+): twice as fast as WAL_LOG for a small database."""
        if self._strategy is None:
            version = int(self.psql("SHOW server_version_num").strip())
            self._strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""
        return self._strategy

    def _bin(self, name: str) -> Path:
        assert self.bin_dir is not None
        return self.bin_dir / name

    def _run_as_server(
        self, args: list[Any], *, check: bool = True, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary as the server's user, from the temp dir (it may not see ours)."""
        if self._user:
            kwargs |= {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(arg) for arg in args],
            cwd=self.temp_dir,
            env={**os.environ, "LC_ALL": "C"},
            capture_output=True,
            text=True,
            check=False,
            **kwargs,
        )
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise RuntimeError(f"{Path(args[0]).name} failed ({result.returncode}): {output}")
        return result

    def _initdb(self) -> None:
        assert self.data_dir is not None
        self._run_as_server(
            [
                *(self._bin("initdb"), "-D", self.data_dir, "-A", "trust", "-U", "postgres"),
                *("--encoding=UTF8", "--no-locale", "--no-sync"),
            ]
        )
        conf = "".join(f"{key} = {value}\n" for key, value in SETTINGS.items())
        with (self.data_dir / "postgresql.conf").open("a") as file:  # keeps the owner
            file.write("\n# tests/postgres.py: a throw-away test server\n" + conf)

    def _start_on_free_port(self) -> None:
        assert self.data_dir is not None and self.log_file is not None
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
            result = self._run_as_server(
                [
                    *(self._bin("pg_ctl"), "start", "-w", "-t", "60", "-D", self.data_dir),
                    *("-l", self.log_file, "-o", f"-p {port}"),
                ],
                check=False,
                start_new_session=True,  # a Ctrl-C in the terminal leaves it to stop()
            )
            if result.returncode == 0:
                self.port = port
                return
            log = self._log_tail(log_start)
            if not (_PORT_TAKEN.search(log) and attempt < _START_ATTEMPTS):
                output = (result.stdout + result.stderr).strip()
                raise RuntimeError(
                    f"PostgreSQL failed to start on 127.0.0.1:{port} ({output})\n"
                    f"--- last lines of the server log ---\n{log}"
                )

    def _log_tail(self, offset: int, lines: int = 30) -> str:
        assert self.log_file is not None
        try:
            with self.log_file.open("rb") as file:
                file.seek(offset)
                text = file.read().decode(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


# Servers still running, stopped at interpreter exit and on SIGTERM (which skips atexit).
_live: set[PostgresServer] = set()
_hooks_installed = False
_previous_sigterm: Any = signal.SIG_DFL


def _stop_all() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    if callable(_previous_sigterm):
        _previous_sigterm(signum, frame)
    else:  # the default: die of SIGTERM
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _install_exit_hooks() -> None:
    global _hooks_installed, _previous_sigterm
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous is not signal.SIG_IGN:
            _previous_sigterm = previous
            signal.signal(signal.SIGTERM, _on_sigterm)
