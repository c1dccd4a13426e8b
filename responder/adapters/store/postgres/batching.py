"""Joins concurrent PostgreSQL writes of one kind into one statement.

A call made while a batch of its kind is being written is queued; when that write ends, the
next batch takes the calls queued meanwhile, in order (at most `batch_max` calls, and at most
`weight_max` in summed weight unless one call alone weighs more). Each caller awaits its own
result, so N concurrent callers cost about one round trip and one commit per batch instead of
one each, and a lone caller is written at once, without waiting for company.

If a batch's write raises and `fails_alone(error)` says the cause may lie in one item (the
data, not the connection), each call of the batch is written again on its own, so one bad
item fails alone. Otherwise (the server is gone, the pool timed out) every call of the batch
gets the error at once. A caller that gave up (timed out, was cancelled) before its batch
started is left out of it; one whose batch had started may still have been written.

With a `timeout`, no caller waits longer than that (give or take a tenth): one timer per
batcher sweeps the waiting calls and fails the overdue ones with TimeoutError, whether their
batch has started or not. A timer per call (`asyncio.timeout` around each `submit`) was 7% of
the CPU of a 1-alert webhook.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass(eq=False)
class _Call(Generic[ItemT, ResultT]):
    item: ItemT
    weight: int
    future: asyncio.Future[ResultT]
    deadline: float


class Batcher(Generic[ItemT, ResultT]):
    """Queues `submit`ted items and writes them in batches with `write` (one result per item,
    in order), on one task per event loop at a time."""

    def __init__(
        self,
        write: Callable[[list[ItemT]], Awaitable[list[ResultT]]],
        *,
        name: str,
        batch_max: int,
        fails_alone: Callable[[Exception], bool],
        weight: Callable[[ItemT], int] = lambda _: 1,
        weight_max: int | None = None,
        timeout: float | None = None,
    ) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be >= 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.statements = 0  # writes started (batches, and items redone alone), for tests
        self._write_items = write
        self._name = name
        self._batch_max = batch_max
        self._fails_alone = fails_alone
        self._weight = weight
        self._weight_max = weight_max
        self._queue: deque[_Call[ItemT, ResultT]] = deque()
        self._writing: list[_Call[ItemT, ResultT]] = []  # the batch being written
        self._task: asyncio.Task[None] | None = None
        self._timeout = timeout
        self._sweep: asyncio.TimerHandle | None = None

    async def submit(self, item: ItemT) -> ResultT:
        """Queue `item` and wait until the batch holding it is written; its result.

        Raises what the write raised. Cancelling the wait (a caller's timeout) leaves the item
        out if its batch has not started.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout if self._timeout is not None else math.inf
        future: asyncio.Future[ResultT] = loop.create_future()
        call = _Call(item, self._weight(item), future, deadline)
        self._queue.append(call)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=self._name)
        if self._timeout is not None and self._sweep is None:
            self._sweep = loop.call_later(self._timeout / 10, self._fail_overdue, loop)
        return await call.future

    def _fail_overdue(self, loop: asyncio.AbstractEventLoop) -> None:
        """The sweep: fail every waiting call past its deadline; again while any waits."""
        self._sweep = None
        now = loop.time()
        for call in (*self._writing, *self._queue):
            if call.deadline <= now and not call.future.done():
                call.future.set_exception(TimeoutError(f"{self._name}: not written in time"))
        if self._queue and any(call.future.done() for call in self._queue):
            self._queue = deque(call for call in self._queue if not call.future.done())
        if self._timeout is not None and (self._queue or self._writing):
            self._sweep = loop.call_later(self._timeout / 10, self._fail_overdue, loop)

    async def idle(self) -> None:
        """Wait until every queued item has been written or has failed."""
        task = self._task
        if task is not None and not task.done():
            await asyncio.shield(task)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._take()
            if batch:
                await self._write(batch)

    def _take(self) -> list[_Call[ItemT, ResultT]]:
        batch: list[_Call[ItemT, ResultT]] = []
        weight = 0
        while self._queue and len(batch) < self._batch_max:
            call = self._queue[0]
            if call.future.done():  # its caller gave up before it was written
                self._queue.popleft()
                continue
            too_heavy = self._weight_max is not None and weight + call.weight > self._weight_max
            if batch and too_heavy:
                break
            batch.append(self._queue.popleft())
            weight += call.weight
        return batch

    async def _write(self, batch: list[_Call[ItemT, ResultT]]) -> None:
        self._writing = batch  # the sweep's to fail when overdue, redone alone or not
        try:
            await self._write_batch(batch)
        finally:
            self._writing = []

    async def _write_batch(self, batch: list[_Call[ItemT, ResultT]]) -> None:
        self.statements += 1
        try:
            results = await self._write_items([call.item for call in batch])
        except Exception as exc:
            if len(batch) > 1 and self._fails_alone(exc):
                for call in batch:
                    if not call.future.done():
                        await self._write_batch([call])
                return
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(exc)
        except BaseException:  # cancelled (shutdown): nobody may wait forever
            for call in batch:
                call.future.cancel()
            raise
        else:
            for call, result in zip(batch, results, strict=True):
                if not call.future.done():
                    call.future.set_result(result)
