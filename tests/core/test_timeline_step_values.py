"""The timeline's step entries name the replica that ran the step and the request it sent,
from the step's audit event or, when the trail was pruned, from the run record."""

from __future__ import annotations

from datetime import UTC, datetime

from responder.core.timelines import TimelineKind, build_timeline, render_markdown, sent_text
from responder.models.alerts import Source
from responder.models.runs import AuditEvent, AuditKind, RunRecord, RunState, StepRecord, StepState

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PATCH = {
    "method": "PATCH",
    "path": "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=responder",
    "headers": {"Content-Type": "application/strategic-merge-patch+json"},
    "json": {"spec": {"template": {"metadata": {"annotations": {"r": "2026-11-23T10:00:05Z"}}}}},
    "verify": {"method": "GET", "path": "/apis/apps/v1/namespaces/shop/deployments/web"},
}


def _run(*steps: StepRecord) -> RunRecord:
    return RunRecord(
        run_id="r1",
        rule_id="web-broken",
        alert_id=1,
        source=Source.ALERTMANAGER,
        fingerprint="fp",
        alert_identity="alertmanager:fp:-:firing",
        guard_key="shop/web",
        idempotency_key="idem",
        state=RunState.SUCCEEDED,
        created_at=T0,
        updated_at=T0,
        steps=steps,
    )


def test_an_event_names_the_instance_and_the_values_sent() -> None:
    step = StepRecord(step_id="restart", action="k8s.rollout_restart", state=StepState.SUCCEEDED)
    event = AuditEvent(
        kind=AuditKind.STEP_SUCCEEDED,
        at=T0,
        run_id="r1",
        step_id="restart",
        details={"action": "k8s.rollout_restart", "instance": "replica-a", "sent": PATCH},
    )
    entries = build_timeline(_run(step), [event], "KubeDeploymentBroken")
    [entry] = [e for e in entries if e.kind is TimelineKind.ACTION]
    assert entry.text == (
        "action `restart` (k8s.rollout_restart) ok, verification not recorded — sent "
        "`PATCH /apis/apps/v1/namespaces/shop/deployments/web?fieldManager=responder "
        'json={"spec":{"template":{"metadata":{"annotations":{"r":"2026-11-23T10:00:05Z"}}}}}`'
        " — on `replica-a`"
    )


def test_a_pruned_trail_falls_back_to_the_step_record() -> None:
    ran = StepRecord(
        step_id="look",
        action="http.request",
        state=StepState.SUCCEEDED,
        params={"method": "GET", "url": "http://svc/health"},
        sent={"method": "GET", "url": "http://svc/health", "headers": {}, "json": None},
        instance="replica-b",
        finished_at=T0,
    )
    skipped = StepRecord(
        step_id="fix",
        action="http.request",
        state=StepState.SKIPPED,
        reason="condition_false",
        params={"method": "POST", "url": "http://svc/fix"},
        instance="replica-b",
        finished_at=T0,
    )
    markdown = render_markdown(build_timeline(_run(ran, skipped), [], None), _run())
    look = "diagnostic `look` (http.request) ok — sent `GET http://svc/health` — on `replica-b`"
    assert look in markdown
    assert "action `fix` (http.request) skipped: condition_false — on `replica-b`" in markdown


def test_sent_text_is_one_bounded_line_of_what_carries_values() -> None:
    logs = {"method": "GET", "path": ["/api/v1/namespaces/shop/pods/a/log", "/b/log"]}
    assert sent_text(logs) == "`GET /api/v1/namespaces/shop/pods/a/log, /b/log`"
    unsent = {"method": "PATCH", "path": "/x", "json": {"n": 3}, "not_sent": "already at 3"}
    assert sent_text(unsent) == '`PATCH /x json={"n":3} not_sent="already at 3"`'
    assert sent_text({"command": "SET k v"}) == '`command="SET k v"`'
    assert sent_text({"query": "select `1`\n  from t"}) == "`query=\"select '1'\\n from t\"`"
    long = sent_text({"method": "POST", "url": "http://x", "json": {"text": "y" * 2000}})
    assert len(long) == 602
    assert long.endswith("…`")
