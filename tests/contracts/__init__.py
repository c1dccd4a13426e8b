"""Harnesses and sample records that let one contract suite run against every implementation.

The suites in this package talk to the ports only: one suite per store role (alert log, runs,
audit log, approvals, and the whole store's lifecycle), one for the coordinator. Whatever is
specific to an implementation (how to open it, how to break it from outside, how its clock
moves) lives in a harness here. To add a store implementation: write a harness class with the
same methods, add its name to STORE_IMPLEMENTATIONS and one branch to the `store_harness`
fixture (tests/contracts/conftest.py). The PostgreSQL harness lives in
`tests/contracts/postgres_harness.py` (its server comes from `tests/postgres_service.py`),
coordinator harnesses in `tests/contracts/coordinator_harnesses.py`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

from responder.adapters.store.sqlite.store import THREAD_NAME, SqliteStore
from responder.models.alerts import Alert, AlertStatus, Delivery, Source
from responder.models.approvals import Approval, ApprovalState
from responder.models.runs import RunRecord, RunState, StepRecord
from responder.ports.store import AlertLog, Store
from tests.contracts.postgres_harness import PostgresHarness as PostgresHarness

STORE_IMPLEMENTATIONS = ["sqlite", "postgres"]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))
MINUTE = timedelta(minutes=1)


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


def make_alert(n: int, **overrides: object) -> Alert:
    """A firing Alertmanager alert with non-ASCII labels, an offset start time and raw data."""
    values: dict[str, object] = {
        "source": Source.ALERTMANAGER,
        "name": f"Alert{n}",
        "status": AlertStatus.FIRING,
        "labels": {"alertname": f"Alert{n}", "namespace": "shop", "ünï": "cödé ✓"},
        "annotations": {"summary": "it broke"},
        "severity": "critical",
        "fingerprint": f"fp{n}",
        "starts_at": datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=CEST),
        "raw": {"nested": {"list": [1, 2.5, "x", None, True]}, "n": n},
    }
    values.update(overrides)
    return Alert.model_validate(values)


def make_delivery(*alerts: Alert, delivery_id: str = "d1") -> Delivery:
    """One Alertmanager delivery of `alerts`."""
    return Delivery(source=Source.ALERTMANAGER, delivery_id=delivery_id, alerts=alerts)


def make_run(run_id: str, **overrides: object) -> RunRecord:
    """A running run of rule-a with two planned steps, created at T0."""
    values: dict[str, object] = {
        "run_id": run_id,
        "rule_id": "rule-a",
        "alert_id": 1,
        "source": Source.ALERTMANAGER,
        "fingerprint": "fp1",
        "alert_identity": "alertmanager:fp1:-:firing",
        "guard_key": "shop/api",
        "idempotency_key": f"idem-{run_id}",
        "state": RunState.RUNNING,
        "created_at": T0,
        "updated_at": T0,
        "steps": (
            StepRecord(step_id="state", action="http.request", params={"url": "http://x"}),
            StepRecord(step_id="reset", action="circuit_breaker.reset"),
        ),
    }
    values.update(overrides)
    return RunRecord.model_validate(values)


def make_approval(approval_id: str, **overrides: object) -> Approval:
    """A pending approval of step `restart` of run r1, requested at T0 for 30 minutes."""
    values: dict[str, object] = {
        "approval_id": approval_id,
        "run_id": "r1",
        "step_id": "restart",
        "rule_id": "rule-a",
        "reason": "rule",
        "requested_at": T0,
        "expires_at": T0 + 30 * MINUTE,
        "action": "k8s.rollout_restart",
    }
    values.update(overrides)
    return Approval.model_validate(values)


FULL = make_approval(
    "a-full",
    state=ApprovalState.APPROVED,
    reason="storm_brake",
    requested_at=datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=CEST),
    expires_at=datetime(2024, 5, 1, 14, 30, tzinfo=CEST),
    approvers=("alice", "group:sre", "zoë"),
    params={"namespace": "shop", "note": "cödé ✓ 漢字", "nested": {"n": [1, 2.5, None, True]}},
    decided_by="alice",
    decided_at=datetime(2024, 5, 1, 12, 10, tzinfo=UTC),
    comment="ok — restart it, the breaker stays open",
    source_ip="2001:db8::1",
)
"""An approval with every field set, non-ASCII text, offset times and nested params."""
