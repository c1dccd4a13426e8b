"""How the PostgreSQL store connects: bounded sessions, a pool of them checked only when they
may be broken, and errors that say what to check without ever showing the password.

Sessions are bounded as `connecting.postgres` describes (statement, lock and idle-transaction
timeouts equal to the store timeout, `TimeZone=UTC`) and named `responder` unless the DSN
names them. Errors name the server as `postgresql://user@host:port/dbname`.

`open_pool` opens an `AsyncConnectionPool` of autocommit sessions; the store checks the schema
(`migrating.check_schema`) before it. A connection that may be broken is checked with a round
trip when it is handed out, so one broken by a server restart is replaced instead of failing a
request: one the server sent anything while it sat in the pool (a restart, a termination or a
closed socket announce themselves that way), one idle for more than `CHECK_IDLE_SECONDS`, and
a new one. A connection last used less than that ago whose socket is silent is handed out
without the round trip, which used to double the time and CPU of every store call
(`ConnectionCheck`). The store notes that use itself (`ConnectionCheck.used`): a `reset`
callback would make the pool return every connection through its worker task, which cost a
quarter of the CPU of a one-row INSERT.
"""

from __future__ import annotations

import select
import time
import weakref

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from responder.adapters.connecting.postgres import describe, scrub, session_conninfo
from responder.errors import StoreUnavailableError

Conn = AsyncConnection[TupleRow]
APPLICATION_NAME = "responder"
ERRORS = (psycopg.Error, OSError)
CHECK_IDLE_SECONDS = 10.0
_WHAT_TO_CHECK = (
    "check that the server is up and reachable, the user, password and database in "
    "RESPONDER_DATABASE_URL, that it is a writable primary (not a read-only replica) with free "
    "disk space, and RESPONDER_STORE_TIMEOUT_SECONDS"
)


def conninfo(dsn: str, timeout_seconds: float) -> str:
    """`dsn` (URL or key=value) with our timeouts and application name merged in.

    Raises StoreUnavailableError (password redacted) if `dsn` does not parse.
    """
    try:
        given = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise unavailable(dsn, f"RESPONDER_DATABASE_URL does not parse ({exc})") from exc
    name = str(given.get("application_name") or APPLICATION_NAME)
    return session_conninfo(dsn, timeout_seconds, application_name=name)


def unavailable(dsn: str, cause: object) -> StoreUnavailableError:
    """A StoreUnavailableError naming the server, the cause and what to check, password-free."""
    text = " ".join(str(cause).split()) or type(cause).__name__
    return StoreUnavailableError(scrub(f"{describe(dsn)}: {text}; {_WHAT_TO_CHECK}", dsn))


async def open_pool(
    dsn: str, *, timeout_seconds: float, pool_min: int, pool_max: int
) -> tuple[AsyncConnectionPool[Conn], ConnectionCheck]:
    """Open the pool and wait for its first connections; StoreUnavailableError saying what to
    check (never with the password) when it is not ready within `timeout_seconds`."""
    checker = ConnectionCheck()
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        conninfo(dsn, timeout_seconds),
        kwargs={"autocommit": True},
        min_size=pool_min,
        max_size=pool_max,
        open=False,
        timeout=timeout_seconds,
        check=checker.check,
        name="responder-store",
    )
    try:
        await pool.open(wait=True, timeout=timeout_seconds)
    except (*ERRORS, TimeoutError) as exc:
        await pool.close(timeout=timeout_seconds)
        raise unavailable(dsn, f"connection pool not ready: {exc}") from exc
    return pool, checker


class ConnectionCheck:
    """The pool's `check` callback: a round trip only when it may find a problem."""

    def __init__(self) -> None:
        self._used: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()

    def used(self, conn: Conn) -> None:
        """Called by the store when a call's work on `conn` ends: remember when."""
        self._used[conn] = time.monotonic()

    async def check(self, conn: Conn) -> None:
        """Raise if `conn` is broken; the pool then replaces it before handing one out."""
        used = self._used.get(conn)
        recent = used is not None and time.monotonic() - used < CHECK_IDLE_SECONDS
        if recent and not _server_spoke(conn):
            return
        await AsyncConnectionPool.check_connection(conn)


def _server_spoke(conn: Conn) -> bool:
    """Whether an idle connection's socket is readable: the server sent an error or closed it."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True  # closed or unusable: let the full check say so
    return bool(readable)
