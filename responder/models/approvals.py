"""Approval requests: a human decides, exactly once, whether a parked step may run."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApprovalState(StrEnum):
    """Life cycle of one approval request; only `pending` may change."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Approval(BaseModel):
    """One request for a human decision on one step of one run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approval_id: str
    run_id: str
    step_id: str
    rule_id: str
    state: ApprovalState = ApprovalState.PENDING
    reason: str  # why it was asked: "rule" (the step asks) or "storm_brake"
    requested_at: datetime
    expires_at: datetime
    approvers: tuple[str, ...] = ()  # names or groups allowed to decide; empty: any approver
    action: str
    params: dict[str, Any] | None = None  # the rendered (redacted) request it would send
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = Field(default=None, max_length=2000)
    source_ip: str | None = None
