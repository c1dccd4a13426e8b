"""Crash windows between acknowledging an alert and running it: nothing runs twice, nothing is
left behind silently.

- a run saved but never started (kill -9 right after saving it) is taken over by the sweep;
- a dedup claim taken by a process that died before saving its run is taken over;
- without a shared coordinator, an occurrence that already has a run never gets a second one
  (Alertmanager re-sends its whole group after a restart).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from responder.adapters.coordination.redis import RedisCoordinator
from responder.adapters.store.sqlite.store import SqliteStore
from responder.core.normalising.alertmanager import parse_alertmanager
from responder.core.planning import dedup_key
from responder.models.alerts import Source
from responder.models.runs import RunRecord, RunState, StepRecord, StepState
from responder.web import keys
from tests.support.apps import AUTH, JSON, READ, AppFactory
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import wait_for

NOTE_RULE = """
id: note
match: {matchers: ['alertname="DiskFull"']}
steps: [{id: n, action: log, with: {message: "noted {{ labels.instance }}"}}]
"""


async def _store(tmp_path: Path) -> SqliteStore:
    return await SqliteStore.open(
        tmp_path / "data" / "responder.sqlite3", timeout_seconds=5, batch_max=16
    )


async def _runs(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    return await OperatorApi.in_process(client).runs()


async def test_a_run_saved_but_never_started_is_taken_over_at_start(
    make_client: AppFactory, rules_dir: Path, tmp_path: Path
) -> None:
    (rules_dir / "r.yaml").write_text(NOTE_RULE)
    store = await _store(tmp_path)
    now = datetime.now(UTC)
    saved = RunRecord(
        run_id="saved",
        rule_id="note",
        alert_id=1,
        source=Source.ALERTMANAGER,
        fingerprint="f",
        alert_identity="i",
        guard_key="g",
        idempotency_key="k",
        state=RunState.PENDING,
        created_at=now,
        updated_at=now,
        owner="replica-killed-9",
        steps=(StepRecord(step_id="n", action="log", state=StepState.PLANNED),),
    )
    delayed = saved.model_copy(
        update={"run_id": "delayed", "not_before": now + timedelta(hours=1)}
    )  # a `for:` wait: any replica resumes it, so it is kept
    await store.save_run(saved)
    await store.save_run(delayed)
    await store.close()

    client = await make_client(instance_id="replica-new")
    body = await (await client.get("/v1/runs/saved", headers=READ)).json()
    # taken over and re-checked: its alert (id 1) is not in the log, so it ends skipped
    assert body["state"] == "skipped"
    assert body["steps"][0]["state"] == "skipped"
    assert body["audit"][0]["kind"] == "run_taken_over"
    assert body["audit"][0]["details"]["previous_owner"] == "replica-killed-9"
    kept = await (await client.get("/v1/runs/delayed", headers=READ)).json()
    assert kept["state"] == "pending"


async def test_a_claim_orphaned_by_a_crash_is_taken_over(
    make_client: AppFactory,
    rules_dir: Path,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (rules_dir / "r.yaml").write_text(NOTE_RULE)
    delivery = parse_alertmanager(am_body(am_alert(fingerprint="orphan")))
    store = await _store(tmp_path)
    await store.record_delivery(delivery, datetime.now(UTC))  # acknowledged
    await store.close()
    coordinator = await RedisCoordinator.open(redis_url, prefix=redis_prefix, timeout_seconds=2)
    try:  # ...claimed, and the process died before it saved a run
        assert await coordinator.claim(
            "dedup:" + dedup_key("note", delivery.alerts[0].identity), timedelta(hours=1)
        )
    finally:
        await coordinator.close()

    client = await make_client(redis_url=SecretStr(redis_url), redis_prefix=redis_prefix)

    async def ran() -> bool:
        return [r["state"] for r in await _runs(client)] == ["succeeded"]

    await wait_for(ran, timeout=10)  # after the grace another replica gets to save its run
    assert "claim_orphaned" in capsys.readouterr().out  # it was the take-over that ran it


async def test_without_a_shared_coordinator_a_resent_alert_never_runs_twice(
    make_client: AppFactory, rules_dir: Path
) -> None:
    (rules_dir / "r.yaml").write_text(NOTE_RULE)
    body = am_body(am_alert(fingerprint="resent"))
    first = await make_client()
    assert (
        await first.post("/v1/webhooks/alertmanager", data=body, headers={**AUTH, **JSON})
    ).status == 202

    async def one_run(client: TestClient[Any, Any]) -> bool:
        return [r["state"] for r in await _runs(client)] == ["succeeded"]

    await wait_for(lambda: one_run(first))
    await first.close()  # a restart: the in-process claims are gone

    second = await make_client()
    assert (
        await second.post("/v1/webhooks/alertmanager", data=body, headers={**AUTH, **JSON})
    ).status == 202

    async def processed() -> bool:
        return not await second.app[keys.STORE].unprocessed_alerts(10)

    await wait_for(processed)
    runs = await _runs(second)
    assert len(runs) == 1  # the re-sent occurrence found its run in the store
    skipped = second.app[keys.METRICS].steps.labels("log", "skipped", "duplicate")
    assert skipped._value.get() == 1
