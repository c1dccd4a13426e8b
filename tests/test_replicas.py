"""Production shape against real PostgreSQL and Redis: fail closed, outages, many replicas,
kill -9. Each test gets its own database and Redis key prefix (or its own Redis)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from tests.payload_builders import am_alert, am_body
from tests.redis_service import RedisProcess
from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.daemons import HEADERS, Daemon
from tests.support.operator_api import OperatorApi
from tests.support.polling import eventually, wait_for
from tests.support.targets import Target
from tests.tcp_proxy import TcpProxy


def scalar(dsn: str, sql: str) -> int:
    """The single integer a query returns."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def contain_rule(target: Target) -> str:
    """A diagnostic then a containment step (an HTTP POST is containment)."""
    return f"""
id: contain
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: look, action: log, with: {{message: "looking at {{{{ labels.instance }}}}"}}}}
  - id: act
    action: http.request
    with: {{method: POST, url: "{target.base_url}/act/{{{{ labels.instance }}}}", json: {{}}}}
"""


async def _runs(client: Any) -> list[dict[str, Any]]:
    return await OperatorApi.in_process(client).runs()


async def _post(client: Any, instance: str) -> int:
    response = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert(labels={"instance": instance}, fingerprint=instance)),
        headers={**AUTH, **JSON},
    )
    return int(response.status)


async def test_containment_fails_closed_without_redis_and_resumes_when_it_returns(
    make_client: AppFactory, rules_dir: Path, target: Target, redis_process: RedisProcess
) -> None:
    (rules_dir / "r.yaml").write_text(contain_rule(target))
    client = await make_client(
        http_allowed_hosts=(target.host,), redis_url=SecretStr(redis_process.url),
        coordination_timeout_seconds=0.5,
    )  # fmt: skip

    async def run_of(instance: str) -> dict[str, Any] | None:
        for run in await _runs(client):
            if run["fingerprint"] == instance and run["state"] not in ("running", "pending"):
                return run
        return None

    assert await _post(client, "before") == 202
    await wait_for(lambda: _exists(run_of, "before"))
    assert target.hits("/act/before") == 1

    redis_process.stop()
    assert await _post(client, "during") == 202  # intake does not need Redis
    await wait_for(lambda: _exists(run_of, "during"), timeout=15)
    during = await run_of("during")
    assert during is not None
    assert during["steps"][0]["state"] == "succeeded"  # diagnostics still run
    assert during["steps"][1]["state"] == "skipped"
    assert during["steps"][1]["reason"] == "coordination_unavailable"
    assert target.hits("/act/during") == 0

    redis_process.start()  # same port, no restart of responder
    assert await _post(client, "after") == 202
    await wait_for(lambda: _exists(run_of, "after"), timeout=15)
    after = await run_of("after")
    assert after is not None
    assert after["steps"][1]["state"] == "succeeded"
    assert target.hits("/act/after") == 1


async def _exists(probe: Any, instance: str) -> bool:
    return await probe(instance) is not None


async def test_postgres_outage_answers_503_fails_readiness_and_recovers(
    make_client: AppFactory, rules_dir: Path, postgres_database: str
) -> None:
    parts = conninfo_to_dict(postgres_database)
    proxy = TcpProxy(str(parts.get("host") or "127.0.0.1"), int(parts.get("port") or 5432))
    await proxy.start()
    dsn = make_conninfo(postgres_database, host="127.0.0.1", port=str(proxy.port))
    (rules_dir / "r.yaml").write_text(
        "id: note\nmatch: {matchers: ['alertname=\"DiskFull\"']}\n"
        "steps: [{id: n, action: log, with: {message: hi}}]\n"
    )
    client = await make_client(database_url=SecretStr(dsn), migrate_on_start=True,
                               store_timeout_seconds=1.0)  # fmt: skip
    try:
        assert await _post(client, "a") == 202
        await proxy.cut()
        response = await client.post(
            "/v1/webhooks/alertmanager", data=am_body(am_alert(fingerprint="b")),
            headers={**AUTH, **JSON},
        )  # fmt: skip
        assert response.status == 503
        assert response.headers["Retry-After"]
        ready = await client.get("/readyz")
        assert ready.status == 503
        assert "store" in (await ready.json())["failing"]

        await proxy.restore()

        async def recovered() -> bool:
            return (await client.get("/readyz")).status == 200

        await wait_for(recovered, timeout=20)
        assert await _post(client, "c") == 202
    finally:
        await client.close()  # while its database is reachable: a quick shutdown
        await proxy.cut()


def _send_to_all(daemons: list[Daemon], bodies: list[bytes]) -> list[int]:
    """Every body to every replica at once, as an HA pair (or three) of Alertmanagers would."""
    jobs = [(d, b) for b in bodies for d in daemons]
    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(lambda job: job[0].request("/v1/webhooks/alertmanager", job[1],
                                                        HEADERS)[0], jobs))  # fmt: skip


def _production_env(database: str, redis_url: str, prefix: str, target: Target) -> dict[str, str]:
    return {
        "RESPONDER_DATABASE_URL": database,
        "RESPONDER_REDIS_URL": redis_url,
        "RESPONDER_REDIS_PREFIX": prefix,
        "RESPONDER_MIGRATE_ON_START": "true",
        "RESPONDER_HTTP_ALLOWED_HOSTS": target.host,
        "RESPONDER_TIMER_POLL_SECONDS": "0.2",
        "RESPONDER_STORM_MAX": "1000",
    }


@pytest.mark.e2e  # three `responder serve` processes
async def test_three_replicas_run_every_containment_step_exactly_once(
    tmp_path: Path, target: Target, postgres_database: str, redis_url: str, redis_prefix: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(contain_rule(target))
    env = _production_env(postgres_database, redis_url, redis_prefix, target)
    daemons = [Daemon(tmp_path / f"r{i}", rules, **env) for i in range(3)]
    try:
        await asyncio.gather(*(asyncio.to_thread(d.wait_ready) for d in daemons))
        instances = [f"host-{i}" for i in range(30)]
        bodies = [
            am_body(am_alert(labels={"instance": i}, fingerprint=f"fp-{i}")) for i in instances
        ]
        statuses = await asyncio.to_thread(_send_to_all, daemons, bodies)
        assert statuses == [202] * 90

        def settled() -> bool:
            runs = scalar(postgres_database, "SELECT count(*) FROM runs")
            busy = scalar(
                postgres_database, "SELECT count(*) FROM runs WHERE state IN ('running', 'pending')"
            )
            unprocessed = scalar(
                postgres_database, "SELECT count(*) FROM alerts WHERE processed_at IS NULL"
            )
            return runs == 30 and busy == 0 and unprocessed == 0

        await eventually(
            lambda: asyncio.to_thread(settled), timeout=30, interval=0.2, what="settled runs"
        )
        for instance in instances:
            assert target.hits(f"/act/{instance}") == 1, instance
        assert scalar(postgres_database, "SELECT count(*) FROM alerts") == 90  # all recorded
        duplicates = scalar(
            postgres_database,
            "SELECT count(*) FROM audit_events WHERE kind = 'run_skipped' AND reason = 'duplicate'",
        )
        assert duplicates == 60  # every repeat audited
        # the work really was shared between the replicas
        assert scalar(postgres_database, "SELECT count(DISTINCT owner) FROM runs") >= 2
    finally:
        for daemon in daemons:
            assert daemon.stop() == 0


@pytest.mark.e2e  # `responder serve` processes, one killed with SIGKILL
async def test_kill_9_loses_nothing_acknowledged_and_runs_nothing_twice(
    tmp_path: Path, target: Target, postgres_database: str, redis_url: str, redis_prefix: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(contain_rule(target))
    target.delay = 0.5  # containment steps are in flight when the replica dies
    env = {**_production_env(postgres_database, redis_url, redis_prefix, target),
           "RESPONDER_LEASE_SECONDS": "2", "RESPONDER_WORKERS": "4"}  # fmt: skip
    first = Daemon(tmp_path / "a", rules, **env)
    await asyncio.to_thread(first.wait_ready)
    acked: list[int] = []
    for i in range(20):
        body = am_body(am_alert(labels={"instance": f"k{i}"}, fingerprint=f"k{i}"))
        status, reply = await asyncio.to_thread(first.request, "/v1/webhooks/alertmanager",
                                                body, HEADERS)  # fmt: skip
        assert status == 202
        acked.extend(json.loads(reply)["ids"])
    await wait_for(_any_request(target))
    first.kill()

    with psycopg.connect(postgres_database) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM alerts").fetchall()}
    assert set(acked) <= stored  # every 202 was written down before it was sent

    await asyncio.sleep(2.5)  # the dead replica's lease expires
    second = Daemon(tmp_path / "b", rules, **env)
    try:
        await asyncio.to_thread(second.wait_ready)

        def settled() -> bool:
            busy = scalar(
                postgres_database, "SELECT count(*) FROM runs WHERE state IN ('running', 'pending')"
            )
            unprocessed = scalar(
                postgres_database, "SELECT count(*) FROM alerts WHERE processed_at IS NULL"
            )
            return busy == 0 and unprocessed == 0

        await eventually(
            lambda: asyncio.to_thread(settled),
            timeout=40,
            interval=0.2,
            what="settled runs after the restart",
        )
        await asyncio.sleep(1.0)  # any late duplicate would show up now
        for i in range(20):
            assert target.hits(f"/act/k{i}") <= 1, f"k{i} contained twice"
        # the in-flight runs are abandoned with a reason, never re-run
        assert scalar(postgres_database, "SELECT count(*) FROM runs WHERE state = 'abandoned'") >= 1
        finished = scalar(
            postgres_database,
            "SELECT count(*) FROM runs WHERE state IN ('succeeded', 'abandoned', 'failed')",
        )
        assert finished == 20
    finally:
        assert second.stop() == 0


def _any_request(target: Target) -> Any:
    async def seen() -> bool:
        return bool(target.requests)

    return seen
