"""Crash-safe resume with real processes: the replica running a run is killed with SIGKILL
(a) during a slow diagnostic and (b) during a containment call after its request was sent.

On PostgreSQL + Redis with two replicas the survivor takes the run over when the dead one's
lease expires; on the embedded default the restarted daemon (same data dir) takes it over at
start. Each case: the run continues at the step boundary, containment happened exactly once,
and the audit says what really happened (`run_taken_over`; for (b) `step_outcome_unknown`
settled by the breaker's read-back: `step_settled` -> succeeded, verified after recovery).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.daemons import HEADERS, READ, Daemon
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import eventually

LEASE = "2"


@dataclass
class Service:
    """A slow diagnostic endpoint and a Resilience4j actuator whose POST acts, then hangs."""

    slow_first: bool = True  # the first GET /slow hangs (the replica dies during it)
    hang_post: bool = False  # the breaker POST changes the state, then never answers
    state: str = "OPEN"
    hits: dict[str, int] = field(default_factory=dict)
    server: TestServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.port}"

    def app(self) -> web.Application:
        async def slow(request: web.Request) -> web.Response:
            self._hit("GET /slow")
            if self.slow_first and self.hits["GET /slow"] == 1:
                await asyncio.sleep(60)
            return web.json_response({"disk": "full"})

        async def breakers(request: web.Request) -> web.Response:
            self._hit("GET breakers")
            return web.json_response({"circuitBreakers": {"backendA": {"state": self.state}}})

        async def post(request: web.Request) -> web.Response:
            self._hit("POST breaker")
            wanted = (await request.json())["updateState"]
            self.state = {"CLOSE": "CLOSED", "FORCE_OPEN": "FORCED_OPEN"}[wanted]
            if self.hang_post:
                await asyncio.sleep(60)  # acted; the answer never comes back
            return web.json_response({"currentState": self.state, "message": "ok"})

        app = web.Application()
        app.router.add_get("/slow", slow)
        app.router.add_get("/actuator/circuitbreakers", breakers)
        app.router.add_post("/actuator/circuitbreakers/backendA", post)
        return app

    def _hit(self, what: str) -> None:
        self.hits[what] = self.hits.get(what, 0) + 1


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    svc = Service()
    server = TestServer(svc.app(), host="127.0.0.1")
    await server.start_server()
    svc.server = server
    try:
        yield svc
    finally:
        await server.close()


def _rule(svc: Service) -> str:
    return f"""
id: breaker
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - id: look
    action: http.request
    with: {{method: GET, url: "{svc.base_url}/slow"}}
  - id: reset
    action: circuit_breaker.reset
    with: {{base_url: "{svc.base_url}", name: backendA}}
"""


def _runs(daemon: Daemon) -> list[dict[str, Any]]:
    status, body = daemon.request("/v1/runs", headers=READ)
    assert status == 200, body
    runs: list[dict[str, Any]] = json.loads(body)["runs"]
    return runs


def _run(daemon: Daemon, run_id: str) -> dict[str, Any]:
    status, body = daemon.request(f"/v1/runs/{run_id}", headers=READ)
    assert status == 200, body
    run: dict[str, Any] = json.loads(body)
    return run


async def _until(what: str, check: Any, timeout: float = 30) -> None:
    async def holds() -> bool:
        return bool(await asyncio.to_thread(check))

    await eventually(holds, timeout=timeout, interval=0.1, what=what)


def _env(svc: Service, backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {
        "RESPONDER_HTTP_ALLOWED_HOSTS": svc.host,
        "RESPONDER_LEASE_SECONDS": LEASE,
        "RESPONDER_TIMER_POLL_SECONDS": "0.2",
    }
    if backend == "postgres":
        env |= {
            "RESPONDER_DATABASE_URL": request.getfixturevalue("postgres_database"),
            "RESPONDER_REDIS_URL": request.getfixturevalue("redis_url"),
            "RESPONDER_REDIS_PREFIX": request.getfixturevalue("redis_prefix"),
            "RESPONDER_MIGRATE_ON_START": "true",
        }
    return env


async def _crash_and_continue(
    tmp_path: Path, svc: Service, backend: str, request: pytest.FixtureRequest, *, hit: str
) -> dict[str, Any]:
    """Start the owner, send one alert, kill -9 it once `hit` arrived, let the survivor (a
    second replica, or the restart) take over; returns the finished run as the survivor
    shows it."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(_rule(svc))
    env = _env(svc, backend, request)
    owner = Daemon(tmp_path / "a", rules, **env)
    survivor: Daemon | None = None
    try:
        await asyncio.to_thread(owner.wait_ready)
        if backend == "postgres":  # the second replica runs all along
            survivor = Daemon(tmp_path / "b", rules, **env)
            await asyncio.to_thread(survivor.wait_ready)
        body = am_body(am_alert(fingerprint="crash", labels={"instance": "db-1"}))
        status, _ = await asyncio.to_thread(
            owner.request, "/v1/webhooks/alertmanager", body, HEADERS
        )
        assert status == 202
        await _until(hit, lambda: svc.hits.get(hit, 0) >= 1)
        await asyncio.to_thread(owner.kill)
        if survivor is None:  # embedded default: the same daemon restarts on its data dir
            survivor = Daemon(tmp_path / "a", rules, owner.port, **env)
            await asyncio.to_thread(survivor.wait_ready)
        alive = survivor

        def finished() -> bool:
            runs = _runs(alive)
            return len(runs) == 1 and runs[0]["state"] not in ("running", "pending")

        await _until("the run finished on the survivor", finished, timeout=40)
        await asyncio.sleep(1.0)  # a late duplicate would show up now
        [run] = _runs(alive)
        return _run(alive, run["run_id"])
    finally:
        if owner.proc.poll() is None:
            await asyncio.to_thread(owner.kill)
        if survivor is not None:
            assert await asyncio.to_thread(survivor.stop) == 0


@pytest.mark.parametrize("backend", ["postgres", "embedded"])
async def test_kill_9_during_a_slow_diagnostic_is_taken_over_and_contains_once(
    tmp_path: Path, service: Service, backend: str, request: pytest.FixtureRequest
) -> None:
    run = await _crash_and_continue(tmp_path, service, backend, request, hit="GET /slow")
    assert run["state"] == "succeeded", run
    # the interrupted diagnostic ran again; the containment step ran exactly once
    assert service.hits["GET /slow"] == 2
    assert service.hits["POST breaker"] == 1
    assert service.state == "CLOSED"
    kinds = [e["kind"] for e in run["audit"]]
    [taken] = [e for e in run["audit"] if e["kind"] == "run_taken_over"]
    assert taken["details"]["steps"] == {"look": "rerun"}
    assert taken["details"]["previous_owner"] != taken["details"]["instance"]
    assert "run_abandoned" not in kinds
    assert "step_outcome_unknown" not in kinds
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["look"]["state"] == "succeeded"
    assert steps["reset"]["state"] == "succeeded"
    assert steps["reset"]["instance"] == taken["details"]["instance"]


@pytest.mark.parametrize("backend", ["postgres", "embedded"])
async def test_kill_9_after_a_containment_request_was_sent_is_settled_by_read_back(
    tmp_path: Path, service: Service, backend: str, request: pytest.FixtureRequest
) -> None:
    service.slow_first = False
    service.hang_post = True
    run = await _crash_and_continue(tmp_path, service, backend, request, hit="POST breaker")
    assert run["state"] == "succeeded", run
    assert service.hits["POST breaker"] == 1  # acted once, never again after the takeover
    assert service.hits["GET /slow"] == 1  # the completed diagnostic was not repeated
    kinds = [e["kind"] for e in run["audit"]]
    assert "run_abandoned" not in kinds
    assert kinds.index("run_taken_over") < kinds.index("step_outcome_unknown")
    [taken] = [e for e in run["audit"] if e["kind"] == "run_taken_over"]
    assert taken["details"]["steps"] == {"reset": "outcome_unknown"}
    [settled] = [e for e in run["audit"] if e["kind"] == "step_settled"]
    assert settled["details"]["observed"] == "present"
    assert settled["details"]["settlement"] == "verified"
    [done] = [e for e in run["audit"] if e["kind"] == "step_succeeded" and e["step_id"] == "reset"]
    assert done["details"]["verified"] is True
    assert done["details"]["summary"] == "verified after recovery"
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["reset"]["state"] == "succeeded"
    assert steps["reset"]["output"]["note"] == "verified after recovery"
