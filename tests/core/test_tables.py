"""Table tests for pure code: durations, matcher syntax, transitions, planning, `for:` delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from responder.actions.catalog import PolicyCatalog
from responder.actions.shipped import default_registry
from responder.core.planning import PlanError, idempotency_key, plan_rule
from responder.core.transitions import (
    InvalidTransitionError,
    final_state,
    move_run,
    move_step,
)
from responder.engine.gating import delay_until
from responder.models.alerts import Alert, AlertStatus, Source
from responder.models.durations import Duration, format_duration, parse_duration
from responder.models.plans import ActionClass
from responder.models.rules import LoadedRule, Matcher, MatchOp, Rule, SourceLocation
from responder.models.runs import RunRecord, RunState, StepRecord, StepState

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("2m", 120),
        ("1h30m", 5400),
        ("7d", 604800),
        ("250ms", 0.25),
        ("1w", 604800),
        (" 1h 5m ", 3900),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "m5", "1y", "1h-5m", "abc"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 30s"):
        parse_duration(text)


@pytest.mark.parametrize("value", ["999999999999d", 1e300, float("nan"), 10**30])
def test_out_of_range_durations_are_a_validation_error_not_a_crash(value: object) -> None:
    adapter: TypeAdapter[timedelta] = TypeAdapter(Duration)
    with pytest.raises(ValidationError, match="out of range"):
        adapter.validate_python(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=5400), "1h30m"),
        (timedelta(0), "0s"),
        (timedelta(days=1, seconds=1), "1d1s"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize(
    ("text", "label", "op", "value"),
    [
        ('alertname="Disk"', "alertname", MatchOp.EQ, "Disk"),
        ("alertname=Disk", "alertname", MatchOp.EQ, "Disk"),
        ('breaker=~"pagerduty|slack"', "breaker", MatchOp.RE, "pagerduty|slack"),
        ('namespace!="kube-system"', "namespace", MatchOp.NE, "kube-system"),
        ('job!~"node.*"', "job", MatchOp.NRE, "node.*"),
        ('msg="say \\"hi\\""', "msg", MatchOp.EQ, 'say "hi"'),
        ('team="café"', "team", MatchOp.EQ, "café"),
        ('empty=""', "empty", MatchOp.EQ, ""),
    ],
)
def test_matcher_syntax(text: str, label: str, op: MatchOp, value: str) -> None:
    matcher = Matcher.parse(text)
    assert (matcher.label, matcher.op, matcher.value) == (label, op, value)
    assert Matcher.parse(str(matcher)) == matcher


@pytest.mark.parametrize("text", ["alertname", '="x"', 'a=~"("', "1a=b", 'a=="x"'])
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="matcher"):
        Matcher.parse(text)


def _step(state: StepState = StepState.PLANNED) -> StepRecord:
    return StepRecord(step_id="s", action="log", state=state)


@pytest.mark.parametrize(
    ("start", "to", "ok"),
    [
        (StepState.PLANNED, StepState.RUNNING, True),
        (StepState.PLANNED, StepState.SKIPPED, True),
        (StepState.PLANNED, StepState.WAITING_APPROVAL, True),
        (StepState.WAITING_APPROVAL, StepState.RUNNING, True),
        (StepState.RUNNING, StepState.SUCCEEDED, True),
        (StepState.RUNNING, StepState.FAILED, True),
        (StepState.PLANNED, StepState.SUCCEEDED, False),
        (StepState.SUCCEEDED, StepState.RUNNING, False),
        (StepState.SKIPPED, StepState.RUNNING, False),
        (StepState.FAILED, StepState.CANCELLED, False),
    ],
)
def test_step_transitions(start: StepState, to: StepState, ok: bool) -> None:
    if ok:
        moved = move_step(_step(start), to, T0)
        assert moved.state is to
    else:
        with pytest.raises(InvalidTransitionError):
            move_step(_step(start), to, T0)


def test_running_counts_attempts_and_finishing_stamps_time() -> None:
    running = move_step(_step(), StepState.RUNNING, T0)
    assert (running.attempts, running.started_at) == (1, T0)
    done = move_step(running, StepState.SUCCEEDED, T0 + timedelta(seconds=2))
    assert done.finished_at == T0 + timedelta(seconds=2)


def _run(*states: StepState, state: RunState = RunState.RUNNING) -> RunRecord:
    steps = tuple(StepRecord(step_id=f"s{i}", action="log", state=s) for i, s in enumerate(states))
    return RunRecord(
        run_id="r",
        rule_id="x",
        alert_id=1,
        source=Source.ALERTMANAGER,
        fingerprint="f",
        alert_identity="i",
        guard_key="g",
        idempotency_key="k",
        state=state,
        created_at=T0,
        updated_at=T0,
        steps=steps,
    )


@pytest.mark.parametrize(
    ("states", "final"),
    [
        ((StepState.SUCCEEDED, StepState.SUCCEEDED), RunState.SUCCEEDED),
        ((StepState.SUCCEEDED, StepState.SKIPPED), RunState.SUCCEEDED),
        ((StepState.FAILED, StepState.SUCCEEDED), RunState.FAILED),
        ((StepState.SKIPPED, StepState.SKIPPED), RunState.SKIPPED),
    ],
)
def test_final_state(states: tuple[StepState, ...], final: RunState) -> None:
    assert final_state(_run(*states)) is final


def test_terminal_runs_do_not_move() -> None:
    with pytest.raises(InvalidTransitionError):
        move_run(_run(state=RunState.SUCCEEDED), RunState.RUNNING, T0)


def test_runs_reject_duplicate_step_ids() -> None:
    with pytest.raises(ValueError, match="duplicate step ids"):
        _run(StepState.PLANNED).model_copy(update={}).model_validate(
            {**_run().model_dump(), "steps": [_step().model_dump(), _step().model_dump()]}
        )


def _alert(**changes: Any) -> Alert:
    values: dict[str, Any] = {
        "source": Source.ALERTMANAGER,
        "name": "DiskFull",
        "status": AlertStatus.FIRING,
        "labels": {"alertname": "DiskFull", "instance": "db-1", "service": "db"},
        "annotations": {"summary": "full"},
        "severity": "critical",
        "fingerprint": "abc",
        "starts_at": T0,
    }
    values.update(changes)
    return Alert(**values)


def _loaded(doc: dict[str, Any]) -> LoadedRule:
    return LoadedRule(rule=Rule.model_validate(doc), location=SourceLocation(file="r.yaml", line=1))


CATALOG = PolicyCatalog(default_registry(), allowed_hosts=("*.svc", "127.0.0.1"))


def test_plan_renders_guard_key_and_params_and_classifies_calls() -> None:
    rule = _loaded(
        {
            "id": "probe",
            "guards": {
                "key": "{{ labels.service }}",
                "for": "2m",
                "cooldown": "5m",
                "budget": [{"max": 3, "per": "1h"}, {"max": 7, "per": "1d"}],
            },
            "steps": [
                {
                    "id": "get",
                    "action": "http.request",
                    "with": {"url": "http://{{ labels.service }}.svc/h"},
                },
                {
                    "id": "post",
                    "action": "http.request",
                    "with": {"url": "http://127.0.0.1/x", "method": "POST", "json": {"a": 1}},
                },
                {
                    "id": "later",
                    "action": "log",
                    "with": {"message": "{{ steps.get.output.status }}"},
                },
            ],
        }
    )
    plan = plan_rule(rule, _alert(), CATALOG, global_dry_run=False)
    assert plan.guard_key == "probe:db"
    assert plan.dedup_key == f"probe:{_alert().identity}"
    assert plan.idempotency_key == idempotency_key("probe", _alert().identity)
    assert plan.for_ == timedelta(minutes=2)
    assert [b.max for b in plan.budgets] == [3, 7]
    get, post, later = plan.steps
    assert get.params is not None
    assert get.params["url"] == "http://db.svc/h"
    assert get.action_class is ActionClass.DIAGNOSTIC
    assert post.action_class is ActionClass.CONTAINMENT
    assert later.params is None  # reads steps.*: rendered at run time
    assert later.template == {"message": "{{ steps.get.output.status }}"}
    assert plan.has_containment


@pytest.mark.parametrize(
    ("with_", "needle"),
    [
        ({"url": "http://{{ labels.nope }}.svc/"}, "nope"),
        ({"url": "http://{{ labels.service }}.evil.com/"}, "RESPONDER_HTTP_ALLOWED_HOSTS"),
        ({"url": "http://x.svc/", "method": "TELEPORT"}, "with.method"),
    ],
    ids=["undefined-label", "not-allowlisted", "bad-param"],
)
def test_plan_errors_name_rule_and_step(with_: dict[str, Any], needle: str) -> None:
    rule = _loaded({"id": "bad", "steps": [{"id": "s", "action": "http.request", "with": with_}]})
    with pytest.raises(PlanError) as caught:
        plan_rule(rule, _alert(), CATALOG, global_dry_run=False)
    assert "rule bad: step s:" in str(caught.value)
    assert needle in str(caught.value)


def test_dry_run_comes_from_rule_or_global_setting() -> None:
    steps = [{"id": "s", "action": "log", "with": {"message": "x"}}]
    assert plan_rule(
        _loaded({"id": "a", "steps": steps}), _alert(), CATALOG, global_dry_run=True
    ).dry_run
    assert plan_rule(
        _loaded({"id": "a", "dry_run": True, "steps": steps}),
        _alert(),
        CATALOG,
        global_dry_run=False,
    ).dry_run


@pytest.mark.parametrize(
    ("starts_at", "now", "expected"),
    [
        (T0, T0, T0 + timedelta(minutes=2)),  # just started: wait the whole for:
        (T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)),
        (T0, T0 + timedelta(minutes=3), None),  # already firing long enough
        (None, T0, T0 + timedelta(minutes=2)),  # no start time: count from now
        (T0 + timedelta(hours=1), T0, T0 + timedelta(minutes=2)),  # clock skew: from now
    ],
)
def test_for_delay_counts_from_the_alert_start(
    starts_at: datetime | None, now: datetime, expected: datetime | None
) -> None:
    rule = _loaded(
        {
            "id": "d",
            "guards": {"for": "2m"},
            "steps": [{"id": "s", "action": "log", "with": {"message": "x"}}],
        }
    )
    plan = plan_rule(rule, _alert(starts_at=starts_at), CATALOG, global_dry_run=False)
    assert delay_until(plan, _alert(starts_at=starts_at), now) == expected
