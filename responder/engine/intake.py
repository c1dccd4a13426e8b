"""Durable intake: reserve queue room, record the delivery, then hand alerts to the workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from responder.errors import ResponderError
from responder.metrics import Metrics
from responder.models.alerts import Alert, Delivery
from responder.models.runs import StoredAlert
from responder.ports.clock import Clock
from responder.ports.store import AlertLog


class QueueFullError(ResponderError):
    """No room for more alerts now; the sender should retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"alert queue is full; retry after {retry_after}s")


class DrainingError(ResponderError):
    """The daemon is shutting down and takes no new alerts; another replica should."""


@dataclass
class AlertQueue:
    """A bounded FIFO of stored alerts: room is reserved before the store write."""

    capacity: int
    metrics: Metrics

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[StoredAlert] = asyncio.Queue()
        self._reserved = 0
        self._room = asyncio.Condition()
        self.metrics.queue_capacity.set(self.capacity)

    @property
    def depth(self) -> int:
        """Alerts queued or reserved."""
        return self._queue.qsize() + self._reserved

    def reserve(self, count: int, retry_after: int) -> None:
        """Reserve room for `count` alerts or raise QueueFullError.

        A delivery larger than the whole queue is still taken when the queue is empty, so a
        big grouped payload cannot be refused forever.
        """
        if self.depth and self.depth + count > self.capacity:
            raise QueueFullError(retry_after)
        self._reserved += count

    def release(self, count: int) -> None:
        """Give back reserved room that will not be used (the store write failed)."""
        self._reserved -= count

    def put_reserved(self, alerts: list[StoredAlert], reserved: int) -> None:
        """Queue alerts whose room was reserved."""
        if not alerts and not reserved:
            return  # a delivery no rule wants: the depth did not change
        self._reserved -= reserved
        for alert in alerts:
            self._queue.put_nowait(alert)
        self.metrics.queue_depth.set(self.depth)

    async def put_waiting(self, alert: StoredAlert) -> None:
        """Queue an alert, waiting for room (start-up recovery)."""
        async with self._room:
            await self._room.wait_for(lambda: self.depth < self.capacity)
            self._queue.put_nowait(alert)
        self.metrics.queue_depth.set(self.depth)

    async def get(self) -> StoredAlert:
        """Take the next alert (waits)."""
        alert = await self._queue.get()
        self.metrics.queue_depth.set(self.depth)
        return alert

    async def done(self) -> None:
        """Mark the last alert taken as handled; wakes waiting producers."""
        self._queue.task_done()
        async with self._room:
            self._room.notify_all()

    async def join(self) -> None:
        """Wait until every queued alert has been handled."""
        await self._queue.join()


@dataclass(frozen=True)
class Accepted:
    """What `Intake.accept` wrote: every alert, and those queued for a worker (a rule may act
    on them, or they are resolutions); the others were written already processed."""

    stored: list[StoredAlert]
    queued: list[StoredAlert]


class Intake:
    """What a webhook calls: nothing is acknowledged before it is written down."""

    def __init__(
        self,
        alert_log: AlertLog,
        queue: AlertQueue,
        metrics: Metrics,
        clock: Clock,
        *,
        retry_after: int,
        needs_processing: Callable[[Alert], bool],
    ) -> None:
        self._alert_log = alert_log
        self._queue = queue
        self._metrics = metrics
        self._clock = clock
        self._retry_after = retry_after
        self._needs_processing = needs_processing
        self.draining = False

    def refuse_early(self) -> None:
        """Raise what `accept` would raise for any delivery now: shutting down.

        Called before the body is read and parsed. A full queue is not refused here: the
        alerts no rule acts on are taken whatever the queue holds (see `accept`), so only the
        parsed delivery can tell.
        """
        if self.draining:
            raise DrainingError("responder is shutting down; retry against another replica")

    async def accept(self, delivery: Delivery) -> Accepted:
        """Record the delivery durably and queue the alerts a rule may act on.

        An alert no rule matches (and not a resolution, which may end waiting runs) is
        written already processed and never queued: in a storm of unrelated alerts the
        workers keep to the ones that matter, and a full queue refuses (503) only deliveries
        holding alerts that need a worker. Raises if the delivery cannot be taken.
        """
        if self.draining:
            raise DrainingError("responder is shutting down; retry against another replica")
        wanted = [self._needs_processing(alert) for alert in delivery.alerts]
        count = sum(wanted)
        if count:
            self._queue.reserve(count, self._retry_after)
        try:
            stored = await self._alert_log.record_delivery(
                delivery, self._clock.now(), settled=[not w for w in wanted]
            )
        except BaseException:
            self._queue.release(count)
            raise
        queued = [s for s, w in zip(stored, wanted, strict=True) if w]
        self._queue.put_reserved(queued, count)
        return Accepted(stored=stored, queued=queued)
