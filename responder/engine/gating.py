"""The gate between a plan and its execution: dedup, `for:` delay, cooldown, budget, dry-run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from responder.errors import CoordinationUnavailableError
from responder.models.alerts import Alert
from responder.models.durations import format_duration
from responder.models.plans import Plan
from responder.models.runs import SkipReason
from responder.ports.coordination import Coordinator


class Verdict(StrEnum):
    """What the gate decided."""

    PROCEED = "proceed"
    DELAY = "delay"
    SKIP = "skip"


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer; `reason` for SKIP, `until` for DELAY, `detail` for humans.

    `blocked` (with PROCEED) lets the diagnostics run while every containment step is skipped
    with that reason: how the gate fails closed when coordination is unavailable.
    """

    verdict: Verdict
    reason: SkipReason | None = None
    until: datetime | None = None
    detail: str = ""
    blocked: SkipReason | None = None


PROCEED = GateDecision(Verdict.PROCEED)


class Gate:
    """Applies the guards of a plan, in a fixed order, against the coordinator."""

    def __init__(self, coordinator: Coordinator, *, dedup_ttl: timedelta) -> None:
        self._coordinator = coordinator
        self._dedup_ttl = dedup_ttl

    async def claim(self, dedup_key: str) -> GateDecision | None:
        """Dedup first (before planning): None when this replica owns the alert occurrence."""
        try:
            first = await self._coordinator.claim(f"dedup:{dedup_key}", self._dedup_ttl)
        except CoordinationUnavailableError as exc:
            return _degraded(exc)
        if not first:
            return GateDecision(
                Verdict.SKIP, SkipReason.DUPLICATE, detail="this alert occurrence already ran"
            )
        return None

    async def admit(self, plan: Plan, alert: Alert, now: datetime) -> GateDecision:
        """After a successful claim: the `for:` delay, then the guards."""
        until = delay_until(plan, alert, now)
        if until is not None:
            return GateDecision(
                Verdict.DELAY, until=until, detail=f"for: until {until.isoformat()}"
            )
        return await self.guards(plan, now)

    async def guards(self, plan: Plan, now: datetime) -> GateDecision:
        """Cooldown and budget for the plan's guard key; dry-run checks without consuming."""
        cooldown_key = f"cooldown:{plan.guard_key}"
        try:
            # check-and-start in one atomic step: concurrent alerts of one key (a storm, on
            # several workers or replicas) start exactly one run; dry-run only looks
            remaining = (
                await self._coordinator.begin_cooldown(cooldown_key, plan.cooldown)
                if plan.cooldown and not plan.dry_run
                else await self._coordinator.cooldown_remaining(cooldown_key)
            )
            if remaining is not None:
                return GateDecision(
                    Verdict.SKIP,
                    SkipReason.COOLDOWN,
                    detail=f"{plan.guard_key} cooling down for {int(remaining.total_seconds())}s",
                )
            budget_key = f"budget:{plan.guard_key}"
            if plan.budgets:
                allowed = (
                    await self._coordinator.budget_allows(budget_key, plan.budgets, now)
                    if plan.dry_run
                    else await self._coordinator.take_budget(budget_key, plan.budgets, now)
                )
                if not allowed:
                    limits = ", ".join(
                        f"{b.max} per {format_duration(b.per)}" for b in plan.budgets
                    )
                    return GateDecision(
                        Verdict.SKIP,
                        SkipReason.BUDGET_EXHAUSTED,
                        detail=f"{plan.guard_key} used its budget ({limits})",
                    )
        except CoordinationUnavailableError as exc:
            return _degraded(exc)
        return PROCEED


def _degraded(exc: CoordinationUnavailableError) -> GateDecision:
    """Fail closed: without coordination no containment runs, but diagnostics still do."""
    return GateDecision(
        Verdict.PROCEED,
        detail=f"coordination unavailable, containment skipped: {exc}",
        blocked=SkipReason.COORDINATION_UNAVAILABLE,
    )


def delay_until(plan: Plan, alert: Alert, now: datetime) -> datetime | None:
    """When a rule with `for:` may act on this alert, or None if it may act now.

    `for:` counts from the alert's own `starts_at` (as Prometheus does), so an alert that has
    already been firing long enough is not delayed again.
    """
    if plan.for_ is None or plan.for_.total_seconds() <= 0:
        return None
    start = alert.starts_at if alert.starts_at and alert.starts_at <= now else now
    until = start + plan.for_
    return until if until > now else None
