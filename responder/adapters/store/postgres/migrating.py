"""Versioned SQL migrations of the PostgreSQL store (`responder migrate`, migrate-on-start).

The files are `migrations/NNNN_name.sql` beside this module, shipped as package data and
applied in version order. Each file runs in its own transaction that first takes the
advisory lock MIGRATION_LOCK (`pg_advisory_xact_lock`), then creates `schema_migrations`
(version, name, applied_at) if needed, skips the file if its version is recorded, else runs it
and records it. Two replicas migrating at once therefore queue on the lock and the second finds
the work done; a failing file leaves nothing of itself behind; applying twice is a no-op.
Never edit a shipped file: add the next version. A file is one transaction, so it cannot use
statements that refuse to run in one (`CREATE INDEX CONCURRENTLY`, `VACUUM`).

The store opens only on a database whose schema is exactly this code's (`check_schema`): a
missing, older or newer schema is refused, saying to run `responder migrate` or to upgrade.

Roles (`roles`): migrations run as the role that owns the tables. `migrate(...,
runtime_role=NAME)` then grants NAME the runtime privileges, under the same lock, so `serve`
can run as a role that cannot rewrite the audit. A schema already current is found so with
reads alone (no lock, no CREATE), so a runtime role started with migrate-on-start opens a
current database; one with work left fails saying to migrate as the owner.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

import psycopg
from psycopg.rows import TupleRow

from responder.adapters.connecting.postgres import describe, scrub
from responder.adapters.store.postgres import connections, roles
from responder.errors import StoreUnavailableError

MIGRATION_LOCK = 0x7265_7370_6E64  # "respnd": the advisory lock key of schema changes
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
NOT_OWNER = (
    "migrations run as the role that owns the tables: run `responder migrate` with that role's "
    "DSN in RESPONDER_DATABASE_URL, and start serve as the runtime role without "
    "RESPONDER_MIGRATE_ON_START (docs/deployment.md)"
)
_BOOTSTRAP = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file."""

    version: int
    name: str  # the file name without `.sql`, e.g. "0001_initial"
    sql: str


def shipped_migrations() -> tuple[Migration, ...]:
    """The migrations shipped with this responder, in version order (1, 2, 3, ...)."""
    folder = files("responder.adapters.store.postgres") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        if match := _FILE_NAME.match(entry.name):
            name = entry.name.removesuffix(".sql")
            found.append(Migration(int(match.group(1)), name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must be 1, 2, 3, ...: {[m.name for m in found]}")
    return tuple(found)


def latest_version() -> int:
    """The schema version this responder needs."""
    return shipped_migrations()[-1].version


async def connect(dsn: str, timeout_seconds: float) -> psycopg.AsyncConnection[TupleRow]:
    """One autocommit session with the store's timeouts (StoreUnavailableError on failure)."""
    info = connections.conninfo(dsn, timeout_seconds)
    try:
        async with asyncio.timeout(timeout_seconds):
            return await psycopg.AsyncConnection.connect(info, autocommit=True)
    except (psycopg.Error, OSError, TimeoutError) as exc:
        raise connections.unavailable(dsn, _cause(exc, timeout_seconds)) from exc


async def migrate(
    dsn: str,
    *,
    timeout_seconds: float,
    migrations: Sequence[Migration] | None = None,
    runtime_role: str | None = None,
) -> list[str]:
    """Apply the migrations not yet recorded, in order; the names of those applied now.

    Each migration may take up to `timeout_seconds` (also its statement and lock timeout).
    `migrations` defaults to the shipped ones. With `runtime_role`, that role is then given
    exactly the runtime privileges (`roles.grant_runtime`). Raises StoreUnavailableError; one
    saying to run as the owning role when the session lacks the privileges.
    """
    todo = shipped_migrations() if migrations is None else tuple(migrations)
    conn = await connect(dsn, timeout_seconds)
    applied: list[str] = []
    step = "the schema version was not read"
    try:
        async with asyncio.timeout(timeout_seconds):
            done = set(await applied_versions(conn))
        for migration in [m for m in todo if m.version not in done]:
            step = f"migration {migration.name} not applied"
            async with asyncio.timeout(timeout_seconds), conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await conn.execute(_BOOTSTRAP)
                cur = await conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
                )
                if await cur.fetchone() is not None:
                    continue
                await conn.execute(migration.sql.encode())  # no parameters: many statements
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied.append(migration.name)
        if runtime_role is not None:
            step = f"runtime privileges not granted to {runtime_role!r}"
            async with asyncio.timeout(timeout_seconds), conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await roles.grant_runtime(conn, runtime_role)
    except roles.RoleProblemError as exc:
        raise StoreUnavailableError(scrub(f"{describe(dsn)}: {step}: {exc}", dsn)) from exc
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidSchemaName) as exc:
        cause = f"{step}: {_primary(exc)}; {NOT_OWNER}"
        raise StoreUnavailableError(scrub(f"{describe(dsn)}: {cause}", dsn)) from exc
    except (psycopg.Error, OSError, TimeoutError) as exc:
        raise connections.unavailable(dsn, f"{step}: {_cause(exc, timeout_seconds)}") from exc
    finally:
        await conn.close()
    return applied


async def applied_versions(conn: psycopg.AsyncConnection[TupleRow]) -> list[int]:
    """Versions recorded in `schema_migrations` (empty when the table does not exist)."""
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return []
    cur = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
    return [int(version) for (version,) in await cur.fetchall()]


async def check_schema(dsn: str, timeout_seconds: float) -> None:
    """Raise StoreUnavailableError unless the database has exactly the shipped migrations."""
    conn = await connect(dsn, timeout_seconds)
    try:
        async with asyncio.timeout(timeout_seconds):
            applied = await applied_versions(conn)
    except psycopg.errors.InsufficientPrivilege as exc:
        cause = (
            f"schema version not readable: {_primary(exc)}; this role lacks the "
            "runtime privileges: run `responder migrate --runtime-role <this role>` as the "
            "role that owns the tables (docs/deployment.md)"
        )
        raise StoreUnavailableError(scrub(f"{describe(dsn)}: {cause}", dsn)) from exc
    except (*connections.ERRORS, TimeoutError) as exc:
        raise connections.unavailable(dsn, f"schema version not readable: {exc}") from exc
    finally:
        await conn.close()
    problem = schema_problem(applied, shipped_migrations())
    if problem is not None:
        raise StoreUnavailableError(f"{describe(dsn)}: {problem}")


def schema_problem(applied: Sequence[int], shipped: Sequence[Migration]) -> str | None:
    """Why a store must not open on a database with these versions applied, or None."""
    known = {m.version for m in shipped}
    newer = sorted(set(applied) - known)
    if newer:
        return (
            f"database schema version {newer[-1]} is newer than this responder knows "
            f"({max(known)}); upgrade responder or point it at another database"
        )
    missing = [m.name for m in shipped if m.version not in set(applied)]
    if not applied:
        return (
            "the database has no responder schema (or this role may not use it); run "
            "`responder migrate` as the role that owns the tables, with `--runtime-role <the role "
            "serve connects as>` (docs/deployment.md), or start with "
            "RESPONDER_MIGRATE_ON_START=true as that role"
        )
    if missing:
        return (
            f"the database schema is older than this responder (pending: {', '.join(missing)}); "
            "run `responder migrate` as the role that owns the tables (docs/deployment.md), or "
            "start with RESPONDER_MIGRATE_ON_START=true as that role"
        )
    return None


def _cause(exc: BaseException, timeout_seconds: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_seconds}s"
    return str(exc) or type(exc).__name__


def _primary(exc: psycopg.Error) -> str:
    """The server's one-line message (no LINE/caret context), else the error's text."""
    return exc.diag.message_primary or " ".join(str(exc).split())
