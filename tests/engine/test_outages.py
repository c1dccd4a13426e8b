"""Outages of the production backends under the in-process app: without Redis containment
fails closed and resumes when it returns; a PostgreSQL outage answers 503, fails readiness and
recovers. Each test gets its own database and Redis key prefix (or its own Redis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import wait_for
from tests.support.redis_service import RedisProcess
from tests.support.targets import Target, per_instance_rule
from tests.support.tcp_proxy import TcpProxy


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
    (rules_dir / "r.yaml").write_text(per_instance_rule(target))
    client = await make_client(
        http_allowed_hosts=(target.host,),
        redis_url=SecretStr(redis_process.url),
        coordination_timeout_seconds=0.5,
    )

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
    client = await make_client(
        database_url=SecretStr(dsn), migrate_on_start=True, store_timeout_seconds=1.0
    )
    try:
        assert await _post(client, "a") == 202
        await proxy.cut()
        response = await client.post(
            "/v1/webhooks/alertmanager",
            data=am_body(am_alert(fingerprint="b")),
            headers={**AUTH, **JSON},
        )
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
