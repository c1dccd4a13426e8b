"""The whole store: writability, closing, reopening, timeouts and failing commits, on both
backends (fixtures: conftest.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from responder.errors import StoreUnavailableError
from responder.models.approvals import ApprovalState
from responder.models.runs import AuditEvent, AuditKind, StepRecord
from responder.ports.store import Store
from tests.adapters.store.harnesses import StoreHarness
from tests.support.records import FULL, T0, make_alert, make_approval, make_delivery, make_run


async def test_data_survives_close_and_reopen(store_harness: StoreHarness, store: Store) -> None:
    stored = await store.record_delivery(make_delivery(make_alert(1)), T0)
    await store.save_run(make_run("r1"))
    await store.append_audit([AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="r1")])
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailableError):
        await store.record_delivery(make_delivery(make_alert(2)), T0)
    reopened = await store_harness.open()
    assert await reopened.unprocessed_alerts(10) == stored
    assert await reopened.get_run("r1") == make_run("r1")
    assert len(await reopened.audit_for_run("r1")) == 1
    await reopened.check_writable()


async def test_approvals_survive_close_and_reopen(
    store_harness: StoreHarness, store: Store
) -> None:
    await store.save_run(make_run("r1"))
    await store.save_approval(FULL)
    await store.save_approval(make_approval("a-pending"))
    await store.close()
    with pytest.raises(StoreUnavailableError):
        await store.get_approval("a-full")
    reopened = await store_harness.open()
    assert await reopened.get_approval("a-full") == FULL
    assert await reopened.list_approvals(ApprovalState.PENDING) == [make_approval("a-pending")]


async def test_failed_commit_fails_every_waiter_and_keeps_nothing(
    store_harness: StoreHarness, store: Store
) -> None:
    await store.check_writable()
    with store_harness.commits_failing():
        results = await asyncio.gather(
            *(store.record_delivery(make_delivery(make_alert(n)), T0) for n in range(10)),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreUnavailableError) for r in results), results
        with pytest.raises(StoreUnavailableError, match="check"):
            await store.check_writable()
    assert await store.unprocessed_alerts(100) == []
    await store.check_writable()
    assert len(await store.record_delivery(make_delivery(make_alert(1)), T0)) == 1


async def test_a_failing_write_does_not_take_concurrent_writes_down(store: Store) -> None:
    step = StepRecord(step_id="same", action="http.request")
    # The model refuses duplicate step ids; built without validation, the store must still
    # refuse them alone, without failing the writes batched with it.
    broken = make_run("broken").model_copy(update={"steps": (step, step)})
    results = await asyncio.gather(
        *(store.record_delivery(make_delivery(make_alert(n)), T0) for n in range(5)),
        store.save_run(broken),
        store.save_run(make_run("fine")),
        return_exceptions=True,
    )
    assert isinstance(results[5], StoreUnavailableError)
    assert not [r for r in results[:5] + results[6:] if isinstance(r, BaseException)]
    assert len(await store.unprocessed_alerts(10)) == 5
    assert await store.get_run("broken") is None
    assert await store.get_run("fine") == make_run("fine")


async def test_calls_are_bounded_by_the_timeout(store_harness: StoreHarness) -> None:
    store = await store_harness.open(timeout_seconds=0.3)
    with store_harness.write_lock_held():
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="check"):
            await store.record_delivery(make_delivery(make_alert(1)), T0)
        assert time.monotonic() - started < 2.0
    await store.check_writable()


async def test_unusable_location_fails_to_open(store_harness: StoreHarness) -> None:
    with pytest.raises(StoreUnavailableError, match="check"):
        await store_harness.open_unusable()
