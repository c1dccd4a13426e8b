"""Approvals over real HTTP: who may decide, exactly once, expiry, resolution, restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.clock import FakeClock
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import wait_for
from tests.support.targets import Target

APPROVERS = SecretStr("alice:alice-token:sre,bob:bob-token:dev,carol:carol-token")
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
CAROL = {"Authorization": "Bearer carol-token"}


def gated_rule(
    target: Target, approval: str = "{required: true, ttl: 10m, approvers: [sre]}"
) -> str:
    return f"""
id: gated
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: look, action: log, with: {{message: "evidence for {{{{ labels.instance }}}}"}}}}
  - id: act
    action: test.contain
    approval: {approval}
    with: {{url: "{target.base_url}/act"}}
  - {{id: after, action: log, if: "steps.act.skipped", with: {{message: "not approved"}}}}
"""


async def _client(make_client: AppFactory, target: Target, **extra: Any) -> TestClient[Any, Any]:
    return await make_client(http_allowed_hosts=(target.host,), approver_tokens=APPROVERS, **extra)


async def _post(
    client: TestClient[Any, Any], fingerprint: str = "g1", status: str = "firing"
) -> None:
    response = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert(fingerprint=fingerprint, status=status)),
        headers={**AUTH, **JSON},
    )
    assert response.status == 202


async def _pending(client: TestClient[Any, Any]) -> dict[str, Any]:
    return await OperatorApi.in_process(client, ALICE).pending_approval()


async def _run(client: TestClient[Any, Any], run_id: str) -> dict[str, Any]:
    return await OperatorApi.in_process(client, ALICE).run(run_id)


async def _run_state(client: TestClient[Any, Any], run_id: str, state: str) -> None:
    await OperatorApi.in_process(client, ALICE).run_reaches(run_id, state)


async def test_a_named_approver_approves_once_and_the_step_runs(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated_rule(target))
    client = await _client(make_client, target)
    await _post(client)
    approval = await _pending(client)
    assert approval["step_id"] == "act"
    assert approval["approvers"] == ["sre"]
    assert approval["params"]["url"] == f"{target.base_url}/act"
    assert approval["approve_url"].endswith(f"/v1/approvals/{approval['approval_id']}/approve")
    url = f"/v1/approvals/{approval['approval_id']}"
    assert target.hits("/act") == 0

    assert (await client.post(f"{url}/approve", headers=AUTH)).status == 401  # webhook token
    forbidden = await client.post(f"{url}/approve", headers=BOB)
    assert forbidden.status == 403
    assert "sre" in (await forbidden.json())["detail"]

    ok = await client.post(f"{url}/approve", json={"comment": "go ahead"}, headers=ALICE)
    assert ok.status == 200
    decided = await ok.json()
    assert decided["state"] == "approved"
    assert decided["decided_by"] == "alice"
    await _run_state(client, approval["run_id"], "succeeded")
    assert target.hits("/act") == 1

    again = await client.post(f"{url}/reject", headers=ALICE)
    assert again.status == 409
    assert (await again.json())["approval"]["state"] == "approved"

    run = await _run(client, approval["run_id"])
    assert [s["state"] for s in run["steps"]] == ["succeeded", "succeeded", "skipped"]
    granted = next(e for e in run["audit"] if e["kind"] == "approval_granted")
    assert granted["actor"] == "alice"
    assert granted["reason"] == "go ahead"
    assert granted["details"]["source_ip"] == "127.0.0.1"


async def test_rejection_skips_the_step_and_the_run_goes_on(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated_rule(target, "true"))
    client = await _client(make_client, target)
    await _post(client)
    approval = await _pending(client)
    response = await client.post(f"/v1/approvals/{approval['approval_id']}/reject", headers=CAROL)
    assert response.status == 200
    await _run_state(client, approval["run_id"], "succeeded")
    run = await _run(client, approval["run_id"])
    act, after = run["steps"][1], run["steps"][2]
    assert (act["state"], act["reason"]) == ("skipped", "approval_rejected")
    assert after["state"] == "succeeded"  # `if: steps.act.skipped` handled the refusal
    assert target.hits("/act") == 0


async def test_concurrent_decisions_exactly_one_wins(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated_rule(target, "true"))
    client = await _client(make_client, target)
    await _post(client)
    approval = await _pending(client)
    url = f"/v1/approvals/{approval['approval_id']}"
    responses = await asyncio.gather(
        client.post(f"{url}/approve", headers=ALICE),
        client.post(f"{url}/reject", headers=CAROL),
        client.post(f"{url}/approve", headers=CAROL),
    )
    assert sorted(r.status for r in responses) == [200, 409, 409]


async def test_an_expired_approval_never_runs(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated_rule(target, "{required: true, ttl: 10m}"))
    clock = FakeClock()
    client = await _client(make_client, target, clock=clock)
    await _post(client)
    approval = await _pending(client)
    clock.advance(timedelta(minutes=10, seconds=1))
    await _run_state(client, approval["run_id"], "succeeded")
    run = await _run(client, approval["run_id"])
    assert run["steps"][1]["reason"] == "approval_expired"
    late = await client.post(f"/v1/approvals/{approval['approval_id']}/approve", headers=ALICE)
    assert late.status == 409
    assert (await late.json())["approval"]["state"] == "expired"
    assert target.hits("/act") == 0


async def test_resolution_cancels_pending_approvals(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated_rule(target, "true"))
    client = await _client(make_client, target)
    await _post(client)
    approval = await _pending(client)
    await _post(client, status="resolved")
    await _run_state(client, approval["run_id"], "cancelled")
    body = await (await client.get("/v1/approvals?status=cancelled", headers=ALICE)).json()
    assert [a["approval_id"] for a in body["approvals"]] == [approval["approval_id"]]
    refused = await client.post(f"/v1/approvals/{approval['approval_id']}/approve", headers=ALICE)
    assert refused.status == 409
    assert target.hits("/act") == 0


async def test_approvals_survive_a_restart(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated_rule(target, "true"))
    first = await _client(make_client, target)
    await _post(first)
    approval = await _pending(first)
    await first.close()
    second = await _client(make_client, target)
    response = await second.post(f"/v1/approvals/{approval['approval_id']}/approve", headers=ALICE)
    assert response.status == 200
    await _run_state(second, approval["run_id"], "succeeded")
    assert target.hits("/act") == 1


async def test_the_storm_brake_asks_for_approval_and_an_approval_lifts_it(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    rule = gated_rule(target).replace(
        "    approval: {required: true, ttl: 10m, approvers: [sre]}\n", ""
    )
    (rules_dir / "r.yaml").write_text(rule)
    client = await _client(make_client, target, storm_max=1, workers=1)
    await _post(client, "s1")
    await _post(client, "s2")
    approval = await _pending(client)
    assert approval["reason"] == "storm_brake"
    assert target.hits("/act") == 1
    assert (
        await client.post(f"/v1/approvals/{approval['approval_id']}/approve", headers=BOB)
    ).status == 200
    await _run_state(client, approval["run_id"], "succeeded")
    assert target.hits("/act") == 2


async def test_bad_requests_are_problems(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    client = await _client(make_client, target)
    missing = await client.post("/v1/approvals/nope/approve", headers=ALICE)
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
    bad = await client.post("/v1/approvals/nope/approve", data=b"{", headers={**ALICE, **JSON})
    assert bad.status == 400
    assert (await client.get("/v1/approvals?status=weird", headers=ALICE)).status == 400
    for limit in ("0", "501", "x"):  # the same bounds as /v1/runs, refused rather than clamped
        refused = await client.get(f"/v1/approvals?limit={limit}", headers=ALICE)
        assert refused.status == 400
        assert "1 to 500" in (await refused.json())["detail"]
    assert (await client.get("/v1/approvals")).status == 401


async def test_readers_read_but_never_decide(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated_rule(target, "true"))
    client = await _client(make_client, target, reader_tokens=SecretStr("rita:rita-token"))
    await _post(client)
    approval = await _pending(client)
    rita = {"Authorization": "Bearer rita-token"}
    assert (await client.get("/v1/approvals", headers=rita)).status == 200
    assert (await client.get(f"/v1/runs/{approval['run_id']}", headers=rita)).status == 200
    refused = await client.post(f"/v1/approvals/{approval['approval_id']}/approve", headers=rita)
    assert refused.status == 401


async def test_a_trusted_proxy_identity_may_decide_only_from_the_proxy(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(gated_rule(target))
    proxy = {"X-Forwarded-User": "dana", "X-Forwarded-Groups": "ops, sre"}
    untrusted = await _client(
        make_client,
        target,
        trusted_identity_header="X-Forwarded-User",
        trusted_groups_header="X-Forwarded-Groups",
        trusted_proxies=("10.9.9.9",),
    )
    await _post(untrusted)
    approval = await _pending(untrusted)
    url = f"/v1/approvals/{approval['approval_id']}/approve"
    assert (await untrusted.post(url, headers=proxy)).status == 401  # not from the proxy
    await untrusted.close()

    trusted = await _client(
        make_client,
        target,
        trusted_identity_header="X-Forwarded-User",
        trusted_groups_header="X-Forwarded-Groups",
        trusted_proxies=("127.0.0.0/8",),
    )
    decided = await trusted.post(url, headers=proxy)
    assert decided.status == 200
    assert (await decided.json())["decided_by"] == "dana"


def test_the_identity_header_needs_trusted_proxies() -> None:
    import pytest

    from responder.settings import Settings

    with pytest.raises(ValueError, match="RESPONDER_TRUSTED_PROXIES"):
        Settings(trusted_identity_header="X-Forwarded-User")


async def test_a_parked_step_notifies_the_configured_sinks(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    from responder.settings import NotifySinkSetting

    (rules_dir / "r.yaml").write_text(gated_rule(target, "true"))
    sinks = (
        NotifySinkSetting(action="notify.webhook", with_={"url": f"{target.base_url}/notice"}),
    )
    client = await _client(
        make_client, target, approval_notify=sinks, public_url="https://responder.example"
    )
    await _post(client)
    approval = await _pending(client)

    async def noticed() -> bool:
        return target.hits("/notice") == 1

    await wait_for(noticed)
    body = next(r for r in target.requests if r.path == "/notice").json
    assert body["type"] == "approval_requested"
    assert body["approval"]["approval_id"] == approval["approval_id"]
    assert body["approve_url"] == (
        f"https://responder.example/v1/approvals/{approval['approval_id']}/approve"
    )
    assert body["evidence"] == ["look (log) succeeded: evidence for db-1:9100"]
    assert "expires" in body["text"].lower()


async def test_a_failing_sink_does_not_stop_the_approval(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    from responder.settings import NotifySinkSetting

    (rules_dir / "r.yaml").write_text(gated_rule(target, "true"))
    sinks = (NotifySinkSetting(action="notify.slack", with_={"webhook_url_env": "NOT_SET_X"}),)
    client = await _client(make_client, target, approval_notify=sinks)
    await _post(client)
    approval = await _pending(client)  # the request exists although the sink failed
    ok = await client.post(f"/v1/approvals/{approval['approval_id']}/approve", headers=CAROL)
    assert ok.status == 200
    await _run_state(client, approval["run_id"], "succeeded")
