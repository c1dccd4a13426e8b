"""A run whose replica died, taken over at start by the in-process app: an interrupted
containment step (`outcome_unknown`) is settled by its action's read-back against a fake
Resilience4j actuator: present -> verified, absent -> run again (idempotent, under the guard),
absent with the alert resolved meanwhile -> skipped with that reason, never run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from responder.adapters.store.sqlite.store import SqliteStore
from responder.core.normalising.alertmanager import parse_alertmanager
from responder.models.runs import RunRecord, RunState, StepRecord, StepState
from tests.support.apps import READ, AppFactory
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import wait_for

ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def actuator(aiohttp_server: ServerFactory) -> tuple[TestServer, dict[str, Any]]:
    """One breaker, `backendA`, in `seen["state"]`; POSTs counted in `seen["posts"]`."""
    seen: dict[str, Any] = {"state": "OPEN", "posts": 0}

    async def listed(request: web.Request) -> web.Response:
        return web.json_response({"circuitBreakers": {"backendA": {"state": seen["state"]}}})

    async def post(request: web.Request) -> web.Response:
        seen["posts"] += 1
        seen["state"] = "CLOSED"
        return web.json_response({"currentState": "CLOSED"})

    app = web.Application()
    app.router.add_get("/actuator/circuitbreakers", listed)
    app.router.add_post("/actuator/circuitbreakers/backendA", post)
    return await aiohttp_server(app, host="127.0.0.1"), seen


async def _interrupted_run(tmp_path: Path, rules_dir: Path, base: str, status: str) -> None:
    """What a replica killed during the breaker's POST leaves behind."""
    (rules_dir / "r.yaml").write_text(
        f"""
id: breaker
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: look, action: log, with: {{message: "looking"}}}}
  - id: reset
    action: circuit_breaker.reset
    with: {{base_url: "{base}", name: backendA}}
"""
    )
    store = await SqliteStore.open(
        tmp_path / "data" / "responder.sqlite3", timeout_seconds=5, batch_max=16
    )
    delivery = parse_alertmanager(am_body(am_alert(status=status, fingerprint="f1")))
    [stored] = await store.record_delivery(delivery, datetime.now(UTC), settled=[True])
    now = datetime.now(UTC)
    alert = stored.alert
    await store.save_run(
        RunRecord(
            run_id="cut",
            rule_id="breaker",
            alert_id=stored.alert_id,
            source=alert.source,
            fingerprint=alert.fingerprint,
            alert_identity=alert.identity,
            guard_key="breaker",
            idempotency_key="k",
            state=RunState.RUNNING,
            created_at=now,
            updated_at=now,
            owner="replica-killed",
            steps=(
                StepRecord(step_id="look", action="log", state=StepState.SUCCEEDED),
                StepRecord(
                    step_id="reset",
                    action="circuit_breaker.reset",
                    state=StepState.RUNNING,
                    started_at=now,
                    attempts=1,
                    instance="replica-killed",
                ),
            ),
        )
    )
    await store.close()


async def _finished(client: Any) -> dict[str, Any]:
    async def done() -> bool:
        body = await (await client.get("/v1/runs/cut", headers=READ)).json()
        return bool(body["state"] not in ("running", "pending"))

    await wait_for(done)
    body: dict[str, Any] = await (await client.get("/v1/runs/cut", headers=READ)).json()
    return body


def _settled(body: dict[str, Any]) -> dict[str, Any]:
    [event] = [e for e in body["audit"] if e["kind"] == "step_settled"]
    details: dict[str, Any] = event["details"]
    return details


@pytest.mark.parametrize(
    ("state", "status", "settlement", "posts", "run_state", "step_state"),
    [
        ("CLOSED", "firing", "verified", 0, "succeeded", "succeeded"),
        ("OPEN", "firing", "run_again", 1, "succeeded", "succeeded"),
        ("OPEN", "resolved", "skip", 0, "succeeded", "skipped"),  # `look` succeeded
    ],
    ids=["present", "absent-runs-again", "absent-alert-resolved"],
)
async def test_an_interrupted_containment_step_is_settled_by_its_read_back(
    make_client: AppFactory,
    rules_dir: Path,
    tmp_path: Path,
    actuator: tuple[TestServer, dict[str, Any]],
    state: str,
    status: str,
    settlement: str,
    posts: int,
    run_state: str,
    step_state: str,
) -> None:
    server, seen = actuator
    seen["state"] = state
    await _interrupted_run(tmp_path, rules_dir, f"http://127.0.0.1:{server.port}", status)
    client = await make_client(
        instance_id="replica-new", http_allowed_hosts=(f"127.0.0.1:{server.port}",)
    )
    body = await _finished(client)
    assert seen["posts"] == posts
    assert seen["state"] == ("OPEN" if status == "resolved" else "CLOSED")
    assert _settled(body)["settlement"] == settlement
    assert body["state"] == run_state
    steps = {s["step_id"]: s for s in body["steps"]}
    assert steps["look"]["state"] == "succeeded"  # completed: not repeated
    assert steps["reset"]["state"] == step_state
    assert steps["reset"]["instance"] == "replica-new"
    if status == "resolved":
        assert steps["reset"]["reason"] == "alert_resolved"
    kinds = [e["kind"] for e in body["audit"]]
    assert kinds[:2] == ["run_taken_over", "step_outcome_unknown"]
    assert "run_abandoned" not in kinds
