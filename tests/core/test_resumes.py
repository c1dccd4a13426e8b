"""Pure resume decisions: approval digests, what changed, whether a parked run may go on, and the
follow-up notice sent when an approval ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from responder.core.approval_notices import follow_up_params, follow_up_text
from responder.core.resumes import (
    approval_digest,
    approval_staleness,
    changed_fields,
    plan_mismatch,
    resume_block,
)
from responder.models.alerts import Source
from responder.models.approvals import Approval, ApprovalState
from responder.models.plans import ActionClass, Plan, PlannedStep
from responder.models.runs import RunRecord, RunState, SkipReason, StepRecord

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PARAMS = {"method": "POST", "url": "http://svc/act", "json": {"key": "k", "n": 1}}


def test_the_digest_is_stable_and_sees_every_value() -> None:
    same = {"json": {"n": 1, "key": "k"}, "url": "http://svc/act", "method": "POST"}
    assert approval_digest("http.request", PARAMS) == approval_digest("http.request", same)
    assert approval_digest("http.request", PARAMS).startswith("sha256:")
    moved = {**PARAMS, "url": "http://svc/CHANGED-destroy"}
    assert approval_digest("http.request", PARAMS) != approval_digest("http.request", moved)
    assert approval_digest("http.request", PARAMS) != approval_digest("test.contain", PARAMS)
    assert approval_digest("log", None) != approval_digest("log", {})


def test_changed_fields_name_the_dotted_paths() -> None:
    after = {"method": "DELETE", "url": "http://svc/act", "json": {"key": "k", "n": 2, "x": 1}}
    assert changed_fields(PARAMS, after) == ["params.json.n", "params.json.x", "params.method"]
    assert changed_fields(PARAMS, PARAMS) == []
    assert changed_fields(None, PARAMS) == ["params"]


def test_staleness_is_none_for_the_approved_request_and_says_what_changed_otherwise() -> None:
    assert approval_staleness("http.request", PARAMS, "http.request", dict(PARAMS)) is None
    stale = approval_staleness("http.request", PARAMS, "k8s.delete_pod", {"url": "x"})
    assert stale is not None
    assert stale.changed[0] == "action"
    assert stale.approved_digest == approval_digest("http.request", PARAMS)
    assert stale.current_digest == approval_digest("k8s.delete_pod", {"url": "x"})


def _run(*steps: tuple[str, str]) -> RunRecord:
    return RunRecord(
        run_id="r1",
        rule_id="gated",
        alert_id=1,
        source=Source.ALERTMANAGER,
        fingerprint="f",
        alert_identity="i",
        guard_key="g",
        idempotency_key="k",
        state=RunState.WAITING_APPROVAL,
        created_at=T0,
        updated_at=T0,
        steps=tuple(StepRecord(step_id=s, action=a) for s, a in steps),
    )


def _plan(*steps: tuple[str, str]) -> Plan:
    return Plan(
        rule_id="gated",
        alert_identity="i",
        guard_key="g",
        dedup_key="d",
        idempotency_key="k",
        steps=tuple(
            PlannedStep(
                step_id=s,
                action=a,
                action_class=ActionClass.DIAGNOSTIC,
                params={},
                template={},
                timeout=timedelta(seconds=5),
            )
            for s, a in steps
        ),
    )


def test_the_plan_must_still_have_the_runs_steps() -> None:
    steps = (("look", "log"), ("act", "http.request"))
    assert plan_mismatch(_run(*steps), _plan(*steps)) is None
    blocked = plan_mismatch(_run(*steps), _plan(("look", "log"), ("act2", "http.request")))
    assert blocked is not None
    assert blocked.reason is SkipReason.PLAN_INVALID
    assert "act2 (http.request)" in blocked.detail


def test_a_missing_rule_blocks_the_resume() -> None:
    blocked = resume_block("gated", None, None)
    assert blocked is not None
    assert blocked.reason is SkipReason.RULE_DISABLED
    assert "removed" in blocked.detail


APPROVAL = Approval(
    approval_id="a1",
    run_id="r1",
    step_id="act",
    rule_id="gated",
    reason="rule",
    requested_at=T0,
    expires_at=T0 + timedelta(minutes=30),
    action="http.request",
    params=PARAMS,
)
URL = "https://responder.example/v1/runs/r1"


def test_the_follow_up_says_who_decided_or_how_it_ended() -> None:
    decided = APPROVAL.model_copy(
        update={"state": ApprovalState.APPROVED, "decided_by": "alice", "comment": "go"}
    )
    title, body = follow_up_text(decided, URL)
    assert title == "Approval approved: gated / act"
    assert 'approved by alice: "go"' in body
    assert URL in body
    expired = APPROVAL.model_copy(update={"state": ApprovalState.EXPIRED})
    assert "expired without a decision" in follow_up_text(expired, URL)[1]
    cancelled = APPROVAL.model_copy(
        update={"state": ApprovalState.CANCELLED, "comment": "alert_resolved"}
    )
    assert "the alert resolved" in follow_up_text(cancelled, URL)[1]


def test_each_sink_gets_the_follow_up_in_its_own_parameters() -> None:
    decided = APPROVAL.model_copy(update={"state": ApprovalState.REJECTED, "decided_by": "bob"})
    run = _run(("act", "http.request"))
    slack = follow_up_params("notify.slack", {"webhook_url_env": "SLACK"}, decided, run, URL)
    assert slack["link"] == URL
    assert slack["fields"]["by"] == "bob"
    pager = follow_up_params("notify.pagerduty", {"routing_key_env": "PD"}, decided, run, URL)
    assert pager["event_action"] == "resolve"  # closes the PagerDuty alert the request opened
    assert pager["dedup_key"] == "responder:approval:a1"
    hook = follow_up_params("notify.webhook", {"url": "http://x/"}, decided, run, URL)
    assert hook["json"]["type"] == "approval_rejected"
    assert hook["json"]["run_url"] == URL
