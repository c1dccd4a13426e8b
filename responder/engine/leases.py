"""Replica liveness leases, and the sweep that takes over runs whose replica died.

A run's owner renews its lease every third of its length. A run still running (or saved and
about to start) whose owner holds no lease is taken over: one replica wins an exclusive claim
on (run, previous owner), continues it through the one resume path (`Resumer.take_over`) and
executes what is left in the background. At start-up the runs this replica's name owned before
the restart count as dead too (no run of this process exists yet).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from responder.engine.resuming import Claimed, Resumer
from responder.errors import CoordinationUnavailableError
from responder.models.runs import RunRecord, RunState
from responder.ports.clock import Clock
from responder.ports.coordination import Coordinator
from responder.ports.store import RunStore

log = structlog.get_logger("responder.engine")


class Leases:
    """Keeps this replica's lease fresh and takes over runs of replicas whose lease expired."""

    def __init__(
        self,
        coordinator: Coordinator,
        run_store: RunStore,
        clock: Clock,
        *,
        resumer: Resumer,
        instance_id: str,
        lease: timedelta,
    ) -> None:
        self._coordinator = coordinator
        self._run_store = run_store
        self._clock = clock
        self._resumer = resumer
        self.instance_id = instance_id
        self._lease = lease
        self._task: asyncio.Task[None] | None = None
        self._continuing: set[asyncio.Task[None]] = set()  # taken-over runs executing

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

    async def sweep(self, *, at_start: bool = False) -> int:
        """Take over runs whose replica is gone; returns how many were taken over.

        That is running runs, and pending runs without `not_before` (saved, about to start:
        a `for:` delay always sets `not_before`, and those are resumed by any replica).
        `at_start`: before this process started any run, so runs owned by this replica's
        name were left by its previous process, and each takeover (re-checks, read-backs) is
        done before returning. When coordination is unavailable nothing is taken over
        (liveness is unknown). Each taken-over run executes in the background.
        """
        taken = 0
        for run in await self._run_store.open_runs():
            starting = run.state is RunState.PENDING and run.not_before is None
            if run.state is not RunState.RUNNING and not starting:
                continue
            try:
                mine_before = at_start and run.owner == self.instance_id
                if not mine_before and await self.alive(run.owner):
                    continue
                # exactly one replica continues it (the store's compare-and-set is on the
                # run's state only, which a takeover keeps)
                key = f"takeover:{run.run_id}:{run.owner}:{run.updated_at.isoformat()}"
                if not await self._coordinator.claim(key, self._lease * 4):
                    continue
            except CoordinationUnavailableError:
                return taken
            taken += 1
            # at start, before serving, the takeover itself (re-checks, read-backs) is awaited;
            # later it never holds up the lease renewal of this loop
            claimed = await self._resumer.take_over(run) if at_start else None
            if claimed is not None or not at_start:
                task = asyncio.create_task(self._continue(run, claimed), name="responder-takeover")
                self._continuing.add(task)
                task.add_done_callback(self._continuing.discard)
        return taken

    async def _continue(self, run: RunRecord, claimed: Claimed | None) -> None:
        """Take `run` over (unless `claimed` already is) and execute what is left of it."""
        try:
            if claimed is None:
                claimed = await self._resumer.take_over(run)
            if claimed is not None:
                await self._resumer.execute(claimed)
        except Exception:
            log.exception("takeover_failed", run_id=run.run_id, rule=run.rule_id)

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
                        log.warning("runs_taken_over", count=count)
            except CoordinationUnavailableError as exc:
                log.warning("lease_renewal_failed", error=str(exc))
            except Exception:
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    raise  # a library turned our cancellation into an error: stop anyway
                log.exception("lease_loop_failed")
            ticks += 1
            await asyncio.sleep(period)

    async def close(self, drain_seconds: float = 0.0) -> None:
        """Stop renewing (the lease then expires by itself); give taken-over runs still
        executing `drain_seconds`, then cut them off (they are taken over again later)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._continuing:
            _, late = await asyncio.wait(set(self._continuing), timeout=max(drain_seconds, 0.0))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
