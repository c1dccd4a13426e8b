"""The RunStore `save_steps` contract (a step transition writes only what changed): both store
backends must pass these (fixtures: conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from responder.models.runs import AuditEvent, AuditKind, RunRecord, RunState, StepState
from responder.ports.store import AuditLog, RunStore, Store
from tests.adapters.store.harnesses import StoreHarness
from tests.support.records import T0, make_run


def _moved(run: RunRecord, step_id: str, state: StepState, minutes: int = 1) -> RunRecord:
    """`run` with step `step_id` moved to `state` and the run's `updated_at` advanced."""
    at = T0 + timedelta(minutes=minutes)
    steps = tuple(
        s.model_copy(update={"state": state, "started_at": at}) if s.step_id == step_id else s
        for s in run.steps
    )
    return run.model_copy(update={"steps": steps, "updated_at": at})


def _event(run: RunRecord, kind: AuditKind, step_id: str | None = None) -> AuditEvent:
    return AuditEvent(kind=kind, at=T0, run_id=run.run_id, rule_id=run.rule_id, step_id=step_id)


async def test_a_first_save_names_every_step_and_inserts_the_run(
    run_store: RunStore, audit_log: AuditLog
) -> None:
    run = make_run("r1")
    started = _event(run, AuditKind.RUN_PLANNED)
    await run_store.save_steps(run, [s.step_id for s in run.steps], [started])
    assert await run_store.get_run("r1") == run
    assert [e.kind for e in await audit_log.audit_for_run("r1")] == [AuditKind.RUN_PLANNED]


async def test_a_transition_writes_the_run_row_and_only_the_named_steps(
    run_store: RunStore, audit_log: AuditLog
) -> None:
    run = make_run("r1")
    await run_store.save_run(run)
    moved = _moved(run, "state", StepState.SUCCEEDED)
    moved = moved.model_copy(update={"state": RunState.SUCCEEDED, "reason": "done"})
    done = _event(run, AuditKind.STEP_SUCCEEDED, "state")
    await run_store.save_steps(moved, ["state"], [done])
    assert await run_store.get_run("r1") == moved
    assert [e.step_id for e in await audit_log.audit_for_run("r1")] == ["state"]

    # a step not named stays as stored, even if the record passed differs
    both = _moved(_moved(moved, "reset", StepState.RUNNING), "state", StepState.FAILED, 2)
    await run_store.save_steps(both, ["reset"])
    stored = await run_store.get_run("r1")
    assert stored is not None
    assert [s.state for s in stored.steps] == [StepState.SUCCEEDED, StepState.RUNNING]
    assert stored.updated_at == both.updated_at
    assert [s.step_id for s in stored.steps] == ["state", "reset"]  # positions kept


async def test_an_unknown_step_id_is_refused_and_nothing_is_written(
    run_store: RunStore, audit_log: AuditLog
) -> None:
    run = make_run("r1")
    with pytest.raises(ValueError, match="no-such-step"):
        await run_store.save_steps(
            run, ["state", "no-such-step"], [_event(run, AuditKind.RUN_PLANNED)]
        )
    assert await run_store.get_run("r1") is None
    assert await audit_log.audit_for_run("r1") == []


async def test_concurrent_transitions_share_commits_and_each_lands_whole(
    store_harness: StoreHarness, store: Store
) -> None:
    runs = [make_run(f"r{i}", idempotency_key=f"idem-{i}") for i in range(40)]
    for run in runs:
        await store.save_run(run)
    before = store_harness.commits(store)
    moved = [_moved(run, "reset", StepState.SUCCEEDED) for run in runs]
    await asyncio.gather(
        *(
            store.save_steps(run, ["reset"], [_event(run, AuditKind.STEP_SUCCEEDED, "reset")])
            for run in moved
        )
    )
    after = store_harness.commits(store)
    if before is not None and after is not None:
        assert after - before < len(runs) // 2, "concurrent step writes share commits"
    for run in moved:
        assert await store.get_run(run.run_id) == run
        assert [e.step_id for e in await store.audit_for_run(run.run_id)] == ["reset"]


async def test_writes_of_one_run_in_one_batch_land_in_call_order(run_store: RunStore) -> None:
    run = make_run("r1")
    first = _moved(run, "state", StepState.RUNNING)
    second = _moved(first, "state", StepState.SUCCEEDED, 2)
    third = _moved(second, "reset", StepState.RUNNING, 3)
    await asyncio.gather(
        run_store.save_steps(first, ["state", "reset"]),
        run_store.save_steps(second, ["state"]),
        run_store.save_steps(third, ["reset"]),
    )
    assert await run_store.get_run("r1") == third
