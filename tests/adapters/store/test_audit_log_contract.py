"""The AuditLog contract: both store backends must pass these (fixtures: conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from responder.models.runs import AuditEvent, AuditKind
from responder.ports.store import AuditLog
from tests.adapters.store.harnesses import StoreHarness
from tests.support.records import CEST, T0


async def test_audit_appends_and_reads_oldest_first(audit_log: AuditLog) -> None:
    events = [
        AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="r1", rule_id="rule-a", alert_id=1),
        AuditEvent(kind=AuditKind.STEP_STARTED, at=T0, run_id="r1", step_id="state"),
        AuditEvent(
            kind=AuditKind.STEP_SKIPPED,
            at=T0 + timedelta(seconds=1),
            run_id="r1",
            step_id="reset",
            reason="cooldown",
            details={"remaining_seconds": 12.5, "keys": ["a", "b"]},
        ),
        AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="r2", actor="alice"),
    ]
    await audit_log.append_audit(events[:2])
    await audit_log.append_audit(events[2:])
    late = AuditEvent(kind=AuditKind.RUN_FINISHED, at=T0 + timedelta(minutes=5), run_id="r1")
    early = AuditEvent(kind=AuditKind.ALERT_RECEIVED, at=T0 - timedelta(minutes=1), run_id="r1")
    await audit_log.append_audit([late, early])  # oldest first means by `at`, then append order
    assert await audit_log.audit_for_run("r1") == [early, *events[:3], late]
    assert await audit_log.audit_for_run("r2") == [events[3]]
    assert await audit_log.audit_for_run("nope") == []
    await audit_log.append_audit([])


async def test_a_long_audit_append_keeps_its_order(audit_log: AuditLog) -> None:
    # more events than one PostgreSQL statement holds (AUDIT_ROWS_PER_STATEMENT), all at one
    # time: only the append order sorts them
    events = [
        AuditEvent(kind=AuditKind.STEP_STARTED, at=T0, run_id="long", step_id=f"s{i}")
        for i in range(1_201)
    ]
    await audit_log.append_audit(events)
    await audit_log.append_audit(events[:1])
    assert await audit_log.audit_for_run("long") == [*events, events[0]]


async def test_audit_rows_cannot_be_updated_or_deleted(
    store_harness: StoreHarness, audit_log: AuditLog
) -> None:
    event = AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="r1")
    await audit_log.append_audit([event])
    for statement in ("update", "delete"):
        error = store_harness.tamper_with_audit(statement)
        assert error is not None, f"audit {statement} was allowed"
        assert "append-only" in str(error)
    assert await audit_log.audit_for_run("r1") == [event]


async def test_prune_audit_deletes_old_events_and_audits_itself(
    store_harness: StoreHarness, audit_log: AuditLog
) -> None:
    day = timedelta(days=1)
    old = [
        AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0 - (100 + i) * day, run_id="r1")
        for i in range(3)
    ]
    edge = AuditEvent(kind=AuditKind.STEP_STARTED, at=T0 - 90 * day, run_id="r1")  # kept
    new = AuditEvent(kind=AuditKind.RUN_FINISHED, at=T0, run_id="r1", reason="ok")
    await audit_log.append_audit([*old, edge, new])
    cutoff = (T0 - 90 * day).astimezone(CEST)
    assert await audit_log.prune_audit(cutoff, "cli:alice@ops") == 3
    assert await audit_log.audit_for_run("r1") == [edge, new]
    pruned = ("audit_pruned", "cli:alice@ops", {"cutoff": "2024-02-01T12:00:00+00:00", "count": 3})
    assert store_harness.audit_log()[-1] == pruned
    assert await audit_log.prune_audit(cutoff, "cli:bob@ops") == 0  # nothing left, still audited
    log = store_harness.audit_log()
    assert [kind for kind, _, _ in log] == [
        "step_started",
        "run_finished",
        "audit_pruned",
        "audit_pruned",
    ]
    assert log[-1][1:] == ("cli:bob@ops", {"cutoff": pruned[2]["cutoff"], "count": 0})
    for statement in ("update", "delete"):  # outside prune, the log is immutable again
        error = store_harness.tamper_with_audit(statement)
        assert error is not None, f"audit {statement} was allowed after a prune"
        assert "append-only" in str(error)
    assert len(store_harness.audit_log()) == 4
    with pytest.raises(ValueError, match="naive"):
        await audit_log.prune_audit(datetime(2024, 1, 1), "cli:alice@ops")


async def test_nul_characters_in_event_details_are_kept(audit_log: AuditLog) -> None:
    output = {"body": "a\x00b", "nested": ["\x00"]}  # JSON columns keep it as written
    event = AuditEvent(kind=AuditKind.STEP_FAILED, at=T0, run_id="r1", details=output)
    await audit_log.append_audit([event])
    assert await audit_log.audit_for_run("r1") == [event]
