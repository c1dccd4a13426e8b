"""The PostgreSQL store's connection pool: opened only on a database whose schema is this
code's, and its connections checked with a round trip only when they may be broken.

`open_pool` first connects once on its own (so a wrong host, password or database fails fast
with libpq's reason), runs the migrations when asked (`migrating.migrate`), and refuses a
database whose schema is missing, older or newer than this code ("run `responder migrate`").
It then opens an `AsyncConnectionPool` of autocommit sessions, bounded as
`postgres_connections` describes.

A connection that may be broken is checked with a round trip when it is handed out, so one
broken by a server restart is replaced instead of failing a request: one the server sent
anything while it sat in the pool (a restart, a termination or a closed socket announce
themselves that way), one idle for more than `CHECK_IDLE_SECONDS`, and a new one. A connection
last used less than that ago whose socket is silent is handed out without the round trip,
which used to double the time and CPU of every store call (`ConnectionCheck`). The store
notes that use itself (`ConnectionCheck.used`): a `reset` callback would make the pool return
every connection through its worker task, which cost a quarter of the CPU of a one-row INSERT.
"""

from __future__ import annotations

import asyncio
import select
import time
import weakref

import psycopg
from psycopg_pool import AsyncConnectionPool

from responder.adapters import migrating
from responder.adapters import postgres_connections as connections
from responder.adapters.postgres_queries import Conn
from responder.errors import StoreUnavailableError

ERRORS = (psycopg.Error, OSError)
CHECK_IDLE_SECONDS = 10.0


async def open_pool(
    dsn: str, *, timeout_seconds: float, pool_min: int, pool_max: int, migrate: bool
) -> tuple[AsyncConnectionPool[Conn], ConnectionCheck]:
    """Migrate if asked, check the schema version, open the pool; raise
    StoreUnavailableError saying what to check (never with the password)."""
    info = connections.conninfo(dsn, timeout_seconds)
    if migrate:
        await migrating.migrate(dsn, timeout_seconds=timeout_seconds)
    await _check_schema(dsn, timeout_seconds)
    checker = ConnectionCheck()
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        info,
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
        raise connections.unavailable(dsn, f"connection pool not ready: {exc}") from exc
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


async def _check_schema(dsn: str, timeout_seconds: float) -> None:
    """Raise StoreUnavailableError unless the database has exactly the shipped migrations."""
    conn = await migrating.connect(dsn, timeout_seconds)
    try:
        async with asyncio.timeout(timeout_seconds):
            applied = await migrating.applied_versions(conn)
    except (*ERRORS, TimeoutError) as exc:
        raise connections.unavailable(dsn, f"schema version not readable: {exc}") from exc
    finally:
        await conn.close()
    problem = migrating.schema_problem(applied, migrating.shipped_migrations())
    if problem is not None:
        raise StoreUnavailableError(f"{connections.describe(dsn)}: {problem}")
