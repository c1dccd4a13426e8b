"""The bounded worker pool that drains the alert queue, and the graceful drain on shutdown."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from responder.engine.intake import AlertQueue, Intake
from responder.engine.pipeline import Pipeline

log = structlog.get_logger("responder.engine")


class WorkerPool:
    """N named worker tasks; one failing alert never stops a worker."""

    def __init__(self, queue: AlertQueue, pipeline: Pipeline, size: int) -> None:
        self._queue = queue
        self._pipeline = pipeline
        self._size = size
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the workers."""
        self._tasks = [
            asyncio.create_task(self._work(), name=f"responder-worker-{i}")
            for i in range(self._size)
        ]

    async def _work(self) -> None:
        while True:
            stored = await self._queue.get()
            try:
                await self._pipeline.process(stored)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "alert_processing_failed",
                    alert_id=stored.alert_id,
                    hint="the alert stays unprocessed and is picked up again at the next start",
                )
            finally:
                await self._queue.done()

    async def drain(self, intake: Intake, grace_seconds: float) -> bool:
        """Stop intake, let queued alerts finish for up to `grace_seconds`, then stop.

        Returns True when everything finished in time. Steps still running at the end are
        recorded as cancelled and their runs as abandoned (by the executor).
        """
        intake.draining = True
        finished = True
        try:
            async with asyncio.timeout(grace_seconds):
                await self._queue.join()
        except TimeoutError:
            finished = False
            log.warning("drain_timeout", grace_seconds=grace_seconds, queued=self._queue.depth)
        await self.stop()
        return finished

    async def stop(self) -> None:
        """Cancel the workers and wait for them."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
