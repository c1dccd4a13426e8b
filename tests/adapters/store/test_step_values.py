"""Both stores keep each step's `instance` and `sent` (the request as sent), and a SQLite file
of the version before them migrates forward with its steps intact (PostgreSQL: 0004)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from responder.adapters.store.sqlite.schema import MIGRATIONS, to_text
from responder.adapters.store.sqlite.store import SqliteStore
from responder.models.runs import RunQuery, RunState, StepRecord, StepState
from responder.ports.store import RunStore
from tests.support.records import T0, make_run

SENT = {
    "method": "PATCH",
    "path": "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=responder",
    "json": {"spec": {"template": {"metadata": {"annotations": {"at": "2026-11-23T10:41:52Z"}}}}},
    "headers": {"Authorization": "[REDACTED]"},
    "note": "cödé ✓",
}


async def test_a_step_keeps_its_instance_and_what_it_sent(run_store: RunStore) -> None:
    done = StepRecord(
        step_id="restart",
        action="k8s.rollout_restart",
        state=StepState.SUCCEEDED,
        params={"json": {"at": "<time of the run>"}},
        attempts=1,
        started_at=T0,
        finished_at=T0,
        instance="replica-a",
        sent=SENT,
    )
    waiting = StepRecord(step_id="later", action="log", instance="replica-b")
    run = make_run("r1", state=RunState.RUNNING, steps=(done, waiting))
    await run_store.save_run(run)
    assert await run_store.get_run("r1") == run
    assert await run_store.list_runs(RunQuery()) == [run]


async def test_a_version_3_sqlite_file_gains_the_step_columns(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for version, statements in MIGRATIONS[:3]:
            for statement in statements:
                raw.execute(statement)
            raw.execute("INSERT INTO schema_version VALUES (?, ?)", (version, to_text(T0)))
        raw.execute(
            "INSERT INTO runs (run_id, rule_id, alert_id, source, fingerprint, alert_identity, "
            "guard_key, idempotency_key, state, dry_run, created_at, updated_at) "
            "VALUES ('old', 'rule-a', 1, 'alertmanager', 'fp1', 'alertmanager:fp1:-:firing', "
            "'shop/api', 'idem-old', 'succeeded', 0, ?, ?)",
            (to_text(T0), to_text(T0)),
        )
        raw.execute(
            "INSERT INTO steps (run_id, step_id, position, action, state, params_json, attempts) "
            "VALUES ('old', 'state', 0, 'http.request', 'succeeded', '{\"url\": \"http://x\"}', 1)"
        )
    store = await SqliteStore.open(path, timeout_seconds=5, batch_max=8)
    try:
        old = await store.get_run("old")
        assert old is not None
        [step] = old.steps
        assert (step.params, step.instance, step.sent) == ({"url": "http://x"}, None, None)
        moved = step.model_copy(update={"instance": "replica-a", "sent": {"url": "http://x"}})
        await store.save_run(old.model_copy(update={"steps": (moved,)}))
        again = await store.get_run("old")
        assert again is not None
        assert again.steps == (moved,)
    finally:
        await store.close()
