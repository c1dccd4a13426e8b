"""The pure takeover decisions: what happens to each step of a run whose replica died, and how
an `outcome_unknown` step is settled from its action's read-back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from responder.core.takeovers import (
    Observation,
    Settlement,
    Treatment,
    interrupted,
    settlement,
    treatment,
    treatments,
)
from responder.core.transitions import STEP_MOVES, final_state, move_step
from responder.models.alerts import Source
from responder.models.plans import ActionClass
from responder.models.runs import RunRecord, RunState, StepRecord, StepState

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
D, C = ActionClass.DIAGNOSTIC, ActionClass.CONTAINMENT


def _run(*steps: tuple[str, StepState]) -> RunRecord:
    return RunRecord(
        run_id="r",
        rule_id="rule",
        alert_id=1,
        source=Source.ALERTMANAGER,
        fingerprint="f",
        alert_identity="i",
        guard_key="g",
        idempotency_key="k",
        state=RunState.RUNNING,
        created_at=NOW,
        updated_at=NOW,
        owner="dead",
        steps=tuple(
            StepRecord(step_id=i, action="x", state=s, started_at=NOW, attempts=1) for i, s in steps
        ),
    )


@pytest.mark.parametrize(
    ("state", "klass", "expected"),
    [
        (StepState.SUCCEEDED, C, Treatment.KEEP),  # completed steps are never repeated
        (StepState.FAILED, C, Treatment.KEEP),
        (StepState.SKIPPED, C, Treatment.KEEP),
        (StepState.CANCELLED, D, Treatment.KEEP),
        (StepState.PLANNED, C, Treatment.KEEP),  # not started: runs in order as usual
        (StepState.WAITING_APPROVAL, C, Treatment.KEEP),
        (StepState.OUTCOME_UNKNOWN, C, Treatment.KEEP),
        (StepState.RUNNING, D, Treatment.RERUN),  # a diagnostic only reads: run it again
        (StepState.RUNNING, C, Treatment.OUTCOME_UNKNOWN),  # it may have acted
    ],
)
def test_each_step_state_has_one_treatment(
    state: StepState, klass: ActionClass, expected: Treatment
) -> None:
    assert treatment(state, klass) is expected


def test_every_step_state_is_covered() -> None:
    for state in StepState:
        for klass in ActionClass:
            assert isinstance(treatment(state, klass), Treatment)
        assert state in STEP_MOVES


def test_interrupted_moves_only_the_running_steps() -> None:
    run = _run(
        ("look", StepState.SUCCEEDED), ("diag", StepState.RUNNING), ("act", StepState.PLANNED)
    )
    moved = interrupted(run, {"look": D, "diag": D, "act": C}, NOW)
    assert [s.state for s in moved.steps] == [
        StepState.SUCCEEDED,
        StepState.PLANNED,
        StepState.PLANNED,
    ]
    assert moved.step("diag").attempts == 1  # the interrupted attempt still counts

    run = _run(
        ("look", StepState.SUCCEEDED), ("act", StepState.RUNNING), ("after", StepState.PLANNED)
    )
    moved = interrupted(run, {"look": D, "act": C, "after": D}, NOW)
    assert moved.step("act").state is StepState.OUTCOME_UNKNOWN
    assert "may have acted" in (moved.step("act").reason or "")
    assert moved.step("after").state is StepState.PLANNED


def test_a_step_of_unknown_class_counts_as_containment() -> None:
    run = _run(("act", StepState.RUNNING))
    assert treatments(run, {}) == {"act": Treatment.OUTCOME_UNKNOWN}


@pytest.mark.parametrize(
    ("observed", "idempotent", "blocked", "expected"),
    [
        (Observation.PRESENT, False, False, Settlement.VERIFIED),
        (Observation.PRESENT, True, True, Settlement.VERIFIED),  # resolved: still the truth
        (Observation.ABSENT, True, False, Settlement.RUN_AGAIN),
        (Observation.ABSENT, False, False, Settlement.APPROVAL),  # a restart: a human decides
        (Observation.ABSENT, True, True, Settlement.SKIP),  # alert resolved: containment stops
        (Observation.UNKNOWN, True, False, Settlement.APPROVAL),
        (None, True, False, Settlement.APPROVAL),  # no read-back: never silently re-run
        (Observation.UNKNOWN, True, True, Settlement.STAYS_UNKNOWN),
        (None, False, True, Settlement.STAYS_UNKNOWN),
    ],
)
def test_settlement(
    observed: Observation | None, idempotent: bool, blocked: bool, expected: Settlement
) -> None:
    assert settlement(observed, idempotent=idempotent, blocked=blocked) is expected


def test_outcome_unknown_is_never_cancelled_and_fails_the_run_while_unsettled() -> None:
    step = StepRecord(step_id="act", action="x", state=StepState.OUTCOME_UNKNOWN)
    assert StepState.CANCELLED not in STEP_MOVES[StepState.OUTCOME_UNKNOWN]
    for to in (StepState.SUCCEEDED, StepState.PLANNED, StepState.SKIPPED):
        assert move_step(step, to, NOW).state is to
    run = _run(("look", StepState.SUCCEEDED), ("act", StepState.OUTCOME_UNKNOWN))
    assert final_state(run) is RunState.FAILED


def test_an_outcome_unknown_approval_notice_says_why() -> None:
    from responder.core.approval_notices import notice_text
    from responder.models.approvals import Approval

    approval = Approval(
        approval_id="a",
        run_id="r",
        step_id="act",
        rule_id="rule",
        reason="outcome_unknown",
        requested_at=NOW,
        expires_at=NOW,
        action="http.request",
        params={"method": "POST"},
    )
    _, body = notice_text(approval, _run(("act", StepState.WAITING_APPROVAL)), "http://x/a")
    assert "may already have acted" in body


def test_the_timeline_shows_the_takeover_and_the_settlement() -> None:
    from responder.core.timelines import build_timeline, render_markdown
    from responder.models.runs import AuditEvent, AuditKind

    run = _run(("reset", StepState.SUCCEEDED)).model_copy(update={"owner": "b"})

    def event(kind: AuditKind, **fields: object) -> AuditEvent:
        return AuditEvent(kind=kind, at=NOW, run_id="r", rule_id="rule", alert_id=1, **fields)

    audit = [
        event(
            AuditKind.RUN_TAKEN_OVER,
            details={"previous_owner": "a", "instance": "b", "steps": {"reset": "outcome_unknown"}},
        ),
        event(
            AuditKind.STEP_OUTCOME_UNKNOWN,
            step_id="reset",
            details={"action": "circuit_breaker.reset", "instance": "a"},
        ),
        event(
            AuditKind.STEP_SETTLED,
            step_id="reset",
            reason="verified",
            details={"observed": "present", "settlement": "verified"},
        ),
        event(
            AuditKind.STEP_SUCCEEDED,
            step_id="reset",
            details={"action": "circuit_breaker.reset", "instance": "b", "verified": True},
        ),
    ]
    text = render_markdown(build_timeline(run, audit, "DiskFull"), run)
    assert "taken over by `b` from `a`" in text
    assert "outcome_unknown — on `a`" in text
    assert "settled after recovery: its read-back was present -> verified" in text
    assert "ok" in text.split("settled after recovery")[1]
