"""RunRecorder: a step transition writes the run's row and only the steps that changed.

The first save of a run here writes it whole (`save_run`); while it runs, each later save
names only the steps that differ from what this recorder last wrote (`save_steps`); after a
failed save, a park or a change of the step list, the next save writes the run whole again.
The store always ends up holding the run exactly as it was last saved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path

import pytest

from responder.adapters.clock import SystemClock
from responder.adapters.store.sqlite.store import SqliteStore
from responder.engine.recording import RunRecorder
from responder.errors import StoreUnavailableError
from responder.metrics import Metrics
from responder.models.runs import AuditEvent, RunRecord, RunState, StepRecord, StepState
from tests.support.records import T0, make_run


class CountingStore(SqliteStore):
    """A SQLite store that notes which write each save used (and can refuse the next one)."""

    calls: list[tuple[str, tuple[str, ...] | None]]
    refuse_next: bool = False

    async def save_run(self, run: RunRecord, audit: Sequence[AuditEvent] = ()) -> None:
        self.calls.append(("save_run", None))
        self._maybe_refuse()
        await super().save_run(run, audit)

    async def save_steps(
        self, run: RunRecord, step_ids: Collection[str], audit: Sequence[AuditEvent] = ()
    ) -> None:
        self.calls.append(("save_steps", tuple(step_ids)))
        self._maybe_refuse()
        await super().save_steps(run, step_ids, audit)

    def _maybe_refuse(self) -> None:
        if self.refuse_next:
            self.refuse_next = False
            raise StoreUnavailableError("refused for the test")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    opened = await CountingStore.open(tmp_path / "r.db", timeout_seconds=5.0, batch_max=16)
    assert isinstance(opened, CountingStore)
    opened.calls = []
    yield opened
    await opened.close()


def _recorder(store: SqliteStore) -> RunRecorder:
    return RunRecorder(
        run_store=store, audit_log=store, metrics=Metrics.create(), clock=SystemClock()
    )


def _move(run: RunRecord, step_id: str, state: StepState) -> tuple[RunRecord, StepRecord]:
    step = run.step(step_id).model_copy(update={"state": state, "started_at": T0})
    steps = tuple(step if s.step_id == step_id else s for s in run.steps)
    return run.model_copy(update={"steps": steps}), step


async def test_each_transition_writes_only_the_step_it_moved(store: CountingStore) -> None:
    recorder = _recorder(store)
    run = make_run("r1")
    run, step = _move(run, "state", StepState.RUNNING)
    await recorder.step(run, step)
    run, step = _move(run, "state", StepState.SUCCEEDED)
    await recorder.step(run, step)
    assert await store.get_run("r1") == run
    run, step = _move(run, "reset", StepState.RUNNING)
    await recorder.step(run, step)
    run, step = _move(run, "reset", StepState.SUCCEEDED)
    await recorder.step(run, step)
    run = run.model_copy(update={"state": RunState.SUCCEEDED})
    await recorder.save(run)
    assert await store.get_run("r1") == run
    assert store.calls == [
        ("save_run", None),
        ("save_steps", ("state",)),
        ("save_steps", ("reset",)),
        ("save_steps", ("reset",)),
        ("save_steps", ()),  # the run's row only
    ]
    assert len(await store.audit_for_run("r1")) == 4

    store.calls.clear()  # finished: forgotten, so a later save (a resume) writes it whole
    await recorder.save(run)
    assert store.calls == [("save_run", None)]


async def test_after_a_failed_save_the_next_writes_the_run_whole(store: CountingStore) -> None:
    recorder = _recorder(store)
    run, step = _move(make_run("r1"), "state", StepState.RUNNING)
    await recorder.step(run, step)
    run, step = _move(run, "state", StepState.SUCCEEDED)
    store.refuse_next = True
    with pytest.raises(StoreUnavailableError):
        await recorder.step(run, step)
    await recorder.step(run, step)
    assert [name for name, _ in store.calls] == ["save_run", "save_steps", "save_run"]
    assert await store.get_run("r1") == run


async def test_a_parked_run_or_a_new_step_list_is_written_whole(store: CountingStore) -> None:
    recorder = _recorder(store)
    run, step = _move(make_run("r1"), "state", StepState.RUNNING)
    await recorder.step(run, step)
    fewer = run.model_copy(update={"steps": run.steps[:1]})
    await recorder.save(fewer)  # a different list of steps: replaced
    assert await store.get_run("r1") == fewer
    parked, _ = _move(run, "reset", StepState.WAITING_APPROVAL)
    parked = parked.model_copy(update={"state": RunState.WAITING_APPROVAL})
    await recorder.save(parked)
    resumed = parked.model_copy(update={"state": RunState.RUNNING})
    await recorder.save(resumed)  # resumed: whoever resumed it may have written it meanwhile
    assert [name for name, _ in store.calls] == ["save_run", "save_run", "save_run", "save_run"]
    assert await store.get_run("r1") == resumed
