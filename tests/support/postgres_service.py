"""PostgreSQL servers for tests: the configured one, the local one, or a throwaway one.

`postgres_dsn` (session fixture; `find_or_start_server()` is the plain function) gives the DSN
of a server where the test role may CREATE DATABASE, found in this order:

1. `RESPONDER_TEST_DATABASE_URL`, if set (used as is; never replaced by another server).
2. `postgresql://postgres@127.0.0.1:5432/test` (trust auth: Debian's service on the dev and CI
   machines). `RESPONDER_TEST_PG_PORT` moves this probe to another port, or `none` skips it.
3. A throwaway server started from Debian's binaries (`$(pg_config --bindir)/initdb` and
   `pg_ctl`) in a temporary directory, on a free port of 127.0.0.1 with no Unix socket and no
   fsync, as the `postgres` OS user when we are root (initdb refuses root); stopped and removed
   at the end of the session.

When none of these works, the test fails under `CI=true` and is skipped otherwise, with the
reason.

Isolation: `postgres_database` (function fixture; `fresh_schema()` the plain context manager)
gives each test a DSN whose `options` set `search_path` to a new empty schema
`responder_test_<hex>` (and `application_name` to the same name), so everything the test
creates, migrations included, lands there; afterwards its sessions are ended and the schema is
dropped CASCADE. That costs about 1 ms, where CREATE DATABASE from template0 took 40-250 ms
here (it copies and fsyncs the template), and it needs only CREATE on the database, not
CREATEDB. What schemas cannot separate: database-wide state (ALTER DATABASE settings, advisory
locks, pg_stat_activity), so tests change session settings through the DSN instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.support.loopback import free_port

CONFIGURED = "RESPONDER_TEST_DATABASE_URL"
PROBE_PORT = "RESPONDER_TEST_PG_PORT"
SERVICE_USER = "postgres"


class NoServerError(Exception):
    """No PostgreSQL server could be found or started; the message says why."""


def reachable(dsn: str) -> str | None:
    """None if `dsn` answers `SELECT 1` within 3 s, else the reason."""
    try:
        with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return " ".join(str(exc).split())
    return None


def _bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=10
        )
        bindir = Path(found.stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        raise NoServerError(f"no initdb: install Debian's postgresql package, or set {CONFIGURED}")
    return candidates[-1].parent


class ThrowawayServer:
    """A PostgreSQL cluster in a temporary directory, for one test session."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="responder-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._as_service_user = os.geteuid() == 0
        if self._as_service_user:
            try:
                user = pwd.getpwnam(SERVICE_USER)
            except KeyError as exc:
                raise NoServerError(f"running as root, and no {SERVICE_USER!r} user") from exc
            os.chown(self.root, user.pw_uid, user.pw_gid)

    @property
    def dsn(self) -> str:
        """The superuser DSN of this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self._as_service_user:
            runuser = shutil.which("runuser")
            if runuser is not None:
                command = [runuser, "-u", SERVICE_USER, "--", *command]
            else:
                command = ["su", SERVICE_USER, "-s", "/bin/sh", "-c", shlex.join(command)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            why = f"{done.stderr.strip()} {log}".strip()
            raise NoServerError(f"{argv[0]} failed ({done.returncode}): {why}")

    def start(self) -> None:
        """initdb and start; NoServerError with the reason on failure."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and remove its directory."""
        with contextlib.suppress(NoServerError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


@functools.cache
def _local_dsn() -> str | None:
    port = os.environ.get(PROBE_PORT, "5432")
    return None if port.lower() == "none" else f"postgresql://postgres@127.0.0.1:{port}/test"


def _unavailable(reason: str) -> NoReturn:
    """Fail under CI=true (an unreachable server is a failure there), else skip."""
    message = f"no PostgreSQL server for the tests: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def find_or_start_server() -> Iterator[str]:
    """The DSN of a server (see the module docstring); skips or fails if there is none."""
    configured = os.environ.get(CONFIGURED)
    if configured:
        problem = reachable(configured)
        if problem is not None:
            _unavailable(f"{CONFIGURED} does not answer: {problem}")
        yield configured
        return
    local = _local_dsn()
    if local is not None and reachable(local) is None:
        yield local
        return
    try:
        server = ThrowawayServer()
    except NoServerError as exc:
        _unavailable(str(exc))
    try:
        server.start()
        problem = reachable(server.dsn)
        if problem is not None:
            raise NoServerError(f"started, but it does not answer: {problem}")
    except NoServerError as exc:
        server.stop()
        _unavailable(f"nothing answers at {local} and a throwaway server failed: {exc}")
    try:
        yield server.dsn
    finally:
        server.stop()


@contextlib.contextmanager
def fresh_schema(server_dsn: str) -> Iterator[str]:
    """A DSN whose objects live in a new empty schema of their own, for the block.

    The DSN sets `search_path` to that schema only (any `options` of `server_dsn` are kept)
    and `application_name` to its name; afterwards the sessions still using it are ended and
    the schema is dropped with everything in it.
    """
    name = f"responder_test_{uuid.uuid4().hex[:12]}"
    given = str(conninfo_to_dict(server_dsn).get("options") or "")
    options = f"{given} -c search_path={name}".strip()
    with psycopg.connect(server_dsn, connect_timeout=5, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield make_conninfo(server_dsn, options=options, application_name=name)
    finally:
        with psycopg.connect(server_dsn, connect_timeout=5, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute("SET lock_timeout = '10s'")
            admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The DSN of a PostgreSQL server for this session (pytest keeps a skip or failure for
    the session too, so a missing server is looked for once)."""
    with find_or_start_server() as dsn:
        yield dsn


@pytest.fixture
def postgres_database(postgres_dsn: str) -> Iterator[str]:
    """The DSN of an empty schema of its own for one test (see `fresh_schema`)."""
    with fresh_schema(postgres_dsn) as dsn:
        yield dsn
