"""Replica liveness leases, and the sweep that abandons runs whose replica died."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from responder.core.transitions import cancel_open_steps, move_run
from responder.engine.recording import RunRecorder
from responder.errors import CoordinationUnavailableError
from responder.models.runs import AuditKind, RunState
from responder.ports.clock import Clock
from responder.ports.coordination import Coordinator
from responder.ports.store import RunStore

log = structlog.get_logger("responder.engine")

ABANDON_REASON = (
    "the replica running it stopped (its lease expired); not resumed so that no step runs twice"
)


class Leases:
    """Keeps this replica's lease fresh and abandons runs of replicas whose lease expired."""

    def __init__(
        self,
        coordinator: Coordinator,
        run_store: RunStore,
        recorder: RunRecorder,
        clock: Clock,
        *,
        instance_id: str,
        lease: timedelta,
    ) -> None:
        self._coordinator = coordinator
        self._run_store = run_store
        self._recorder = recorder
        self._clock = clock
        self.instance_id = instance_id
        self._lease = lease
        self._task: asyncio.Task[None] | None = None

    async def renew(self) -> None:
        """Refresh this replica's lease (raises CoordinationUnavailableError)."""
        await self._coordinator.start_cooldown(f"replica:{self.instance_id}", self._lease)

    async def alive(self, owner: str | None) -> bool:
        """Whether `owner` holds a lease now (raises CoordinationUnavailableError)."""
        if owner is None:
            return False
        if owner == self.instance_id:
            return True
        return await self._coordinator.cooldown_remaining(f"replica:{owner}") is not None

    async def sweep(self) -> int:
        """Abandon runs whose replica is gone; returns how many were abandoned.

        That is running runs, and pending runs without `not_before` (saved, about to start:
        a `for:` delay always sets `not_before`, and those are resumed by any replica).
        When coordination is unavailable nothing is abandoned (liveness is unknown).
        """
        abandoned = 0
        for run in await self._run_store.open_runs():
            starting = run.state is RunState.PENDING and run.not_before is None
            if run.state is not RunState.RUNNING and not starting:
                continue
            try:
                if await self.alive(run.owner):
                    continue
            except CoordinationUnavailableError:
                return abandoned
            now = self._clock.now()
            done = cancel_open_steps(run, now, "abandoned")
            done = move_run(done, RunState.ABANDONED, now, ABANDON_REASON)
            if await self._run_store.replace_run_if(done, run.state):
                await self._recorder.audit(
                    AuditKind.RUN_ABANDONED,
                    done,
                    reason=ABANDON_REASON,
                    details={"owner": run.owner or "", "swept_by": self.instance_id},
                )
                self._recorder.run_finished(done)
                abandoned += 1
        return abandoned

    def start(self) -> None:
        """Renew the lease every third of its length and sweep once per lease length."""
        self._task = asyncio.create_task(self._loop(), name="responder-leases")

    async def _loop(self) -> None:
        period = self._lease.total_seconds() / 3
        ticks = 0
        while True:
            try:
                await self.renew()
                if ticks % 3 == 2:
                    count = await self.sweep()
                    if count:
                        log.warning("runs_abandoned", count=count, reason=ABANDON_REASON)
            except CoordinationUnavailableError as exc:
                log.warning("lease_renewal_failed", error=str(exc))
            except Exception:
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    raise  # a library turned our cancellation into an error: stop anyway
                log.exception("lease_loop_failed")
            ticks += 1
            await asyncio.sleep(period)

    async def close(self) -> None:
        """Stop renewing (the lease then expires by itself)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
