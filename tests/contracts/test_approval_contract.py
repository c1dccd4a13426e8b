"""The Store contract for approval requests: every Store implementation must pass these.

Also: databases made by the schema version before approvals held the whole model (SQLite
version 2, PostgreSQL 0001) migrate forward and then store approvals.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from responder.adapters import migrating
from responder.adapters.postgres_store import PostgresStore
from responder.adapters.sqlite_schema import MIGRATIONS, to_text
from responder.adapters.sqlite_store import SqliteStore
from responder.errors import StoreUnavailableError
from responder.models.approvals import Approval, ApprovalState
from responder.ports import Store
from tests.contracts import CEST, T0, StoreHarness, make_run
from tests.contracts.test_store_contract import harness, store

__all__ = ["harness", "store"]  # the fixtures, shared with the store suite
MINUTE = timedelta(minutes=1)


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


def decided(approval: Approval, state: ApprovalState, by: str = "alice") -> Approval:
    """`approval` decided by `by` one minute after it was requested."""
    update = {"state": state, "decided_by": by, "decided_at": approval.requested_at + MINUTE}
    return approval.model_copy(update=update)


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


async def test_every_field_round_trips(store: Store) -> None:
    await store.save_approval(FULL)
    got = await store.get_approval("a-full")
    assert got == FULL
    assert got is not None
    for at in (got.requested_at, got.expires_at, got.decided_at):
        assert at is not None
        assert at.utcoffset() == timedelta(0)
    assert got.approvers == ("alice", "group:sre", "zoë")
    minimal = make_approval("a-min")  # defaults: no approvers, params, decision or comment
    await store.save_approval(minimal)
    assert await store.get_approval("a-min") == minimal
    assert await store.get_approval("missing") is None


async def test_save_twice_replaces(store: Store) -> None:
    await store.save_approval(make_approval("a1"))
    changed = make_approval("a1", approvers=("bob",), params={"x": 1}, comment="again")
    await store.save_approval(changed)
    assert await store.get_approval("a1") == changed
    assert await store.list_approvals() == [changed]


async def test_naive_times_and_bad_limits_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.save_approval(make_approval("a1", requested_at=datetime(2024, 5, 1)))
    assert await store.get_approval("a1") is None
    with pytest.raises(ValueError, match="limit"):
        await store.list_approvals(limit=0)
    with pytest.raises(ValueError, match="limit"):
        await store.expired_approvals(T0, 0)


async def test_replace_approval_if_decides_once(store: Store) -> None:
    pending = make_approval("a1")
    approved = decided(pending, ApprovalState.APPROVED)
    assert not await store.replace_approval_if(approved, ApprovalState.PENDING)  # absent
    assert await store.get_approval("a1") is None
    await store.save_approval(pending)
    approved = approved.model_copy(update={"comment": "go", "source_ip": "10.0.0.7"})
    assert await store.replace_approval_if(approved, ApprovalState.PENDING)
    assert await store.get_approval("a1") == approved
    for state in (ApprovalState.APPROVED, ApprovalState.REJECTED, ApprovalState.EXPIRED):
        again = decided(pending, state, by="mallory")
        assert not await store.replace_approval_if(again, ApprovalState.PENDING)
    assert await store.get_approval("a1") == approved  # the first decision stands


async def test_every_state_is_storable_and_only_pending_changes(store: Store) -> None:
    for state in ApprovalState:
        await store.save_approval(make_approval(f"a-{state.value}", state=state))
        assert (await store.get_approval(f"a-{state.value}")) == make_approval(
            f"a-{state.value}", state=state
        )
    cancelled = make_approval("a-pending", state=ApprovalState.CANCELLED, comment="resolved")
    assert await store.replace_approval_if(cancelled, ApprovalState.PENDING)
    assert not await store.replace_approval_if(make_approval("a-pending"), ApprovalState.PENDING)
    assert await store.get_approval("a-pending") == cancelled


async def test_concurrent_decisions_have_exactly_one_winner(
    harness: StoreHarness, store: Store
) -> None:
    other = await harness.open()  # a second replica on the same database
    for round_ in range(5):
        pending = make_approval(f"a{round_}")
        await store.save_approval(pending)
        approve = decided(pending, ApprovalState.APPROVED, by="alice")
        reject = decided(pending, ApprovalState.REJECTED, by="bob")
        results = await asyncio.gather(
            store.replace_approval_if(approve, ApprovalState.PENDING),
            other.replace_approval_if(reject, ApprovalState.PENDING),
        )
        assert results.count(True) == 1, results
        winner = approve if results[0] else reject
        assert await other.get_approval(pending.approval_id) == winner
        assert await store.get_approval(pending.approval_id) == winner


async def test_list_approvals_filters_newest_first_with_a_limit(store: Store) -> None:
    made = [
        make_approval(f"a{i}", requested_at=T0 + i * MINUTE, run_id=run_id, state=state)
        for i, run_id, state in [
            (1, "r1", ApprovalState.APPROVED),
            (2, "r2", ApprovalState.PENDING),
            (3, "r1", ApprovalState.PENDING),
            (4, "r2", ApprovalState.REJECTED),
            (5, "r1", ApprovalState.PENDING),
        ]
    ]
    made.append(make_approval("a6", requested_at=made[-1].requested_at, run_id="r3"))  # a tie
    for approval in reversed(made):
        await store.save_approval(approval)
    newest = sorted(made, key=lambda a: (a.requested_at, a.approval_id), reverse=True)
    assert [a.approval_id for a in newest] == ["a6", "a5", "a4", "a3", "a2", "a1"]
    assert await store.list_approvals() == newest
    pending = await store.list_approvals(ApprovalState.PENDING)
    assert [a.approval_id for a in pending] == ["a6", "a5", "a3", "a2"]
    by_run = await store.list_approvals(run_id="r1")
    assert [a.approval_id for a in by_run] == ["a5", "a3", "a1"]
    both = await store.list_approvals(ApprovalState.PENDING, run_id="r1")
    assert [a.approval_id for a in both] == ["a5", "a3"]
    assert [a.approval_id for a in await store.list_approvals(limit=2)] == ["a6", "a5"]
    assert await store.list_approvals(ApprovalState.PENDING, run_id="r2", limit=1) == [made[1]]
    assert await store.list_approvals(ApprovalState.CANCELLED) == []
    assert await store.list_approvals(run_id="nope") == []


async def test_expired_approvals_are_pending_and_due_oldest_expiry_first(store: Store) -> None:
    for approval_id, state, expires_at in [
        ("now", ApprovalState.PENDING, T0 + 3 * MINUTE),  # expires exactly now: included
        ("early", ApprovalState.PENDING, T0 + MINUTE),
        ("tie-b", ApprovalState.PENDING, T0 + 2 * MINUTE),
        ("tie-a", ApprovalState.PENDING, T0 + 2 * MINUTE),
        ("future", ApprovalState.PENDING, T0 + 10 * MINUTE),
        ("approved", ApprovalState.APPROVED, T0),
        ("rejected", ApprovalState.REJECTED, T0),
        ("expired", ApprovalState.EXPIRED, T0),
        ("cancelled", ApprovalState.CANCELLED, T0),
    ]:
        await store.save_approval(make_approval(approval_id, state=state, expires_at=expires_at))
    now = (T0 + 3 * MINUTE).astimezone(CEST)
    found = await store.expired_approvals(now, 10)
    assert [a.approval_id for a in found] == ["early", "tie-a", "tie-b", "now"]
    assert found[0] == make_approval("early", expires_at=T0 + MINUTE)
    assert [a.approval_id for a in await store.expired_approvals(now, 2)] == ["early", "tie-a"]
    assert await store.expired_approvals(T0, 10) == []


async def test_approvals_survive_close_and_reopen(harness: StoreHarness, store: Store) -> None:
    await store.save_run(make_run("r1"))
    await store.save_approval(FULL)
    await store.save_approval(make_approval("a-pending"))
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.get_approval("a-full")
    reopened = await harness.open()
    assert await reopened.get_approval("a-full") == FULL
    assert await reopened.list_approvals(ApprovalState.PENDING) == [make_approval("a-pending")]


# -- migrating forward ------------------------------------------------------------------------


async def test_sqlite_files_of_the_previous_version_migrate_forward(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    previous = MIGRATIONS[-2][0]
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for version, statements in MIGRATIONS[:-1]:
            for statement in statements:
                raw.execute(statement)
            raw.execute("INSERT INTO schema_version VALUES (?, ?)", (version, to_text(T0)))
        columns = {row[1] for row in raw.execute("PRAGMA table_info(approvals)")}
        assert "id" in columns  # the old shape, with a row that the migration drops
        raw.execute(
            "INSERT INTO approvals (id, run_id, step_id, requested_at, expires_at) "
            "VALUES ('old', 'r1', 'restart', ?, ?)",
            (to_text(T0), to_text(T0)),
        )
    store = await SqliteStore.open(path, timeout_seconds=5, batch_max=8)
    try:
        await store.save_approval(FULL)
        assert await store.get_approval("a-full") == FULL
        cancelled = make_approval("a1", state=ApprovalState.CANCELLED)
        await store.save_approval(cancelled)  # refused by the old CHECK
        assert await store.list_approvals(ApprovalState.CANCELLED) == [cancelled]
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as raw:
        versions = [v for (v,) in raw.execute("SELECT version FROM schema_version")]
        assert versions == [*range(1, previous + 1), MIGRATIONS[-1][0]]
        indexes = {row[1] for row in raw.execute("PRAGMA index_list(approvals)")}
        assert {"approvals_by_state", "approvals_pending", "approvals_by_run"} <= indexes


async def test_postgres_at_version_1_migrates_to_2(postgres_database: str) -> None:
    shipped = migrating.shipped_migrations()
    assert [m.name for m in shipped[:2]] == ["0001_initial", "0002_approvals"]
    assert await migrating.migrate(postgres_database, timeout_seconds=10, migrations=shipped[:1])
    with pytest.raises(StoreUnavailableError, match="0002_approvals"):
        await PostgresStore.open(postgres_database, timeout_seconds=5)
    applied = await migrating.migrate(postgres_database, timeout_seconds=10)
    assert applied == [m.name for m in shipped[1:]]
    store = await PostgresStore.open(postgres_database, timeout_seconds=5)
    try:
        await store.save_approval(FULL)
        assert await store.get_approval("a-full") == FULL
        pending = make_approval("a1")
        await store.save_approval(pending)
        cancelled = pending.model_copy(update={"state": ApprovalState.CANCELLED})
        assert await store.replace_approval_if(cancelled, ApprovalState.PENDING)
        assert await store.list_approvals(run_id="r1") == [FULL, cancelled]
    finally:
        await store.close()
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'approvals'"
        ).fetchall()
    assert {"approvals_by_state", "approvals_pending", "approvals_by_run"} <= {
        name for (name,) in rows
    }
