"""The engine end to end through the real app: match, plan, gate, execute, record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from responder.web import keys
from tests.support.apps import AUTH, JSON, READ, AppFactory
from tests.support.clock import FakeClock
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import wait_for
from tests.support.targets import Target


def write_rule(rules_dir: Path, text: str, name: str = "rule.yaml") -> None:
    (rules_dir / name).write_text(text)


async def post(client: TestClient[Any, Any], *alerts: dict[str, Any]) -> None:
    response = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(*alerts), headers={**AUTH, **JSON}
    )
    assert response.status == 202, await response.text()


async def runs(client: TestClient[Any, Any], **query: str) -> list[dict[str, Any]]:
    return await OperatorApi.in_process(client).runs(**query)


async def settled(client: TestClient[Any, Any], count: int) -> list[dict[str, Any]]:
    """Wait until `count` runs exist and none is still running; return them."""
    return await OperatorApi.in_process(client).settled_runs(count)


PROBE_RULE = """
id: probe
match:
  matchers: ['alertname="DiskFull"']
  severity: ">= warning"
guards:
  key: "{{{{ labels.instance }}}}"
steps:
  - id: health
    action: http.request
    with: {{url: "{base}/health/{{{{ labels.instance }}}}"}}
  - id: contain
    action: test.contain
    with: {{url: "{base}/contain", key: "{{{{ steps.health.output.json.status }}}}"}}
"""


async def test_rule_fires_runs_steps_in_order_and_records_them(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(rules_dir, PROBE_RULE.format(base=target.base_url))
    client = await make_client(http_allowed_hosts=(target.host,))
    await post(client, am_alert(labels={"instance": "db-1"}))
    [run] = await settled(client, 1)
    assert run["state"] == "succeeded", run
    assert [s["state"] for s in run["steps"]] == ["succeeded", "succeeded"]
    assert target.hits("/health/db-1") == 1
    assert target.hits("/contain") == 1
    contain = next(r for r in target.requests if r.path == "/contain")
    assert contain.json["key"] == "UP"  # rendered from the earlier step's output
    detail = await (await client.get(f"/v1/runs/{run['run_id']}", headers=READ)).json()
    kinds = [e["kind"] for e in detail["audit"]]
    assert kinds[0] == "rule_matched"
    assert kinds.count("step_started") == 2
    assert kinds.count("step_succeeded") == 2
    assert kinds[-1] == "run_finished"
    contained = next(
        e for e in detail["audit"] if e["kind"] == "step_succeeded" and e["step_id"] == "contain"
    )
    assert contained["details"]["verified"] is True
    assert contained["details"]["summary"] == "contained UP (200)"
    timeline = await (await client.get(f"/v1/runs/{run['run_id']}/timeline", headers=READ)).json()
    assert "action `contain` (test.contain) ok, verified" in timeline["markdown"]
    assert detail["steps"][0]["output"]["status"] == 200
    assert detail["alert"]["labels"]["instance"] == "db-1"
    assert detail["alert"]["name"] == "DiskFull"
    metrics = await (await client.get("/metrics")).text()
    assert (
        'responder_steps_total{action="test.contain",outcome="succeeded",reason=""} 1.0' in metrics
    )
    assert 'responder_rule_matches_total{rule="probe"} 1.0' in metrics


async def test_repeated_delivery_runs_once(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(rules_dir, PROBE_RULE.format(base=target.base_url))
    client = await make_client(http_allowed_hosts=(target.host,))
    alert = am_alert(labels={"instance": "db-1"}, fingerprint="aaaa")
    for _ in range(3):  # an HA pair plus a retry deliver the same alert
        await post(client, alert)

    store = client.app[keys.STORE]

    async def all_processed() -> bool:
        return not await store.unprocessed_alerts(10)

    await wait_for(all_processed)
    await settled(client, 1)
    assert target.hits("/contain") == 1
    assert len(await runs(client)) == 1


async def test_cooldown_and_budget_skip_with_reasons(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(
        rules_dir,
        f"""
id: limited
match: {{matchers: ['alertname="DiskFull"']}}
guards: {{key: "{{{{ labels.instance }}}}", cooldown: 1h}}
steps:
  - {{id: contain, action: test.contain, with: {{url: "{target.base_url}/contain"}}}}
---
id: budgeted
match: {{matchers: ['alertname="CpuHigh"']}}
guards: {{key: "x", budget: {{max: 2, per: 1h}}}}
steps:
  - {{id: contain, action: test.contain, with: {{url: "{target.base_url}/budget"}}}}
""",
    )
    client = await make_client(http_allowed_hosts=(target.host,))
    await post(client, am_alert(fingerprint="f1", starts_at=datetime(2026, 1, 1, tzinfo=UTC)))
    await settled(client, 1)
    await post(client, am_alert(fingerprint="f1", starts_at=datetime(2026, 1, 2, tzinfo=UTC)))
    found = await settled(client, 2)
    skipped = next(r for r in found if r["state"] == "skipped")
    assert skipped["reason"] == "cooldown"
    assert skipped["steps"][0]["reason"] == "cooldown"
    assert target.hits("/contain") == 1
    for i in range(3):
        await post(client, am_alert("CpuHigh", fingerprint=f"c{i}"))
    found = await settled(client, 5)
    budget = [r for r in found if r["rule_id"] == "budgeted"]
    assert sorted(r["state"] for r in budget) == ["skipped", "succeeded", "succeeded"]
    assert next(r for r in budget if r["state"] == "skipped")["reason"] == "budget_exhausted"
    assert target.hits("/budget") == 2


async def test_dry_run_records_rendered_requests_and_touches_nothing(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(rules_dir, PROBE_RULE.format(base=target.base_url))
    client = await make_client(http_allowed_hosts=(target.host,), dry_run=True)
    await post(client, am_alert(labels={"instance": "db-9"}))
    [run] = await settled(client, 1)
    assert run["dry_run"] is True
    assert target.requests == []
    health, contain = run["steps"]
    assert health["state"] == "skipped"
    assert health["reason"] == "dry_run"
    assert health["params"]["url"] == f"{target.base_url}/health/db-9"
    assert contain["reason"] == "dry_run"
    detail = await (await client.get(f"/v1/runs/{run['run_id']}", headers=READ)).json()
    assert [e["kind"] for e in detail["audit"]].count("step_would_run") == 2


async def test_for_delay_then_runs_if_still_firing(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(
        rules_dir,
        f"""
id: delayed
match: {{matchers: ['alertname="DiskFull"']}}
guards: {{for: 10m}}
steps:
  - {{id: contain, action: test.contain, with: {{url: "{target.base_url}/contain"}}}}
""",
    )
    clock = FakeClock()
    client = await make_client(http_allowed_hosts=(target.host,), clock=clock)
    await post(client, am_alert(starts_at=clock.now(), fingerprint="d1"))

    async def pending() -> bool:
        found = await runs(client)
        return bool(found) and found[0]["state"] == "pending"

    await wait_for(pending)
    assert target.hits("/contain") == 0
    clock.advance(timedelta(minutes=10))
    [run] = await settled(client, 1)
    assert run["state"] == "succeeded"
    assert target.hits("/contain") == 1


async def test_resolved_alert_cancels_a_run_waiting_for_for(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(
        rules_dir,
        f"""
id: delayed
match: {{matchers: ['alertname="DiskFull"']}}
guards: {{for: 10m}}
steps:
  - id: contain
    action: test.contain
    with: {{url: "{target.base_url}/contain/{{{{ labels.instance }}}}"}}
""",
    )
    clock = FakeClock()
    client = await make_client(http_allowed_hosts=(target.host,), clock=clock)
    started = clock.now()
    await post(client, am_alert(starts_at=started, fingerprint="r1"))
    await wait_for(lambda: _any_state(client, "pending"))
    await post(client, am_alert(status="resolved", starts_at=started, fingerprint="r1"))
    await wait_for(lambda: _any_state(client, "cancelled"))
    [run] = await runs(client)
    assert run["reason"] == "alert_resolved"
    assert run["steps"][0]["state"] == "cancelled"
    # a witness waits out the same delay: once it has run, the delay has passed for both
    witness = am_alert(starts_at=started, fingerprint="w1", labels={"instance": "witness"})
    await post(client, witness)
    await wait_for(lambda: _any_state(client, "pending"))
    clock.advance(timedelta(minutes=10))
    await settled(client, 2)
    assert target.hits("/contain/witness") == 1
    assert target.hits("/contain/db-1:9100") == 0


async def test_approval_step_parks_the_run_and_resolution_cancels_it(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(
        rules_dir,
        f"""
id: gated
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: look, action: log, with: {{message: "looking at {{{{ labels.instance }}}}"}}}}
  - id: contain
    action: test.contain
    approval: {{required: true, ttl: 10m}}
    with: {{url: "{target.base_url}/contain"}}
""",
    )
    client = await make_client(http_allowed_hosts=(target.host,))
    await post(client, am_alert(fingerprint="g1"))
    await wait_for(lambda: _any_state(client, "waiting_approval"))
    [run] = await runs(client)
    assert [s["state"] for s in run["steps"]] == ["succeeded", "waiting_approval"]
    assert run["steps"][1]["params"]["url"] == f"{target.base_url}/contain"
    detail = await (await client.get(f"/v1/runs/{run['run_id']}", headers=READ)).json()
    assert "approval_requested" in [e["kind"] for e in detail["audit"]]
    await post(client, am_alert(status="resolved", fingerprint="g1"))
    await wait_for(lambda: _any_state(client, "cancelled"))
    assert target.hits("/contain") == 0


async def test_resolved_alert_never_triggers_containment_unless_asked(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(
        rules_dir,
        f"""
id: any-status
match: {{status: any, matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: note, action: log, with: {{message: "seen {{{{ alert.status }}}}"}}}}
  - {{id: contain, action: test.contain, with: {{url: "{target.base_url}/contain"}}}}
---
id: on-resolve
match: {{status: resolved, matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: undo, action: test.contain, with: {{url: "{target.base_url}/undo"}}}}
""",
    )
    client = await make_client(http_allowed_hosts=(target.host,))
    await post(client, am_alert(status="resolved", fingerprint="x1"))
    found = await settled(client, 2)
    any_status = next(r for r in found if r["rule_id"] == "any-status")
    assert any_status["steps"][0]["state"] == "succeeded"
    assert any_status["steps"][1]["state"] == "skipped"
    assert any_status["steps"][1]["reason"] == "alert_resolved"
    assert target.hits("/contain") == 0
    assert target.hits("/undo") == 1


async def test_conditions_and_failure_handling(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(
        rules_dir,
        f"""
id: fallback
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - id: probe
    action: http.request
    with: {{url: "{target.base_url}/probe", expect_status: [204]}}
  - {{id: after, action: log, with: {{message: "not reached"}}}}
  - id: rescue
    action: test.contain
    if: steps.probe.failed
    with: {{url: "{target.base_url}/rescue"}}
  - id: never
    action: log
    if: labels.severity == "info"
    with: {{message: "only for info"}}
""",
    )
    client = await make_client(http_allowed_hosts=(target.host,))
    await post(client, am_alert(fingerprint="c1"))
    [run] = await settled(client, 1)
    states = {s["step_id"]: (s["state"], s["reason"]) for s in run["steps"]}
    assert states["probe"][0] == "failed"
    assert states["after"] == ("skipped", "previous_step_failed")
    assert states["rescue"][0] == "succeeded"
    assert states["never"] == ("skipped", "condition_false")
    assert run["state"] == "failed"
    assert target.hits("/rescue") == 1


async def test_host_outside_allowlist_skips_the_run_as_plan_invalid(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(
        rules_dir,
        """
id: ssrf
match: {matchers: ['alertname="DiskFull"']}
steps:
  - {id: probe, action: http.request, with: {url: "http://{{ labels.target }}/x"}}
""",
    )
    client = await make_client(http_allowed_hosts=(target.host,))
    alert = am_alert(labels={"target": "169.254.169.254"}, fingerprint="s1")
    await post(client, alert)
    await post(client, alert)  # the HA twin: deduplicated before planning, one record
    store = client.app[keys.STORE]

    async def both_processed() -> bool:
        return not await store.unprocessed_alerts(10)

    await wait_for(both_processed)
    [run] = await settled(client, 1)
    assert run["state"] == "skipped"
    assert run["reason"] == "plan_invalid"
    assert target.requests == []


async def test_temporary_errors_are_retried_within_the_deadline(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    write_rule(
        rules_dir,
        f"""
id: retry
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: contain, action: test.contain, with: {{url: "{target.base_url}/contain"}}}}
""",
    )
    target.status = 503
    client = await make_client(http_allowed_hosts=(target.host,), step_max_attempts=3)
    await post(client, am_alert(fingerprint="t1"))
    [run] = await settled(client, 1)
    step = run["steps"][0]
    assert step["state"] == "failed"
    assert step["attempts"] == 3
    assert "gave up after 3 attempts" in step["error"]
    assert target.hits("/contain") == 3


async def test_runs_api_filters_and_auth(make_client: AppFactory, rules_dir: Path) -> None:
    write_rule(
        rules_dir,
        """
id: note
match: {matchers: ['alertname=~"Disk.*"']}
steps: [{id: n, action: log, with: {message: hi}}]
""",
    )
    client = await make_client()
    for i in range(3):
        await post(client, am_alert(fingerprint=f"n{i}"))
    await settled(client, 3)
    assert (await client.get("/v1/runs")).status == 401
    page = await (await client.get("/v1/runs", params={"limit": "2"}, headers=READ)).json()
    assert len(page["runs"]) == 2
    assert page["next"]
    rest = await (
        await client.get("/v1/runs", params={"limit": "2", "before": page["next"]}, headers=READ)
    ).json()
    assert len(rest["runs"]) == 1
    assert await runs(client, rule="nope") == []
    assert len(await runs(client, status="succeeded")) == 3
    [one] = await runs(client, fingerprint="n1")
    assert one["fingerprint"] == "n1"
    assert len(await runs(client, source="alertmanager")) == 3
    assert await runs(client, source="sentry") == []
    bad = await client.get("/v1/runs", params={"status": "weird"}, headers=READ)
    assert bad.status == 400
    missing = await client.get("/v1/runs/doesnotexist", headers=READ)
    assert missing.status == 404


async def _any_state(client: TestClient[Any, Any], state: str) -> bool:
    return any(r["state"] == state for r in await runs(client))
