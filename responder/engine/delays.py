"""The poller that ends `for:` delays and expires approvals: both wait in the store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from responder.engine.pipeline import Claimed, Pipeline

log = structlog.get_logger("responder.engine")


class DelayPoller:
    """Every `interval` seconds, claim due pending runs and execute them in named tasks."""

    def __init__(
        self, pipeline: Pipeline, interval: float, expire: Callable[[], Awaitable[int]]
    ) -> None:
        self._pipeline = pipeline
        self._expire = expire
        self._interval = interval
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start polling."""
        self._loop_task = asyncio.create_task(self._loop(), name="responder-delays")

    async def _loop(self) -> None:
        while True:
            try:
                for claimed in await self._pipeline.fire_due():
                    self._spawn(claimed)
                await self._expire()
            except Exception:
                if _cancelling():
                    raise  # a library turned our cancellation into an error: stop anyway
                log.exception("delay_poll_failed", hint="retrying at the next poll")
            await asyncio.sleep(self._interval)

    def _spawn(self, claimed: Claimed) -> None:
        task = asyncio.create_task(
            self._pipeline.execute_claimed(claimed), name=f"responder-run:{claimed.run.run_id}"
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    @property
    def running(self) -> int:
        """Runs started by the poller and still executing."""
        return len(self._running)

    async def close(self, grace_seconds: float) -> None:
        """Stop polling; let started runs finish for `grace_seconds`, then cancel them."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._running:
            _, pending = await asyncio.wait(list(self._running), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def _cancelling() -> bool:
    """Whether the current task has been asked to stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
