"""RunRecorder: a run's audit events are written in the same store call as its state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from responder.adapters.clock import SystemClock
from responder.adapters.store.sqlite.store import SqliteStore
from responder.engine.recording import RunRecorder
from responder.errors import StoreUnavailableError
from responder.metrics import Metrics
from responder.models.runs import AuditKind, StepRecord, StepState
from tests.support.records import T0, make_run


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "r.db", timeout_seconds=5.0, batch_max=16)
    yield opened
    await opened.close()


async def test_a_deferred_event_is_written_with_the_runs_first_save(store: SqliteStore) -> None:
    recorder = RunRecorder(
        run_store=store, audit_log=store, metrics=Metrics.create(), clock=SystemClock()
    )
    run = make_run("r1")
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
    recorder = RunRecorder(
        run_store=store, audit_log=store, metrics=Metrics.create(), clock=SystemClock()
    )
    step = StepRecord(step_id="same", action="http.request")
    broken = make_run("r2").model_copy(update={"steps": (step, step)})  # the store refuses it
    recorder.defer(recorder.event(AuditKind.RULE_MATCHED, broken))
    with pytest.raises(StoreUnavailableError):
        await recorder.save(broken)
    assert await store.audit_for_run("r2") == []
    await recorder.save(make_run("r2"))
    assert [e.kind for e in await store.audit_for_run("r2")] == [AuditKind.RULE_MATCHED]


async def test_forgotten_events_are_never_written(store: SqliteStore) -> None:
    recorder = RunRecorder(
        run_store=store, audit_log=store, metrics=Metrics.create(), clock=SystemClock()
    )
    recorder.defer(recorder.event(AuditKind.RULE_MATCHED, make_run("r3")))
    recorder.forget("r3")
    await recorder.save(make_run("r3"))
    assert await store.audit_for_run("r3") == []
    with pytest.raises(ValueError, match="about a run"):
        recorder.defer(recorder.event(AuditKind.RULE_MATCHED, rule_id="rule-a"))
