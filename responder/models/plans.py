"""What the planner produces for one (rule, alert) pair: rendered steps and guard keys."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from responder.models.rules import Budget


class ActionClass(StrEnum):
    """Diagnostics only read; containment changes something and is gated harder."""

    DIAGNOSTIC = "diagnostic"
    CONTAINMENT = "containment"


class PlannedStep(BaseModel):
    """A step with its parameters rendered and validated against the action's params model.

    `params` is None when the step's templates read earlier step results (`steps.*`): those
    are rendered just before the step runs, and `template` keeps the unrendered text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str
    action: str
    action_class: ActionClass
    params: dict[str, Any] | None
    template: dict[str, Any]
    condition: str | None = None
    approval_required: bool = False
    approval_ttl: timedelta | None = None
    approvers: tuple[str, ...] = ()
    timeout: timedelta
    continue_on_failure: bool = False


class Plan(BaseModel):
    """Everything needed to gate and run one rule for one alert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_id: str
    alert_identity: str
    guard_key: str
    dedup_key: str
    idempotency_key: str
    for_: timedelta | None = None
    cooldown: timedelta | None = None
    budgets: tuple[Budget, ...] = ()
    dry_run: bool = False
    steps: tuple[PlannedStep, ...]

    @property
    def has_containment(self) -> bool:
        """Whether any step changes something (and so is subject to cooldown and budget)."""
        return any(s.action_class is ActionClass.CONTAINMENT for s in self.steps)
