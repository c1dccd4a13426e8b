"""The PostgreSQL store harness: opens PostgresStores on one fresh database and breaks it.

Each harness gets its own empty database (`tests.support.postgres_service.postgres_database`);
`open()` migrates it (the first time for real, then as a no-op). The ways to break the store from
outside use a second, plain psycopg connection, as an operator or another program would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import psycopg
from psycopg.rows import TupleRow

from responder.adapters.store.postgres.store import PostgresStore
from responder.ports.store import AlertLog, Store
from tests.support.loopback import free_port

_POISON_TABLES = ("alerts", "writable_probe")


class PostgresHarness:
    """Opens PostgresStores on one database and breaks it from a second connection."""

    name = "postgres"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._opened: list[PostgresStore] = []

    async def open(self, *, timeout_seconds: float = 5.0, batch_max: int = 256) -> Store:
        """Open (or reopen) the store under test."""
        store = await PostgresStore.open(
            self.dsn, timeout_seconds=timeout_seconds, batch_max=batch_max, migrate=True
        )
        self._opened.append(store)
        return store

    async def open_unusable(self) -> Store:
        """Open a store on a port where no server listens (must raise, password unsaid)."""
        dsn = f"postgresql://responder:hunter2-secret@127.0.0.1:{free_port()}/nothing"
        return await PostgresStore.open(dsn, timeout_seconds=2.0)

    def commits(self, store: AlertLog) -> int | None:
        """Delivery, processed-mark and audit statements so far: each is its own transaction."""
        assert isinstance(store, PostgresStore)
        return store.statements

    def raw(self) -> psycopg.Connection[TupleRow]:
        """A plain autocommit connection to the same database."""
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)

    @contextmanager
    def write_lock_held(self) -> Iterator[None]:
        """Another session holds a lock on `alerts` that blocks every INSERT meanwhile."""
        with self.raw() as conn:
            conn.execute("BEGIN")
            conn.execute("LOCK TABLE alerts IN EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.execute("ROLLBACK")

    @contextmanager
    def commits_failing(self) -> Iterator[None]:
        """Every commit that wrote an alert or the probe row fails meanwhile.

        A deferred constraint trigger raises at COMMIT time: statements succeed, the commit
        fails, like a commit that cannot be flushed.
        """
        with self.raw() as conn:
            conn.execute(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'commit refused (poisoned)'; END $$"
            )
            for table in _POISON_TABLES:
                conn.execute(
                    f"CREATE CONSTRAINT TRIGGER poison_{table} AFTER INSERT OR UPDATE ON {table} "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison()"
                )
            try:
                yield
            finally:
                for table in _POISON_TABLES:
                    conn.execute(f"DROP TRIGGER poison_{table} ON {table}")
                conn.execute("DROP FUNCTION poison()")

    def tamper_with_audit(self, statement: Literal["update", "delete"]) -> BaseException | None:
        """Try to change audit rows behind the store's back; the error raised, if any."""
        sql = {
            "update": "UPDATE audit_events SET reason = 'tampered'",
            "delete": "DELETE FROM audit_events",
        }[statement]
        with self.raw() as conn:
            try:
                conn.execute(sql)
            except psycopg.Error as exc:
                return exc
        return None

    def audit_log(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, actor, details) of every audit row, in insertion order, read directly."""
        with self.raw() as conn:
            rows = conn.execute("SELECT kind, actor, details::text FROM audit_events ORDER BY id")
            return [(kind, actor, json.loads(details)) for kind, actor, details in rows]

    async def aclose(self) -> None:
        """Close every store opened here (their pools and pool workers)."""
        for store in self._opened:
            await store.close()
