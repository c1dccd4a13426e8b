"""Named, cancellable timers for runs waiting on a rule's `for:` delay."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog

log = structlog.get_logger("responder.engine")

Fire = Callable[[str, Any], Awaitable[None]]


class Timers:
    """One asyncio task per waiting run; cancelled on resolution or shutdown."""

    def __init__(self, fire: Fire) -> None:
        self._fire = fire
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def schedule(self, run_id: str, until: datetime, now: datetime, payload: Any) -> None:
        """Call `fire(run_id, payload)` at `until` (wall time, relative to `now`)."""
        self.cancel(run_id)
        delay = max(0.0, (until - now).total_seconds())
        task = asyncio.create_task(self._wait(run_id, delay, payload), name=f"for-timer:{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(
            lambda t: self._tasks.pop(run_id, None) if self._tasks.get(run_id) is t else None
        )

    async def _wait(self, run_id: str, delay: float, payload: Any) -> None:
        await asyncio.sleep(delay)
        try:
            await self._fire(run_id, payload)
        except Exception:
            log.exception("timer_failed", run_id=run_id)

    def cancel(self, run_id: str) -> None:
        """Stop the timer of `run_id`, if any."""
        task = self._tasks.pop(run_id, None)
        if task is not None:
            task.cancel()

    @property
    def pending(self) -> int:
        """Timers still waiting."""
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every timer and wait for them to end."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
