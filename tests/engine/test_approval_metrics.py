"""`responder_approvals_total`: what the PrometheusRule in deploy/k8s alerts on for approvals
(stuck until expiry) and the storm brake (also when it asks for approval instead of skipping)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.clock import FakeClock
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import wait_for
from tests.support.targets import Target

ALICE = {"Authorization": "Bearer alice-token"}
APPROVERS = SecretStr("alice:alice-token")


def rule(target: Target, approval: str = "") -> str:
    return f"""
id: contain
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: look, action: log, with: {{message: "looking"}}}}
  - id: act
    action: test.contain
    {approval}
    with: {{url: "{target.base_url}/act"}}
"""


async def approval_counts(client: TestClient[Any, Any]) -> dict[tuple[str, str], float]:
    """(event, reason) -> value of every responder_approvals_total sample exposed now."""
    text = await (await client.get("/metrics")).text()
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "responder_approvals_total":
                counts[(sample.labels["event"], sample.labels["reason"])] = sample.value
    return counts


async def post(client: TestClient[Any, Any], fingerprint: str) -> None:
    response = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert(fingerprint=fingerprint)),
        headers={**AUTH, **JSON},
    )
    assert response.status == 202


async def pending_approval(client: TestClient[Any, Any]) -> dict[str, Any]:
    return await OperatorApi.in_process(client, ALICE).pending_approval()


async def test_storm_brake_approval_requests_and_their_grant_are_counted(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(rule(target))
    client = await make_client(
        http_allowed_hosts=(target.host,), approver_tokens=APPROVERS, storm_max=1, workers=1
    )
    for fingerprint in ("a1", "a2"):
        await post(client, fingerprint)
    approval = await pending_approval(client)
    assert approval["reason"] == "storm_brake"
    assert await approval_counts(client) == {("requested", "storm_brake"): 1.0}

    url = f"/v1/approvals/{approval['approval_id']}/approve"
    assert (await client.post(url, headers=ALICE)).status == 200

    async def granted() -> bool:
        return (await approval_counts(client)).get(("granted", "")) == 1.0

    await wait_for(granted)
    assert await approval_counts(client) == {
        ("requested", "storm_brake"): 1.0,
        ("granted", ""): 1.0,
    }


async def test_an_approval_nobody_decides_is_counted_as_expired(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(rule(target, "approval: {required: true, ttl: 10m}"))
    clock = FakeClock()
    client = await make_client(
        http_allowed_hosts=(target.host,), approver_tokens=APPROVERS, clock=clock
    )
    await post(client, "e1")
    await pending_approval(client)
    clock.advance(timedelta(minutes=10, seconds=1))

    async def expired() -> bool:
        return (await approval_counts(client)).get(("expired", "")) == 1.0

    await wait_for(expired)
    assert await approval_counts(client) == {("requested", "rule"): 1.0, ("expired", ""): 1.0}
    assert target.hits("/act") == 0
