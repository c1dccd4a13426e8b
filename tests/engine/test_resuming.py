"""Every resume re-checks (rule enabled, plan valid, alert not resolved, approved step unchanged),
and approval notices follow the approval to its end. Real app, real HTTP target, real SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from responder.core.resumes import approval_digest
from responder.settings import NotifySinkSetting
from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.clock import FakeClock
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import eventually, wait_for
from tests.support.targets import Target

APPROVERS = SecretStr("alice:alice-token:sre,carol:carol-token")
ALICE = {"Authorization": "Bearer alice-token"}


def gated(target: Target, path: str = "/act", enabled: bool = True) -> str:
    return f"""
id: gated
enabled: {"true" if enabled else "false"}
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: look, action: log, with: {{message: "evidence for {{{{ labels.instance }}}}"}}}}
  - id: act
    action: test.contain
    approval: {{required: true, ttl: 10m}}
    with: {{url: "{target.base_url}{path}"}}
"""


def delayed(target: Target, enabled: bool = True) -> str:
    return f"""
id: delayed
enabled: {"true" if enabled else "false"}
match: {{matchers: ['alertname="DiskFull"']}}
guards: {{for: 10m}}
steps:
  - {{id: contain, action: test.contain, with: {{url: "{target.base_url}/contain"}}}}
"""


async def _client(
    make_client: AppFactory, target: Target, *, notify: bool = False, **extra: Any
) -> TestClient[Any, Any]:
    if notify:
        extra["approval_notify"] = (
            NotifySinkSetting(action="notify.webhook", with_={"url": f"{target.base_url}/notice"}),
        )
    return await make_client(http_allowed_hosts=(target.host,), approver_tokens=APPROVERS, **extra)


async def _post(
    client: TestClient[Any, Any],
    fingerprint: str,
    status: str = "firing",
    clock: FakeClock | None = None,
) -> None:
    started = clock.now() if clock is not None else None
    body = am_body(am_alert(fingerprint=fingerprint, status=status, starts_at=started))
    response = await client.post("/v1/webhooks/alertmanager", data=body, headers={**AUTH, **JSON})
    assert response.status == 202


async def _rewrite(client: TestClient[Any, Any], rules_dir: Path, text: str, marker: str) -> None:
    """Write the rule file and wait until the daemon has loaded it (`marker` in /v1/rules)."""
    (rules_dir / "r.yaml").write_text(text)
    api = OperatorApi.in_process(client, ALICE)

    async def loaded() -> bool:
        return marker in str(await api.get_json("/v1/rules"))

    await wait_for(loaded)


def _notices(target: Target) -> list[dict[str, Any]]:
    return [r.json for r in target.requests if r.path == "/notice"]


async def test_a_stale_approval_never_runs_and_a_new_one_is_asked(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated(target))
    client = await _client(make_client, target, notify=True)
    api = OperatorApi.in_process(client, ALICE)
    await _post(client, "s1")
    first = await api.pending_approval()
    assert first["params"]["url"] == f"{target.base_url}/act"
    run_id = first["run_id"]
    requested = await eventually(
        lambda: _audited(api, run_id, "approval_requested"), what="approval_requested"
    )
    assert requested["details"]["digest"] == approval_digest(first["action"], first["params"])

    await _rewrite(client, rules_dir, gated(target, "/CHANGED-destroy"), "CHANGED-destroy")
    approved = await client.post(f"/v1/approvals/{first['approval_id']}/approve", headers=ALICE)
    assert approved.status == 200

    stale = await eventually(lambda: _audited(api, run_id, "approval_stale"), what="stale")
    second = await eventually(lambda: _other_pending(api, first["approval_id"]), what="new")
    assert target.hits("/act") == 0
    assert target.hits("/CHANGED-destroy") == 0
    assert stale["details"]["approval_id"] == first["approval_id"]
    assert stale["details"]["approved_digest"] == approval_digest("test.contain", first["params"])
    assert stale["details"]["current_digest"] == approval_digest("test.contain", second["params"])
    assert stale["details"]["approved_digest"] != stale["details"]["current_digest"]
    assert stale["details"]["changed"] == ["params.url"]
    assert stale["details"]["current"]["params"]["url"].endswith("/CHANGED-destroy")
    assert second["run_id"] == run_id
    assert second["params"]["url"] == f"{target.base_url}/CHANGED-destroy"
    run = await api.run(run_id)
    assert run["state"] == "waiting_approval"
    assert run["steps"][1]["params"]["url"].endswith("/CHANGED-destroy")  # what is asked now

    async def asked_again() -> bool:  # notified like the first, after the first's follow-up
        types = [(n["type"], n["approval"]["approval_id"]) for n in _notices(target)]
        return ("approval_requested", second["approval_id"]) in types

    await wait_for(asked_again)
    types = [(n["type"], n["approval"]["approval_id"]) for n in _notices(target)]
    assert ("approval_granted", first["approval_id"]) in types

    again = await client.post(f"/v1/approvals/{second['approval_id']}/approve", headers=ALICE)
    assert again.status == 200
    done = await api.run_reaches(run_id, "succeeded")
    assert target.hits("/CHANGED-destroy") == 1  # the new request, exactly once
    assert target.hits("/act") == 0
    assert [s["state"] for s in done["steps"]] == ["succeeded", "succeeded"]
    timeline = await api.get_json(f"/v1/runs/{run_id}/timeline")
    assert (
        "approval for step `act` is stale: the step changed (params.url); not run"
        in (timeline["markdown"])
    )
    metrics = await (await client.get("/metrics")).text()
    assert 'responder_approvals_total{event="stale",reason=""} 1.0' in metrics


async def _approve_after_rewrite(
    make_client: AppFactory,
    rules_dir: Path,
    target: Target,
    fingerprint: str,
    rewritten: str,
    marker: str,
) -> dict[str, Any]:
    """Park a gated step, rewrite the rule file while it waits, approve it: the run once
    skipped."""
    (rules_dir / "r.yaml").write_text(gated(target))
    client = await _client(make_client, target)
    api = OperatorApi.in_process(client, ALICE)
    await _post(client, fingerprint)
    approval = await api.pending_approval()
    await _rewrite(client, rules_dir, rewritten, marker)
    approved = await client.post(f"/v1/approvals/{approval['approval_id']}/approve", headers=ALICE)
    assert approved.status == 200
    return await api.run_reaches(approval["run_id"], "skipped")


async def test_an_approved_step_of_a_disabled_rule_is_skipped(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    disabled = gated(target, enabled=False)
    run = await _approve_after_rewrite(
        make_client, rules_dir, target, "d1", disabled, "'enabled': False"
    )
    assert run["reason"] == "rule_disabled"
    assert run["steps"][1]["state"] == "skipped"
    assert run["steps"][1]["reason"] == "rule_disabled"
    skipped = next(e for e in run["audit"] if e["kind"] == "run_skipped")
    assert skipped["reason"] == "rule_disabled"
    assert target.hits("/act") == 0


async def test_a_removed_rule_skips_the_approved_step_too(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    other = gated(target).replace("id: gated", "id: other")
    run = await _approve_after_rewrite(make_client, rules_dir, target, "g1", other, "'id': 'other'")
    assert run["reason"] == "rule_disabled"
    assert target.hits("/act") == 0


async def test_a_changed_step_list_makes_the_plan_invalid_for_the_waiting_run(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    renamed = gated(target).replace("id: act", "id: act2")
    run = await _approve_after_rewrite(make_client, rules_dir, target, "p1", renamed, "act2")
    assert run["reason"] == "plan_invalid"
    assert target.hits("/act") == 0


async def test_after_a_for_delay_a_disabled_rule_skips_the_run(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(delayed(target))
    clock = FakeClock()
    client = await _client(make_client, target, clock=clock)
    api = OperatorApi.in_process(client, ALICE)
    await _post(client, "f1", clock=clock)
    [run] = await eventually(lambda: _in_state(api, "pending"), what="a pending run")
    await _rewrite(client, rules_dir, delayed(target, enabled=False), "'enabled': False")
    clock.advance(timedelta(minutes=10))
    done = await api.run_reaches(run["run_id"], "skipped")
    assert done["reason"] == "rule_disabled"
    assert done["steps"][0]["reason"] == "rule_disabled"
    assert target.hits("/contain") == 0


async def test_after_a_for_delay_a_resolved_alert_never_contains(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(delayed(target))
    clock = FakeClock()
    client = await _client(make_client, target, clock=clock)
    api = OperatorApi.in_process(client, ALICE)
    await _post(client, "f2", clock=clock)
    [run] = await eventually(lambda: _in_state(api, "pending"), what="a pending run")
    await _post(client, "f2", status="resolved", clock=clock)
    await api.run_reaches(run["run_id"], "cancelled")
    clock.advance(timedelta(minutes=10))
    await _post(client, "w1", clock=clock)  # a witness: once it is pending, the poller has run
    await eventually(lambda: _in_state(api, "pending"), what="the witness pending")
    clock.advance(timedelta(minutes=10))
    await api.settled_runs(2)
    done = await api.run(run["run_id"])
    assert (done["state"], done["reason"]) == ("cancelled", "alert_resolved")
    assert target.hits("/contain") == 1  # the witness only


async def test_notices_follow_the_approval_to_its_end(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated(target))
    clock = FakeClock()
    client = await _client(
        make_client, target, notify=True, clock=clock, public_url="https://responder.example"
    )
    api = OperatorApi.in_process(client, ALICE)

    await _post(client, "n1", clock=clock)  # approved
    approved = await api.pending_approval()
    await client.post(
        f"/v1/approvals/{approved['approval_id']}/approve", json={"comment": "go"}, headers=ALICE
    )
    await api.run_reaches(approved["run_id"], "succeeded")

    await _post(client, "n2", clock=clock)  # rejected
    rejected = await eventually(lambda: _other_pending(api, approved["approval_id"]))
    await client.post(f"/v1/approvals/{rejected['approval_id']}/reject", headers=ALICE)

    await _post(client, "n3", clock=clock)  # cancelled by the resolution
    cancelled = await eventually(lambda: _pending_of(api, rejected["run_id"]))
    await _post(client, "n3", status="resolved", clock=clock)
    await api.run_reaches(cancelled["run_id"], "cancelled")

    await _post(client, "n4", clock=clock)  # expired
    expired = await eventually(lambda: _pending_of(api, cancelled["run_id"]))
    clock.advance(timedelta(minutes=10, seconds=1))

    async def followed() -> dict[str, dict[str, Any]] | None:
        ends = {
            n["approval"]["approval_id"]: n
            for n in _notices(target)
            if n["type"] != "approval_requested"
        }
        wanted = [a["approval_id"] for a in (approved, rejected, cancelled, expired)]
        return ends if all(w in ends for w in wanted) else None

    ends = await eventually(followed, what="a follow-up notice per approval")
    granted = ends[approved["approval_id"]]
    assert granted["type"] == "approval_granted"
    assert "approved by alice" in granted["text"]
    assert '"go"' in granted["text"]
    assert granted["run_url"] == f"https://responder.example/v1/runs/{approved['run_id']}"
    assert ends[rejected["approval_id"]]["type"] == "approval_rejected"
    assert "rejected by alice" in ends[rejected["approval_id"]]["text"]
    assert ends[cancelled["approval_id"]]["type"] == "approval_cancelled"
    assert "alert resolved" in ends[cancelled["approval_id"]]["text"]
    assert ends[expired["approval_id"]]["type"] == "approval_expired"
    assert ends[expired["approval_id"]]["approval"]["state"] == "expired"
    requests = [n for n in _notices(target) if n["type"] == "approval_requested"]
    assert len(requests) == 4  # one request and one follow-up each
    assert len(_notices(target)) == 8
    assert target.hits("/act") == 1  # only the approved one acted


async def _audited(api: OperatorApi, run_id: str, kind: str) -> dict[str, Any] | None:
    run = await api.run(run_id)
    return next((e for e in run["audit"] if e["kind"] == kind), None)


async def _other_pending(api: OperatorApi, approval_id: str) -> dict[str, Any] | None:
    found = [a for a in await api.approvals(status="pending") if a["approval_id"] != approval_id]
    return found[0] if found else None


async def _pending_of(api: OperatorApi, not_run: str) -> dict[str, Any] | None:
    found = [a for a in await api.approvals(status="pending") if a["run_id"] != not_run]
    return found[0] if found else None


async def _in_state(api: OperatorApi, state: str) -> list[dict[str, Any]] | None:
    found = [r for r in await api.runs() if r["state"] == state]
    return found or None
