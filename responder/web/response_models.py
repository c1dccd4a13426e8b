"""The JSON bodies the HTTP API answers with, as pydantic models for the OpenAPI document.

The records themselves (runs, approvals, alerts) plus small views of what the handlers add
around them (pages, acknowledgements, problems, probe answers). The handlers do not build
these; they describe what the handlers send. `RESPONSE_MODELS` lists every one the document's
components hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from responder.core.timelines import TimelineEntry
from responder.models.alerts import Alert
from responder.models.approvals import Approval
from responder.models.runs import AuditEvent, RunRecord


class Problem(BaseModel):
    """An RFC 9457 problem, as `responder.web.problems.problem` renders it."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None  # 400 on a webhook: the offending field
    approval: Approval | None = None  # 403/409 on a decision: the approval as it stands


class WebhookAck(BaseModel):
    """202: the alerts are written down (or the delivery was ignored or a duplicate)."""

    status: Literal["accepted", "ignored", "duplicate"]
    alerts: int
    ids: list[int] = []
    truncated_alerts: int = 0


class RunsPage(BaseModel):
    """One page of runs; `next` is the `before` of the following page."""

    runs: list[RunRecord]
    next: str | None


class RunDetail(RunRecord):
    """One run with the alert that started it (null once pruned) and its audit trail."""

    alert: Alert | None
    audit: list[AuditEvent]


class Timeline(BaseModel):
    """A run's post-incident timeline, with the same entries rendered as Markdown."""

    run_id: str
    entries: list[TimelineEntry]
    markdown: str


class RuleView(BaseModel):
    """One loaded rule (the rule file's fields) and where it was loaded from."""

    model_config = ConfigDict(extra="allow")

    id: str
    location: str


class RuleSet(BaseModel):
    """The active rule set."""

    digest: str
    loaded_at: datetime
    rules: list[RuleView]


class ApprovalView(Approval):
    """One approval with the URL that decides it, and the digest of the request it approves
    (sha256 of its action and rendered params: a resume runs the step only if it is unchanged)."""

    approve_url: str
    digest: str


class ApprovalsPage(BaseModel):
    """Approvals, newest first."""

    approvals: list[ApprovalView]


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Readiness, with what each check found."""

    status: Literal["ready", "not ready"]
    failing: list[str]
    checks: dict[str, str]


RESPONSE_MODELS: list[type[BaseModel]] = [
    Problem,
    WebhookAck,
    RunsPage,
    RunDetail,
    Timeline,
    RuleSet,
    ApprovalsPage,
    Approval,
    Health,
    Readiness,
]
