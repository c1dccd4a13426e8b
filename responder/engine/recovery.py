"""Start-up recovery: requeue alerts never processed, settle runs the last process left open."""

from __future__ import annotations

import asyncio

import structlog

from responder.core.transitions import cancel_open_steps, move_run
from responder.engine.intake import AlertQueue
from responder.engine.recording import RunRecorder
from responder.models.runs import AuditKind, RunState
from responder.ports import Clock, Store

log = structlog.get_logger("responder.engine")

ABANDON_REASON = "process stopped while the run was running; not resumed so that no step runs twice"
RECOVERY_BATCH = 100_000


async def settle_open_runs(store: Store, recorder: RunRecorder, clock: Clock) -> int:
    """Mark runs that were running (or waiting on an in-process `for:` timer) as abandoned.

    Runs waiting for an approval are left as they are: the approval can still come.
    Returns how many runs were abandoned.
    """
    abandoned = 0
    for run in await store.open_runs():
        if run.state not in (RunState.RUNNING, RunState.PENDING):
            continue
        now = clock.now()
        reason = (
            ABANDON_REASON
            if run.state is RunState.RUNNING
            else "process stopped during the rule's for: delay; the alert will be re-evaluated "
            "if it is delivered again"
        )
        done = move_run(cancel_open_steps(run, now, "abandoned"), RunState.ABANDONED, now, reason)
        await recorder.save(done)
        await recorder.audit(AuditKind.RUN_ABANDONED, done, reason=reason)
        recorder.run_finished(done)
        abandoned += 1
    return abandoned


async def requeue_unprocessed(store: Store, queue: AlertQueue) -> int:
    """Feed alerts received but never processed back to the workers, oldest first."""
    pending = await store.unprocessed_alerts(RECOVERY_BATCH)
    for stored in pending:
        await queue.put_waiting(stored)
    if pending:
        log.info("alerts_recovered", count=len(pending))
    return len(pending)


def start_requeue(store: Store, queue: AlertQueue) -> asyncio.Task[int]:
    """Run `requeue_unprocessed` in a named background task (it may wait for queue room)."""
    return asyncio.create_task(requeue_unprocessed(store, queue), name="responder-recovery")
