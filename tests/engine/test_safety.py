"""Storm brake, `for:` delays that survive a restart, and taking over runs of dead replicas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from responder.adapters.store.sqlite.store import SqliteStore
from responder.models.alerts import Source
from responder.models.runs import RunRecord, RunState, StepRecord, StepState
from responder.web import keys
from tests.support.apps import AUTH, JSON, READ, AppFactory
from tests.support.clock import FakeClock
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import wait_for
from tests.support.targets import Target


async def post(client: TestClient[Any, Any], *alerts: dict[str, Any]) -> None:
    response = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(*alerts), headers={**AUTH, **JSON}
    )
    assert response.status == 202


async def runs(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    return await OperatorApi.in_process(client).runs()


def contain_rule(target: Target, extra: str = "") -> str:
    return f"""
id: contain
match: {{matchers: ['alertname="DiskFull"']}}
{extra}
steps:
  - {{id: look, action: log, with: {{message: "looking"}}}}
  - {{id: act, action: test.contain, with: {{url: "{target.base_url}/act"}}}}
"""


async def _states(client: TestClient[Any, Any], count: int) -> list[str]:
    found = await OperatorApi.in_process(client).settled_runs(count)
    assert len(found) == count
    return sorted(r["steps"][1]["state"] + ":" + (r["steps"][1]["reason"] or "") for r in found)


async def test_storm_brake_skips_containment_beyond_the_limit(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(contain_rule(target))
    client = await make_client(
        http_allowed_hosts=(target.host,), storm_max=2, storm_action="skip", workers=1
    )
    for i in range(4):
        await post(client, am_alert(fingerprint=f"s{i}"))
    states = await _states(client, 4)
    assert states == ["skipped:storm_brake", "skipped:storm_brake", "succeeded:", "succeeded:"]
    assert target.hits("/act") == 2
    metrics = await (await client.get("/metrics")).text()
    assert 'outcome="skipped",reason="storm_brake"} 2.0' in metrics


async def test_storm_brake_can_require_approval_instead(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(contain_rule(target))
    client = await make_client(http_allowed_hosts=(target.host,), storm_max=1, workers=1)
    for i in range(2):
        await post(client, am_alert(fingerprint=f"a{i}"))

    async def parked() -> bool:
        return any(r["state"] == "waiting_approval" for r in await runs(client))

    await wait_for(parked)
    waiting = next(r for r in await runs(client) if r["state"] == "waiting_approval")
    assert waiting["steps"][0]["state"] == "succeeded"  # diagnostics still ran
    assert waiting["steps"][1]["reason"] == "storm_brake"
    assert target.hits("/act") == 1


async def test_for_delay_survives_a_restart(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(contain_rule(target, "guards: {for: 10m}"))
    clock = FakeClock()  # one clock across the restart; only the test moves it
    first = await make_client(http_allowed_hosts=(target.host,), clock=clock)
    await post(first, am_alert(starts_at=clock.now(), fingerprint="p1"))

    async def pending() -> bool:
        return [r["state"] for r in await runs(first)] == ["pending"]

    await wait_for(pending)
    await first.close()  # the process stops during the delay
    assert target.hits("/act") == 0

    second = await make_client(http_allowed_hosts=(target.host,), clock=clock)
    clock.advance(timedelta(minutes=10))

    async def done() -> bool:
        return [r["state"] for r in await runs(second)] == ["succeeded"]

    await wait_for(done)
    assert target.hits("/act") == 1


async def test_runs_of_a_dead_replica_are_taken_over_and_live_ones_kept(
    make_client: AppFactory, rules_dir: Path, tmp_path: Path
) -> None:
    store = await SqliteStore.open(
        tmp_path / "data" / "responder.sqlite3", timeout_seconds=5, batch_max=8
    )
    now = datetime.now(UTC)

    def running(run_id: str, owner: str) -> RunRecord:
        return RunRecord(
            run_id=run_id,
            rule_id="r",
            alert_id=1,
            source=Source.ALERTMANAGER,
            fingerprint="f",
            alert_identity=run_id,
            guard_key="g",
            idempotency_key=run_id,
            state=RunState.RUNNING,
            created_at=now,
            updated_at=now,
            owner=owner,
            steps=(StepRecord(step_id="s", action="log", state=StepState.RUNNING),),
        )

    await store.save_run(running("dead", "replica-gone-123"))
    await store.close()
    client = await make_client(instance_id="replica-new-1")
    body = await (await client.get("/v1/runs/dead", headers=READ)).json()
    # taken over, re-checked: its rule `r` is gone, so what is left is skipped with that reason
    assert body["state"] == "skipped"
    assert body["reason"] == "rule_disabled"
    assert body["steps"][0]["state"] == "skipped"
    [taken] = [e for e in body["audit"] if e["kind"] == "run_taken_over"]
    assert taken["details"]["previous_owner"] == "replica-gone-123"
    assert taken["details"]["instance"] == "replica-new-1"
    assert taken["details"]["steps"] == {"s": "rerun"}  # an interrupted diagnostic

    # a run owned by a replica whose lease is fresh is left alone
    coordinator = client.app[keys.COORDINATOR]
    await coordinator.start_cooldown("replica:replica-alive-2", timedelta(seconds=30))
    await client.app[keys.STORE].save_run(running("alive", "replica-alive-2"))
    from unittest.mock import AsyncMock

    from responder.engine.leases import Leases

    resumer = AsyncMock()
    leases = Leases(
        coordinator,
        client.app[keys.STORE],
        client.app[keys.CLOCK],
        resumer=resumer,
        instance_id="replica-new-1",
        lease=timedelta(seconds=15),
    )
    assert await leases.sweep() == 0
    resumer.take_over.assert_not_called()
    kept = await (await client.get("/v1/runs/alive", headers=READ)).json()
    assert kept["state"] == "running"
