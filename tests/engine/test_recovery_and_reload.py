"""Start-up recovery (unprocessed alerts, interrupted runs) and live rule reloads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from responder.adapters.store.sqlite.store import SqliteStore
from responder.core.normalising.alertmanager import parse_alertmanager
from responder.models.alerts import Source
from responder.models.runs import RunRecord, RunState, StepRecord, StepState
from responder.web import keys
from tests.support.apps import AUTH, READ, AppFactory
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


async def test_alerts_received_but_not_processed_are_picked_up_at_start(
    make_client: AppFactory, rules_dir: Path, tmp_path: Path
) -> None:
    (rules_dir / "r.yaml").write_text(NOTE_RULE)
    store = await _store(tmp_path)
    delivery = parse_alertmanager(
        am_body(am_alert(labels={"instance": "a"}), am_alert(labels={"instance": "b"}))
    )
    await store.record_delivery(delivery, datetime.now(UTC))  # acknowledged, then a crash
    await store.close()

    client = await make_client()
    app_store = client.app[keys.STORE]

    async def both_ran() -> bool:
        runs = (await (await client.get("/v1/runs", headers=READ)).json())["runs"]
        return len(runs) == 2 and all(r["state"] == "succeeded" for r in runs)

    async def both_marked_processed() -> bool:  # marked just after each run finishes
        return not await app_store.unprocessed_alerts(10)

    await wait_for(both_ran)
    await wait_for(both_marked_processed)
    assert len((await (await client.get("/v1/runs", headers=READ)).json())["runs"]) == 2


async def test_runs_left_running_are_taken_over_at_the_step_boundary(
    make_client: AppFactory, rules_dir: Path, tmp_path: Path
) -> None:
    (rules_dir / "r.yaml").write_text(NOTE_RULE)
    store = await _store(tmp_path)
    now = datetime.now(UTC)
    steps = (
        StepRecord(step_id="a", action="log", state=StepState.SUCCEEDED),
        StepRecord(step_id="b", action="log", state=StepState.RUNNING, started_at=now),
        StepRecord(step_id="c", action="log"),
    )
    run = RunRecord(
        run_id="interrupted",
        rule_id="note",
        alert_id=1,
        source=Source.ALERTMANAGER,
        fingerprint="f",
        alert_identity="i",
        guard_key="g",
        idempotency_key="k",
        state=RunState.RUNNING,
        created_at=now,
        updated_at=now,
        steps=steps,
    )
    await store.save_run(run)
    await store.close()

    client = await make_client()
    # the restart takes it over: `a` is not repeated; `b` (a diagnostic) runs again, then `c`.
    # Its alert (id 1) is not in the log, so the re-check ends it: skipped with that reason
    body = await (await client.get("/v1/runs/interrupted", headers=READ)).json()
    assert body["state"] == "skipped"
    assert body["reason"] == "plan_invalid"
    assert [s["state"] for s in body["steps"]] == ["succeeded", "skipped", "skipped"]
    assert [e["kind"] for e in body["audit"]][:1] == ["run_taken_over"]


async def test_rule_files_reload_on_change_and_bad_sets_are_refused(
    make_client: AppFactory, rules_dir: Path
) -> None:
    (rules_dir / "r.yaml").write_text(NOTE_RULE)
    client = await make_client(rules_poll_seconds=0.05)
    rulebook = client.app[keys.RULEBOOK]
    first = rulebook.current.digest
    assert [r.rule.id for r in rulebook.current.rules] == ["note"]

    (rules_dir / "more.yaml").write_text(NOTE_RULE.replace("id: note", "id: second"))

    async def reloaded() -> bool:
        return len(rulebook.current.rules) == 2

    await wait_for(reloaded)
    good = rulebook.current.digest
    assert good != first

    (rules_dir / "bad.yaml").write_text("id: bad\nsteps: [{id: x, action: nope}]\n")

    async def rejected() -> bool:
        metrics = await (await client.get("/metrics")).text()
        return 'responder_rules_reloads_total{outcome="rejected"}' in metrics

    await wait_for(rejected)  # the reloader has looked at the invalid set...
    assert rulebook.current.digest == good  # ...and refused it
    metrics = await (await client.get("/metrics")).text()
    assert 'responder_rules_reloads_total{outcome="rejected"}' in metrics
    assert "responder_rules_loaded 2.0" in metrics

    # the running daemon uses the new rules
    await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert()),
        headers={**AUTH, "Content-Type": "application/json"},
    )

    async def two_runs() -> bool:
        runs = (await (await client.get("/v1/runs", headers=READ)).json())["runs"]
        return sorted(r["rule_id"] for r in runs) == ["note", "second"]

    await wait_for(two_runs)


async def test_rules_endpoint_shows_the_active_set_and_its_version(
    make_client: AppFactory, rules_dir: Path
) -> None:
    (rules_dir / "r.yaml").write_text(NOTE_RULE)
    client = await make_client()
    assert (await client.get("/v1/rules")).status == 401
    body = await (await client.get("/v1/rules", headers=READ)).json()
    assert body["digest"] == client.app[keys.RULEBOOK].current.digest
    [rule] = body["rules"]
    assert rule["id"] == "note"
    assert rule["location"].endswith("r.yaml:2")
    assert rule["match"]["matchers"] == ['alertname="DiskFull"']
