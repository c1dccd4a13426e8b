"""Start-up recovery: requeue alerts received but never processed (runs: see leases)."""

from __future__ import annotations

import asyncio

import structlog

from responder.engine.intake import AlertQueue
from responder.models.runs import StoredAlert
from responder.ports.store import AlertLog

log = structlog.get_logger("responder.engine")

RECOVERY_BATCH = 100_000


async def unprocessed_at_start(alert_log: AlertLog) -> list[StoredAlert]:
    """Alerts a previous process acknowledged but never processed, oldest first.

    Read before the server accepts requests, so that alerts received from now on (which go
    to the queue directly) are never queued twice.
    """
    pending = await alert_log.unprocessed_alerts(RECOVERY_BATCH)
    if pending:
        log.info("alerts_recovered", count=len(pending))
    return pending


async def requeue(queue: AlertQueue, pending: list[StoredAlert]) -> int:
    """Feed recovered alerts back to the workers, waiting for room in the queue."""
    for stored in pending:
        await queue.put_waiting(stored)
    return len(pending)


def start_requeue(queue: AlertQueue, pending: list[StoredAlert]) -> asyncio.Task[int]:
    """Run `requeue` in a named background task (it may wait for queue room)."""
    return asyncio.create_task(requeue(queue, pending), name="responder-recovery")
