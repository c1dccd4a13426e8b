"""Store harnesses: how the contract suites open each backend and break it from outside.

The suites in this package talk to the ports only: one suite per store role (alert log, runs,
audit log, approvals, and the whole store's lifecycle). Whatever is specific to a backend (how
to open it, how to break it from outside) lives in its harness. To add a store implementation:
write a harness class with the same methods, add its name to STORE_IMPLEMENTATIONS and one
branch to the `store_harness` fixture (tests/adapters/store/conftest.py). The PostgreSQL
harness lives in `tests/adapters/store/postgres_harness.py` (its server comes from
`tests/support/postgres_service.py`); the sample records the suites store are in
`tests/support/records.py`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from responder.adapters.store.sqlite.store import THREAD_NAME, SqliteStore
from responder.ports.store import AlertLog, Store

STORE_IMPLEMENTATIONS = ["sqlite", "postgres"]


class StoreHarness(Protocol):
    """What the store suite needs from an implementation besides the port itself."""

    name: str

    async def open(self, *, timeout_seconds: float = 5.0, batch_max: int = 256) -> Store: ...
    async def open_unusable(self) -> Store: ...
    def commits(self, store: AlertLog) -> int | None: ...
    def write_lock_held(self) -> AbstractContextManager[None]: ...
    def commits_failing(self) -> AbstractContextManager[None]: ...
    def tamper_with_audit(self, statement: Literal["update", "delete"]) -> BaseException | None: ...
    def audit_log(self) -> list[tuple[str, str, dict[str, Any]]]: ...
    async def aclose(self) -> None: ...


class SqliteHarness:
    """Opens SqliteStores on one file and breaks that file from a second connection."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._opened: list[SqliteStore] = []
        self._threads_before = set(threading.enumerate())

    async def open(self, *, timeout_seconds: float = 5.0, batch_max: int = 256) -> Store:
        """Open (or reopen) the store under test."""
        store = await SqliteStore.open(
            self.path, timeout_seconds=timeout_seconds, batch_max=batch_max
        )
        self._opened.append(store)
        return store

    async def open_unusable(self) -> Store:
        """Open a store whose location cannot hold a database (must raise)."""
        bad = self.path.parent / "not-a-file.db"
        bad.mkdir(parents=True)
        return await SqliteStore.open(bad, timeout_seconds=2.0, batch_max=8)

    def commits(self, store: AlertLog) -> int | None:
        """Write transactions committed so far, or None if the implementation cannot tell."""
        assert isinstance(store, SqliteStore)
        return store.commits

    def _raw(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, timeout=5.0)

    @contextmanager
    def write_lock_held(self) -> Iterator[None]:
        """Another connection holds the database's write lock meanwhile."""
        with closing(self._raw()) as raw:
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                raw.execute("ROLLBACK")

    @contextmanager
    def commits_failing(self) -> Iterator[None]:
        """Every COMMIT that wrote an alert or a probe row fails meanwhile.

        A trigger adds a row that breaks a DEFERRED foreign key: statements succeed, COMMIT
        fails, exactly like a commit that hits a full disk.
        """
        with closing(self._raw()) as raw:
            raw.execute("CREATE TABLE poison_parent (id INTEGER PRIMARY KEY)")
            raw.execute(
                "CREATE TABLE poison (id INTEGER REFERENCES poison_parent (id) "
                "DEFERRABLE INITIALLY DEFERRED)"
            )
            for table in ("alerts", "writable_probe"):
                raw.execute(
                    f"CREATE TRIGGER poison_{table} AFTER INSERT ON {table} "
                    "BEGIN INSERT INTO poison (id) VALUES (42); END"
                )
            try:
                yield
            finally:
                for table in ("alerts", "writable_probe"):
                    raw.execute(f"DROP TRIGGER poison_{table}")
                raw.execute("DROP TABLE poison")
                raw.execute("DROP TABLE poison_parent")

    def tamper_with_audit(self, statement: Literal["update", "delete"]) -> BaseException | None:
        """Try to change audit rows behind the store's back; the error raised, if any."""
        sql = {
            "update": "UPDATE audit_events SET reason = 'tampered'",
            "delete": "DELETE FROM audit_events",
        }[statement]
        with closing(self._raw()) as raw:
            try:
                raw.execute(sql)
            except sqlite3.DatabaseError as exc:
                return exc
        return None

    def audit_log(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, actor, details) of every audit row, in insertion order, read directly."""
        with closing(self._raw()) as raw:
            rows = raw.execute("SELECT kind, actor, details_json FROM audit_events ORDER BY id")
            return [(kind, actor, json.loads(details)) for kind, actor, details in rows]

    async def aclose(self) -> None:
        """Close every store opened here; fail if a writer thread outlives its store."""
        for store in self._opened:
            await store.close()
        left = [
            t
            for t in threading.enumerate()
            if t.name == THREAD_NAME and t not in self._threads_before
        ]
        assert not left, f"writer threads still running after close: {left}"
