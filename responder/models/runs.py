"""Runs, steps and audit events: the records of every decision the engine makes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from responder.models.alerts import Alert, Delivery, Source


class RunState(StrEnum):
    """Life cycle of one rule run for one alert."""

    PENDING = "pending"  # waiting for the rule's `for:` delay
    WAITING_APPROVAL = "waiting_approval"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


class StepState(StrEnum):
    """Life cycle of one step of a run."""

    PLANNED = "planned"
    SKIPPED = "skipped"
    WAITING_APPROVAL = "waiting_approval"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # a containment step whose replica died mid-call: it may have acted. Settled by the
    # action's read-back after a takeover (succeeded, run again, or parked for approval);
    # final only when nothing could settle it (never recorded as `cancelled`)
    OUTCOME_UNKNOWN = "outcome_unknown"


TERMINAL_RUN_STATES = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.SKIPPED, RunState.CANCELLED, RunState.ABANDONED}
)
TERMINAL_STEP_STATES = frozenset(
    {
        StepState.SKIPPED,
        StepState.SUCCEEDED,
        StepState.FAILED,
        StepState.CANCELLED,
        StepState.OUTCOME_UNKNOWN,
    }
)


class SkipReason(StrEnum):
    """Why something did not run: a bounded set, used in audit records and metric labels."""

    DUPLICATE = "duplicate"
    DRY_RUN = "dry_run"
    COOLDOWN = "cooldown"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CONDITION_FALSE = "condition_false"
    PREVIOUS_STEP_FAILED = "previous_step_failed"
    ALERT_RESOLVED = "alert_resolved"
    RULE_DISABLED = "rule_disabled"
    PLAN_INVALID = "plan_invalid"
    NOT_ALLOWED = "not_allowed"
    DRAINING = "draining"
    COORDINATION_UNAVAILABLE = "coordination_unavailable"
    STORM_BRAKE = "storm_brake"
    APPROVAL_REJECTED = "approval_rejected"
    APPROVAL_EXPIRED = "approval_expired"


class StepRecord(BaseModel):
    """One step as recorded: rendered (redacted) params, outcome, timing.

    `params` is the request the step would send as its action describes it before the call
    (a value only known at run time shows as a `<...>` placeholder); `sent` is that request
    with those values filled in as the action reported sending them (redacted; null until
    the step ran, or when the action raised before reporting); `instance` is the replica
    (settings `instance_id`) that ran or skipped the step.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str
    action: str
    state: StepState = StepState.PLANNED
    reason: str | None = None
    params: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    instance: str | None = None
    sent: dict[str, Any] | None = None


class RunRecord(BaseModel):
    """One rule run for one alert, with its steps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    rule_id: str
    alert_id: int
    source: Source
    fingerprint: str
    alert_identity: str
    guard_key: str
    idempotency_key: str
    state: RunState
    reason: str | None = None
    dry_run: bool = False
    created_at: datetime
    updated_at: datetime
    not_before: datetime | None = None
    owner: str | None = None  # the replica executing it (its liveness lease decides abandonment)
    steps: tuple[StepRecord, ...] = ()

    @model_validator(mode="after")
    def _unique_steps(self) -> RunRecord:
        ids = [s.step_id for s in self.steps]
        if len(ids) != len(set(ids)):
            raise ValueError(f"run {self.run_id} has duplicate step ids: {ids}")
        return self

    def step(self, step_id: str) -> StepRecord:
        """The step with this id (KeyError if the run has none)."""
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(step_id)


class AuditKind(StrEnum):
    """The vocabulary shared by audit records, log events and metrics."""

    ALERT_RECEIVED = "alert_received"
    RULE_MATCHED = "rule_matched"
    RUN_PLANNED = "run_planned"
    RUN_SKIPPED = "run_skipped"
    RUN_DELAYED = "run_delayed"
    RUN_FINISHED = "run_finished"
    RUN_CANCELLED = "run_cancelled"
    RUN_ABANDONED = "run_abandoned"
    RUN_TAKEN_OVER = "run_taken_over"  # its replica died; another (or the restart) continues it
    STEP_OUTCOME_UNKNOWN = "step_outcome_unknown"  # interrupted mid-call: may have acted
    STEP_SETTLED = "step_settled"  # an outcome_unknown step, settled by the action's read-back
    STEP_STARTED = "step_started"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    STEP_SKIPPED = "step_skipped"
    STEP_WOULD_RUN = "step_would_run"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_GRANTED = "approval_granted"
    APPROVAL_REJECTED = "approval_rejected"
    APPROVAL_EXPIRED = "approval_expired"
    APPROVAL_STALE = "approval_stale"  # the approved step re-planned to another request
    AUDIT_PRUNED = "audit_pruned"


class AuditEvent(BaseModel):
    """Append-only record of one decision: who, what, when, why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AuditKind
    at: datetime
    actor: str = "responder"
    run_id: str | None = None
    rule_id: str | None = None
    step_id: str | None = None
    alert_id: int | None = None
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class StoredAlert(BaseModel):
    """An alert as the store holds it: with its row id and receipt time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: int
    delivery_id: str
    received_at: datetime
    alert: Alert

    @classmethod
    def from_delivery(
        cls, delivery: Delivery, ids: Sequence[int], received_at: datetime
    ) -> list[StoredAlert]:
        """The stored form of each alert of `delivery`, given the ids the store assigned."""
        return [
            cls(alert_id=i, delivery_id=delivery.delivery_id, received_at=received_at, alert=a)
            for i, a in zip(ids, delivery.alerts, strict=True)
        ]


class RunQuery(BaseModel):
    """Filters for listing runs (newest first; `before` is the run id to page after)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_id: str | None = None
    state: RunState | None = None
    source: Source | None = None
    fingerprint: str | None = None
    since: datetime | None = None
    limit: int = Field(default=50, ge=1, le=500)
    before: str | None = None
