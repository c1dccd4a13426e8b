"""Production shape with several `responder serve` processes on real PostgreSQL and Redis:
three replicas share the work exactly once, and a replica killed with SIGKILL loses nothing
acknowledged and runs nothing twice (its runs are taken over). Each test gets its own database
and Redis key prefix."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from tests.support.daemons import HEADERS, Daemon
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import eventually, wait_for
from tests.support.targets import Target, per_instance_rule


def scalar(dsn: str, sql: str) -> int:
    """The single integer a query returns."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _send_to_all(daemons: list[Daemon], bodies: list[bytes]) -> list[int]:
    """Every body to every replica at once, as an HA pair (or three) of Alertmanagers would."""
    jobs = [(d, b) for b in bodies for d in daemons]
    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(
            pool.map(
                lambda job: job[0].request("/v1/webhooks/alertmanager", job[1], HEADERS)[0], jobs
            )
        )


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


async def test_three_replicas_run_every_containment_step_exactly_once(
    tmp_path: Path, target: Target, postgres_database: str, redis_url: str, redis_prefix: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(per_instance_rule(target))
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


async def test_kill_9_loses_nothing_acknowledged_and_runs_nothing_twice(
    tmp_path: Path, target: Target, postgres_database: str, redis_url: str, redis_prefix: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(per_instance_rule(target))
    target.delay = 0.5  # containment steps are in flight when the replica dies
    env = {
        **_production_env(postgres_database, redis_url, redis_prefix, target),
        "RESPONDER_LEASE_SECONDS": "2",
        "RESPONDER_WORKERS": "4",
    }
    first = Daemon(tmp_path / "a", rules, **env)
    await asyncio.to_thread(first.wait_ready)
    acked: list[int] = []
    for i in range(20):
        body = am_body(am_alert(labels={"instance": f"k{i}"}, fingerprint=f"k{i}"))
        status, reply = await asyncio.to_thread(
            first.request, "/v1/webhooks/alertmanager", body, HEADERS
        )
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
        # the in-flight runs are taken over, never abandoned: a POST that was in flight may
        # have acted and has no read-back, so its step waits for an approval (outcome_unknown)
        assert scalar(postgres_database, "SELECT count(*) FROM runs WHERE state = 'abandoned'") == 0
        assert (
            scalar(postgres_database, "SELECT count(*) FROM runs WHERE state = 'waiting_approval'")
            >= 1
        )
        finished = scalar(
            postgres_database,
            "SELECT count(*) FROM runs WHERE state IN ('succeeded', 'waiting_approval', 'failed')",
        )
        assert finished == 20
    finally:
        assert second.stop() == 0


def _any_request(target: Target) -> Any:
    async def seen() -> bool:
        return bool(target.requests)

    return seen
