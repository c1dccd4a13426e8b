"""Sample records shared by the store, engine and command tests: alerts, deliveries, runs and
approvals with non-ASCII text, offset times and nested values, around one fixed instant T0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from responder.models.alerts import Alert, AlertStatus, Delivery, Source
from responder.models.approvals import Approval, ApprovalState
from responder.models.runs import RunRecord, RunState, StepRecord

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))
MINUTE = timedelta(minutes=1)


def make_alert(n: int, **overrides: object) -> Alert:
    """A firing Alertmanager alert with non-ASCII labels, an offset start time and raw data."""
    values: dict[str, object] = {
        "source": Source.ALERTMANAGER,
        "name": f"Alert{n}",
        "status": AlertStatus.FIRING,
        "labels": {"alertname": f"Alert{n}", "namespace": "shop", "ünï": "cödé ✓"},
        "annotations": {"summary": "it broke"},
        "severity": "critical",
        "fingerprint": f"fp{n}",
        "starts_at": datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=CEST),
        "raw": {"nested": {"list": [1, 2.5, "x", None, True]}, "n": n},
    }
    values.update(overrides)
    return Alert.model_validate(values)


def make_delivery(*alerts: Alert, delivery_id: str = "d1") -> Delivery:
    """One Alertmanager delivery of `alerts`."""
    return Delivery(source=Source.ALERTMANAGER, delivery_id=delivery_id, alerts=alerts)


def make_run(run_id: str, **overrides: object) -> RunRecord:
    """A running run of rule-a with two planned steps, created at T0."""
    values: dict[str, object] = {
        "run_id": run_id,
        "rule_id": "rule-a",
        "alert_id": 1,
        "source": Source.ALERTMANAGER,
        "fingerprint": "fp1",
        "alert_identity": "alertmanager:fp1:-:firing",
        "guard_key": "shop/api",
        "idempotency_key": f"idem-{run_id}",
        "state": RunState.RUNNING,
        "created_at": T0,
        "updated_at": T0,
        "steps": (
            StepRecord(step_id="state", action="http.request", params={"url": "http://x"}),
            StepRecord(step_id="reset", action="circuit_breaker.reset"),
        ),
    }
    values.update(overrides)
    return RunRecord.model_validate(values)


def make_approval(approval_id: str, **overrides: object) -> Approval:
    """A pending approval of step `restart` of run r1, requested at T0 for 30 minutes."""
    values: dict[str, object] = {
        "approval_id": approval_id,
        "run_id": "r1",
        "step_id": "restart",
        "rule_id": "rule-a",
        "reason": "rule",
        "requested_at": T0,
        "expires_at": T0 + 30 * MINUTE,
        "action": "k8s.rollout_restart",
    }
    values.update(overrides)
    return Approval.model_validate(values)


FULL = make_approval(
    "a-full",
    state=ApprovalState.APPROVED,
    reason="storm_brake",
    requested_at=datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=CEST),
    expires_at=datetime(2024, 5, 1, 14, 30, tzinfo=CEST),
    approvers=("alice", "group:sre", "zoë"),
    params={"namespace": "shop", "note": "cödé ✓ 漢字", "nested": {"n": [1, 2.5, None, True]}},
    decided_by="alice",
    decided_at=datetime(2024, 5, 1, 12, 10, tzinfo=UTC),
    comment="ok — restart it, the breaker stays open",
    source_ip="2001:db8::1",
)
"""An approval with every field set, non-ASCII text, offset times and nested params."""
