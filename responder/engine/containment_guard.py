"""What stands between a containment step and its execution: storm brake and step lock."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from responder.errors import CoordinationUnavailableError
from responder.models.plans import PlannedStep
from responder.models.rules import Budget
from responder.models.runs import RunRecord, SkipReason
from responder.ports.coordination import Coordinator

STORM_KEY = "storm:containment"
LOCK_MARGIN = timedelta(seconds=30)


class StormAction(StrEnum):
    """What happens to containment once the storm brake is on."""

    APPROVAL = "approval"  # every further containment step waits for a human
    SKIP = "skip"  # every further containment step is skipped


@dataclass(frozen=True)
class StormPolicy:
    """At most `limit` containment steps across all rules per `window`, then `action`."""

    limit: int
    window: timedelta
    action: StormAction


class Entry(StrEnum):
    """The guard's answer for one containment step."""

    PROCEED = "proceed"
    SKIP = "skip"
    WAIT_APPROVAL = "wait_approval"


@dataclass(frozen=True)
class GuardDecision:
    """PROCEED carries the lock to release afterwards; SKIP/WAIT_APPROVAL carry a reason."""

    entry: Entry
    reason: SkipReason | None = None
    lock_key: str | None = None
    token: str | None = None


class ContainmentGuard:
    """Storm brake across all rules, then a short lock so one replica runs the step."""

    def __init__(self, coordinator: Coordinator, storm: StormPolicy) -> None:
        self._coordinator = coordinator
        self._storm = storm

    async def enter(
        self, run: RunRecord, step: PlannedStep, now: datetime, *, approved: bool
    ) -> GuardDecision:
        """Decide whether this containment step may run now (fails closed)."""
        try:
            if not approved:
                budget = Budget(max=self._storm.limit, per=self._storm.window)
                if not await self._coordinator.take_budget(STORM_KEY, [budget], now):
                    entry = (
                        Entry.WAIT_APPROVAL
                        if self._storm.action is StormAction.APPROVAL
                        else Entry.SKIP
                    )
                    return GuardDecision(entry, SkipReason.STORM_BRAKE)
            key = f"lock:{run.idempotency_key}:{step.step_id}"
            token = await self._coordinator.acquire_lock(key, step.timeout + LOCK_MARGIN)
        except CoordinationUnavailableError:
            return GuardDecision(Entry.SKIP, SkipReason.COORDINATION_UNAVAILABLE)
        if token is None:
            return GuardDecision(Entry.SKIP, SkipReason.DUPLICATE)
        return GuardDecision(Entry.PROCEED, lock_key=key, token=token)

    async def leave(self, decision: GuardDecision) -> None:
        """Release the step lock (it expires by itself if Redis is away now)."""
        if decision.lock_key and decision.token:
            with contextlib.suppress(CoordinationUnavailableError):
                await self._coordinator.release_lock(decision.lock_key, decision.token)
