"""The approval notice: what will run, why, the evidence, the expiry and the approve URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from responder.core.approval_notices import evidence, notice_text, sink_params
from responder.models.alerts import Source
from responder.models.approvals import Approval
from responder.models.runs import RunRecord, RunState, StepRecord, StepState

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
URL = "https://responder.example/v1/approvals/a1/approve"

RUN = RunRecord(
    run_id="r1",
    rule_id="breaker",
    alert_id=1,
    source=Source.ALERTMANAGER,
    fingerprint="f",
    alert_identity="i",
    guard_key="g",
    idempotency_key="k",
    state=RunState.WAITING_APPROVAL,
    created_at=T0,
    updated_at=T0,
    steps=(
        StepRecord(
            step_id="state",
            action="http.request",
            state=StepState.SUCCEEDED,
            output={"status": 200},
        ),
        StepRecord(
            step_id="note",
            action="log",
            state=StepState.SUCCEEDED,
            output={"message": "breaker OPEN"},
        ),
        StepRecord(step_id="restart", action="http.request", state=StepState.WAITING_APPROVAL),
        StepRecord(step_id="after", action="log"),
    ),
)
APPROVAL = Approval(
    approval_id="a1",
    run_id="r1",
    step_id="restart",
    rule_id="breaker",
    reason="storm_brake",
    requested_at=T0,
    expires_at=T0 + timedelta(minutes=30),
    action="http.request",
    params={"method": "POST", "url": "http://svc/restart"},
)


def test_evidence_is_what_ran_before_the_waiting_step() -> None:
    assert evidence(RUN, "restart") == [
        "state (http.request) succeeded: 200",
        "note (log) succeeded: breaker OPEN",
    ]


def test_text_says_what_why_when_and_where() -> None:
    title, body = notice_text(APPROVAL, RUN, URL)
    assert title == "Approval needed: breaker / restart"
    assert "storm brake" in body
    assert "2026-11-23T10:30:00+00:00" in body
    assert URL in body
    assert "- note (log) succeeded: breaker OPEN" in body


def test_each_sink_gets_the_notice_in_its_own_parameters() -> None:
    slack = sink_params("notify.slack", {"webhook_url_env": "SLACK"}, APPROVAL, RUN, URL)
    assert slack["webhook_url_env"] == "SLACK"
    assert slack["link"] == URL
    assert slack["fields"]["step"] == "restart"
    pager = sink_params("notify.pagerduty", {"routing_key_env": "PD"}, APPROVAL, RUN, URL)
    assert pager["event_action"] == "trigger"
    assert pager["dedup_key"] == "responder:approval:a1"
    hook = sink_params("notify.webhook", {"url": "http://x/"}, APPROVAL, RUN, URL)
    assert hook["json"]["approval"]["approval_id"] == "a1"
    assert hook["json"]["approve_url"] == URL
    kept = sink_params("notify.slack", {"text": "custom"}, APPROVAL, RUN, URL)
    assert kept["text"] == "custom"  # configured values win
