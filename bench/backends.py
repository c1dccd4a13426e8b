"""Where a bench daemon keeps its state, and read-back of that state after a bench.

- `embedded`: the default, a SQLite file under the bench's temp dir, in-process coordination.
- `postgres+redis`: the local servers (127.0.0.1:5432 database `test`, 127.0.0.1:6379), with a
  fresh schema (`responder_bench_<hex>`, selected through the DSN's `search_path`, migrated
  at start) and a unique Redis key prefix; both are removed afterwards.

`StoreReader` answers what the storm bench checks: which acknowledged alert ids are missing,
and how many runs actually executed per (rule, guard key).
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from psycopg.conninfo import make_conninfo

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"  # loopback only, never elsewhere
REDIS = "redis://127.0.0.1:6379/0"
EMBEDDED = "embedded"
POSTGRES_REDIS = "postgres+redis"
EXECUTED = ("running", "succeeded", "failed")  # a run whose steps were started


@dataclass
class Backend:
    """The settings a daemon needs for one backend, and how to read its store back."""

    name: str
    settings: dict[str, str] = field(default_factory=dict)
    sqlite_path: Path | None = None
    dsn: str | None = None

    def missing_alerts(self, ids: Sequence[int]) -> int:
        """How many of `ids` have no row in the alerts table."""
        wanted = set(ids)
        return len(wanted - self._present(wanted))

    def _present(self, wanted: set[int]) -> set[int]:
        if self.dsn is not None:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                rows = conn.execute("SELECT id FROM alerts").fetchall()
            return {int(r[0]) for r in rows} & wanted
        assert self.sqlite_path is not None
        with contextlib.closing(_read_only(self.sqlite_path)) as conn:
            return {int(r[0]) for r in conn.execute("SELECT id FROM alerts")} & wanted

    def executed_runs(self, rule_id: str) -> dict[str, int]:
        """Runs of `rule_id` whose steps started, counted per guard key."""
        marks = ", ".join(["%s" if self.dsn else "?"] * len(EXECUTED))
        sql = (
            f"SELECT guard_key, count(*) FROM runs WHERE rule_id = {'%s' if self.dsn else '?'} "
            f"AND state IN ({marks}) GROUP BY guard_key"
        )
        params = (rule_id, *EXECUTED)
        if self.dsn is not None:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                return {str(k): int(n) for k, n in conn.execute(sql, params).fetchall()}
        assert self.sqlite_path is not None
        with contextlib.closing(_read_only(self.sqlite_path)) as conn:
            return {str(k): int(n) for k, n in conn.execute(sql, params)}

    def runs_by_state(self, rule_id: str) -> dict[str, int]:
        """Runs of `rule_id` counted per state."""
        mark = "%s" if self.dsn else "?"
        sql = f"SELECT state, count(*) FROM runs WHERE rule_id = {mark} GROUP BY state"
        if self.dsn is not None:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                return {str(k): int(n) for k, n in conn.execute(sql, (rule_id,)).fetchall()}
        assert self.sqlite_path is not None
        with contextlib.closing(_read_only(self.sqlite_path)) as conn:
            return {str(k): int(n) for k, n in conn.execute(sql, (rule_id,))}


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


@contextlib.contextmanager
def backend(name: str, workdir: Path) -> Iterator[Backend]:
    """The backend `name` for one daemon run; its schema and keys are removed afterwards."""
    if name == EMBEDDED:
        yield Backend(EMBEDDED, sqlite_path=workdir / "data" / "responder.sqlite3")
        return
    if name != POSTGRES_REDIS:
        raise ValueError(f"unknown backend {name!r}")
    suffix = secrets.token_hex(6)
    schema = f"responder_bench_{suffix}"
    prefix = f"responder-bench:{suffix}:"
    dsn = make_conninfo(POSTGRES, options=f"-c search_path={schema}", application_name=schema)
    with psycopg.connect(POSTGRES, connect_timeout=5, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    settings = {
        "DATABASE_URL": dsn,
        "MIGRATE_ON_START": "true",
        "REDIS_URL": REDIS,
        "REDIS_PREFIX": prefix,
    }
    try:
        yield Backend(POSTGRES_REDIS, settings=settings, dsn=dsn)
    finally:
        with psycopg.connect(POSTGRES, connect_timeout=5, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (schema,),
            )
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        client = redis.Redis.from_url(REDIS, socket_timeout=10)
        try:
            names = list(client.scan_iter(match=f"{prefix}*", count=1000))
            for start in range(0, len(names), 1000):
                client.delete(*names[start : start + 1000])
        finally:
            client.close()


def available(name: str) -> str | None:
    """None when backend `name` can be used here, else why not."""
    if name == EMBEDDED:
        return None
    try:
        with psycopg.connect(POSTGRES, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES}: {' '.join(str(exc).split())}"
    client = redis.Redis.from_url(REDIS, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"Redis at {REDIS}: {exc}"
    finally:
        client.close()
    return None
