"""Table tests of the post-incident timeline: built from hand-made runs and audit trails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from responder.core.timelines import (
    TimelineEntry,
    TimelineKind,
    build_timeline,
    is_diagnostic,
    render_markdown,
)
from responder.models.alerts import Source
from responder.models.runs import AuditEvent, AuditKind, RunRecord, RunState, StepRecord, StepState

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(state: RunState = RunState.SUCCEEDED, *steps: StepRecord, **extra: Any) -> RunRecord:
    return RunRecord(
        run_id="r1",
        rule_id="gated",
        alert_id=7,
        source=Source.ALERTMANAGER,
        fingerprint="f",
        alert_identity="a",
        guard_key="k",
        idempotency_key="i",
        state=state,
        created_at=T0,
        updated_at=at(60),
        steps=steps,
        **extra,
    )


def event(kind: AuditKind, seconds: int, **extra: Any) -> AuditEvent:
    return AuditEvent(kind=kind, at=at(seconds), run_id="r1", rule_id="gated", **extra)


LOOK = StepRecord(
    step_id="look",
    action="log",
    state=StepState.SUCCEEDED,
    output={"message": "evidence\nfor db-1"},
    finished_at=at(2),
)
PROBE = StepRecord(
    step_id="probe",
    action="http.request",
    state=StepState.FAILED,
    params={"method": "GET", "url": "http://x"},
    output={"status": 503},
    error="GET http://x -> 503",
    finished_at=at(3),
)
ACT = StepRecord(
    step_id="act",
    action="circuit_breaker.reset",
    state=StepState.SUCCEEDED,
    output={"verified": True},
    finished_at=at(30),
)

FULL_AUDIT = [
    event(AuditKind.RULE_MATCHED, 0, details={"alert": "FromAudit"}),
    event(AuditKind.STEP_STARTED, 1, step_id="look", details={"action": "log"}),
    event(AuditKind.STEP_SUCCEEDED, 2, step_id="look", details={"action": "log"}),
    event(
        AuditKind.STEP_FAILED,
        3,
        step_id="probe",
        details={"action": "http.request", "params": {"method": "GET"}, "error": "503"},
    ),
    event(
        AuditKind.APPROVAL_REQUESTED,
        4,
        step_id="act",
        reason="rule",
        details={"action": "circuit_breaker.reset", "expires_at": "2025-03-04T10:30:04+00:00"},
    ),
    event(AuditKind.APPROVAL_GRANTED, 20, step_id="act", actor="alice", reason="INC-1 go"),
    event(AuditKind.STEP_SUCCEEDED, 30, step_id="act", details={"action": "circuit_breaker.reset"}),
    event(AuditKind.RUN_FINISHED, 31, details={"state": "succeeded", "dry_run": False}),
]


def test_a_full_run_reads_as_detection_evidence_approval_action_resolution() -> None:
    entries = build_timeline(run(RunState.SUCCEEDED, LOOK, PROBE, ACT), FULL_AUDIT, "DiskFull")
    assert [(e.at, e.kind) for e in entries] == [
        (at(0), TimelineKind.DETECTION),
        (at(2), TimelineKind.DIAGNOSTIC),
        (at(3), TimelineKind.DIAGNOSTIC),
        (at(4), TimelineKind.APPROVAL),
        (at(20), TimelineKind.APPROVAL),
        (at(30), TimelineKind.ACTION),
        (at(31), TimelineKind.RESOLUTION),
    ]
    texts = [e.text for e in entries]
    assert texts[0] == "detection: alert `DiskFull` (alertmanager) matched rule `gated`"
    assert texts[1] == 'diagnostic `look` (log) ok — "evidence for db-1"'
    assert texts[2] == "diagnostic `probe` (http.request) failed — status 503; error: 503"
    assert texts[3] == (
        "approval requested for step `act` (circuit_breaker.reset; the rule asks, "
        "expires 2025-03-04T10:30:04+00:00)"
    )
    assert texts[4] == 'step `act` approved by alice: "INC-1 go"'
    assert texts[5] == "action `act` (circuit_breaker.reset) ok, verified"
    assert texts[6] == "run finished: succeeded"


def test_the_alert_name_falls_back_to_the_audit_then_to_the_alert_id() -> None:
    from_audit = build_timeline(run(), FULL_AUDIT[:1], None)[0].text
    assert "alert `FromAudit`" in from_audit
    no_audit = build_timeline(run(RunState.RUNNING), [], None)
    assert [(e.kind, e.text) for e in no_audit] == [
        (TimelineKind.DETECTION, "detection: alert #7 (alertmanager) matched rule `gated`")
    ]


@pytest.mark.parametrize(
    ("kind", "actor", "reason", "text"),
    [
        (
            AuditKind.APPROVAL_REJECTED,
            "bob",
            "too risky",
            'step `act` rejected by bob: "too risky"',
        ),
        (AuditKind.APPROVAL_REJECTED, "bob", None, "step `act` rejected by bob"),
        (
            AuditKind.APPROVAL_EXPIRED,
            "responder",
            None,
            "approval for step `act` expired without a decision",
        ),
        (
            AuditKind.APPROVAL_GRANTED,
            "carol",
            "line1\n  line2",
            'step `act` approved by carol: "line1 line2"',
        ),
    ],
)
def test_approval_decisions_name_who_and_why(
    kind: AuditKind, actor: str, reason: str | None, text: str
) -> None:
    entries = build_timeline(
        run(), [event(kind, 5, step_id="act", actor=actor, reason=reason)], "A"
    )
    assert [(e.kind, e.text) for e in entries if e.kind is TimelineKind.APPROVAL] == [
        (TimelineKind.APPROVAL, text)
    ]


@pytest.mark.parametrize(
    ("audit", "state", "reason", "text"),
    [
        (
            [event(AuditKind.RUN_CANCELLED, 9, reason="alert_resolved")],
            RunState.CANCELLED,
            None,
            "run cancelled: alert_resolved",
        ),
        (
            [event(AuditKind.RUN_ABANDONED, 9, reason="owner_lost", details={"owner": "pod-a"})],
            RunState.ABANDONED,
            None,
            "run abandoned: owner_lost (owner pod-a)",
        ),
        (
            [event(AuditKind.RUN_SKIPPED, 9, reason="cooldown")],
            RunState.SKIPPED,
            None,
            "run skipped: cooldown",
        ),
        ([], RunState.FAILED, "deadline", "run failed: deadline"),  # no end event: from the run
    ],
)
def test_the_end_of_the_run_says_how_it_ended(
    audit: list[AuditEvent], state: RunState, reason: str | None, text: str
) -> None:
    entries = build_timeline(run(state, reason=reason), audit, "A")
    assert entries[-1].kind is TimelineKind.RESOLUTION
    assert entries[-1].text == text


@pytest.mark.parametrize(
    ("step", "kind", "text"),
    [
        (
            StepRecord(
                step_id="s", action="log", state=StepState.SKIPPED, reason="condition_false"
            ),
            TimelineKind.DIAGNOSTIC,
            "diagnostic `s` (log) skipped: condition_false",
        ),
        (
            StepRecord(
                step_id="s",
                action="http.request",
                state=StepState.SKIPPED,
                params={"method": "POST"},
                reason="approval_rejected",
            ),
            TimelineKind.ACTION,
            "action `s` (http.request) skipped: approval_rejected",
        ),
        (
            StepRecord(
                step_id="s",
                action="k8s.rollout_restart",
                state=StepState.FAILED,
                error="timed out",
                output={"verified": False},
            ),
            TimelineKind.ACTION,
            "action `s` (k8s.rollout_restart) failed, NOT verified — error: timed out",
        ),
        (
            StepRecord(step_id="s", action="flags.off", state=StepState.SUCCEEDED),
            TimelineKind.ACTION,
            "action `s` (flags.off) ok, verification not recorded",
        ),
    ],
)
def test_steps_without_audit_events_come_from_the_run_record(
    step: StepRecord, kind: TimelineKind, text: str
) -> None:
    entries = build_timeline(run(RunState.RUNNING, step), [], "A")
    assert [(e.kind, e.text) for e in entries[1:]] == [(kind, text)]
    assert entries[1].at == at(60)  # no finished_at: the run's last update


def test_skip_and_dry_run_events_carry_their_reason() -> None:
    audit = [
        event(
            AuditKind.STEP_SKIPPED,
            1,
            step_id="look",
            reason="previous_step_failed",
            details={"action": "log"},
        ),
        event(
            AuditKind.STEP_WOULD_RUN,
            2,
            step_id="act",
            reason="dry_run",
            details={"action": "http.request", "params": {"method": "DELETE"}},
        ),
    ]
    texts = [e.text for e in build_timeline(run(RunState.RUNNING), audit, "A")[1:]]
    assert texts == [
        "diagnostic `look` (log) skipped: previous_step_failed",
        "action `act` (http.request) would run (dry run)",
    ]


def test_entries_are_ordered_by_time_whatever_the_audit_order() -> None:
    audit = [FULL_AUDIT[-1], FULL_AUDIT[0], FULL_AUDIT[5]]
    entries = build_timeline(run(), audit, "A")
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert entries[0].kind is TimelineKind.DETECTION


@pytest.mark.parametrize(
    ("action", "params", "diagnostic"),
    [
        ("log", None, True),
        ("http.request", None, True),
        ("http.request", {"method": "get"}, True),
        ("http.request", {"method": "POST"}, False),
        ("circuit_breaker.reset", None, False),
    ],
)
def test_diagnostics_are_log_and_get_requests(
    action: str, params: dict[str, Any] | None, diagnostic: bool
) -> None:
    assert is_diagnostic(action, params) is diagnostic


def test_markdown_is_a_timeline_section_with_utc_times() -> None:
    the_run = run(RunState.SUCCEEDED, LOOK, PROBE, ACT)
    entries = build_timeline(the_run, FULL_AUDIT, "DiskFull")
    text = render_markdown(entries, the_run)
    lines = text.splitlines()
    assert lines[:3] == ["## Timeline", "", "Rule `gated`, run `r1` (succeeded), 2025-03-04"]
    assert lines[4] == (
        "- **10:00:00 UTC** — detection: alert `DiskFull` (alertmanager) matched rule `gated`"
    )
    assert lines[-1] == "- **10:00:31 UTC** — run finished: succeeded"
    assert len(lines) == 4 + len(entries)


def test_markdown_converts_to_utc_and_dates_entries_on_another_day() -> None:
    plus2 = timezone_plus_two()
    note = TimelineKind.NOTE
    entries = [
        TimelineEntry(at=datetime(2025, 3, 4, 12, 0, tzinfo=plus2), kind=note, text="a"),
        TimelineEntry(at=datetime(2025, 3, 5, 1, 2, 3, tzinfo=UTC), kind=note, text="b"),
    ]
    lines = render_markdown(entries, run()).splitlines()
    assert lines[4:] == ["- **10:00:00 UTC** — a", "- **2025-03-05 01:02:03 UTC** — b"]


def timezone_plus_two() -> timezone:
    return timezone(timedelta(hours=2))
