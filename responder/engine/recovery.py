"""Start-up recovery: requeue alerts received but never processed (runs: see leases)."""

from __future__ import annotations

import asyncio

import structlog

from responder.engine.intake import AlertQueue
from responder.ports import Store

log = structlog.get_logger("responder.engine")

RECOVERY_BATCH = 100_000


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
