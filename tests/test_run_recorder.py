"""RunRecorder: a run's audit events are written in the same store call as its state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from responder.adapters.clock import SystemClock
from responder.adapters.sqlite_store import SqliteStore
from responder.engine.recording import RunRecorder
from responder.errors import StoreUnavailableError
from responder.metrics import Metrics
from responder.models.alerts import Source
from responder.models.runs import AuditKind, RunRecord, RunState, StepRecord, StepState

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _run(run_id: str, *steps: StepRecord) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        rule_id="rule-a",
        alert_id=1,
        source=Source.ALERTMANAGER,
        fingerprint="f1",
        alert_identity=f"alertmanager:f1:{run_id}",
        guard_key="rule-a:k",
        idempotency_key="i",
        state=RunState.RUNNING,
        dry_run=False,
        created_at=T0,
        updated_at=T0,
        steps=steps or (StepRecord(step_id="look", action="http.request"),),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "r.db", timeout_seconds=5.0, batch_max=16)
    yield opened
    await opened.close()


async def test_a_deferred_event_is_written_with_the_runs_first_save(store: SqliteStore) -> None:
    recorder = RunRecorder(store, Metrics.create(), SystemClock())
    run = _run("r1")
    recorder.defer(recorder.event(AuditKind.RULE_MATCHED, run))
    assert await store.get_run("r1") is None
    assert await store.audit_for_run("r1") == []  # nothing written on its own

    step = run.steps[0].model_copy(update={"state": StepState.RUNNING, "started_at": T0})
    started = run.model_copy(update={"steps": (step,)})
    await recorder.step(started, step)
    assert await store.get_run("r1") == started
    kinds = [e.kind for e in await store.audit_for_run("r1")]
    assert kinds == [AuditKind.RULE_MATCHED, AuditKind.STEP_STARTED]

    await recorder.save(started)  # written once, not again
    assert len(await store.audit_for_run("r1")) == 2


async def test_a_failed_save_keeps_the_deferred_events_for_the_next(store: SqliteStore) -> None:
    recorder = RunRecorder(store, Metrics.create(), SystemClock())
    step = StepRecord(step_id="same", action="http.request")
    broken = _run("r2").model_copy(update={"steps": (step, step)})  # the store refuses it
    recorder.defer(recorder.event(AuditKind.RULE_MATCHED, broken))
    with pytest.raises(StoreUnavailableError):
        await recorder.save(broken)
    assert await store.audit_for_run("r2") == []
    await recorder.save(_run("r2"))
    assert [e.kind for e in await store.audit_for_run("r2")] == [AuditKind.RULE_MATCHED]


async def test_forgotten_events_are_never_written(store: SqliteStore) -> None:
    recorder = RunRecorder(store, Metrics.create(), SystemClock())
    recorder.defer(recorder.event(AuditKind.RULE_MATCHED, _run("r3")))
    recorder.forget("r3")
    await recorder.save(_run("r3"))
    assert await store.audit_for_run("r3") == []
    with pytest.raises(ValueError, match="about a run"):
        recorder.defer(recorder.event(AuditKind.RULE_MATCHED, rule_id="rule-a"))
