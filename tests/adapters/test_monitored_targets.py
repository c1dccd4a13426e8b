"""Monitored databases configured by settings and used by rules in the running app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from tests.support.apps import AUTH, AppFactory
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body

RULE = """
id: db-triage
match: {matchers: ['alertname="DiskFull"']}
steps:
  - {id: conns, action: postgres.query, with: {target: orders, check: connections_by_state}}
  - {id: cache, action: redis.info, with: {target: cache, sections: [memory, clients]}}
"""


async def test_rules_read_the_configured_postgres_and_redis_targets(
    make_client: AppFactory, rules_dir: Path, postgres_database: str, redis_url: str
) -> None:
    (rules_dir / "r.yaml").write_text(RULE)
    client = await make_client(
        postgres_targets={"orders": SecretStr(postgres_database)},
        redis_targets={"cache": SecretStr(redis_url)},
    )
    response = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert()),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status == 202
    run = await _only_run(client)
    assert run["state"] == "succeeded", run
    conns, cache = run["steps"]
    assert conns["output"]["row_count"] >= 1
    assert "used_memory" in cache["output"]["sections"]["memory"]
    assert "connected_clients" in cache["output"]["sections"]["clients"]
    assert conns["params"]["target"] == "orders"  # the DSN itself never enters a record


async def test_a_rule_naming_an_unconfigured_target_fails_clearly(
    make_client: AppFactory, rules_dir: Path
) -> None:
    (rules_dir / "r.yaml").write_text(RULE)
    client = await make_client()
    await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert()),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    run = await _only_run(client)
    assert run["state"] == "failed"
    assert "RESPONDER_POSTGRES_TARGETS" in run["steps"][0]["error"]


async def _only_run(client: Any) -> dict[str, Any]:
    """The single run, once it has finished."""
    return await OperatorApi.in_process(client).settled_run(timeout=15)
