"""The RunStore contract: both store backends must pass these (fixtures: conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from responder.errors import StoreUnavailableError
from responder.models.alerts import Source
from responder.models.runs import AuditEvent, AuditKind, RunQuery, RunState, StepRecord, StepState
from responder.ports.store import AuditLog, RunStore
from tests.adapters.store.harnesses import StoreHarness
from tests.support.records import CEST, T0, make_alert, make_run


async def test_save_run_upserts_and_replaces_steps(run_store: RunStore) -> None:
    run = make_run("r1", not_before=T0 + timedelta(minutes=2), dry_run=True)
    await run_store.save_run(run)
    assert await run_store.get_run("r1") == run
    done = StepRecord(
        step_id="restart",
        action="k8s.rollout_restart",
        state=StepState.SUCCEEDED,
        output={"generation": 7, "ok": True, "items": ["a"]},
        attempts=2,
        started_at=T0,
        finished_at=datetime(2024, 5, 1, 14, 1, tzinfo=CEST),
    )
    changed = run.model_copy(
        update={"state": RunState.SUCCEEDED, "reason": "done", "steps": (done,), "updated_at": T0}
    )
    await run_store.save_run(changed)
    assert await run_store.get_run("r1") == changed
    assert await run_store.get_run("missing") is None


async def test_list_runs_filters_newest_first_and_pages_by_keyset(run_store: RunStore) -> None:
    runs = [
        make_run(f"r{i}", created_at=T0 + timedelta(minutes=i), rule_id=rule, state=state)
        for i, rule, state in [
            (1, "rule-a", RunState.SUCCEEDED),
            (2, "rule-b", RunState.FAILED),
            (3, "rule-a", RunState.RUNNING),
            (4, "rule-b", RunState.SUCCEEDED),
            (5, "rule-a", RunState.SUCCEEDED),
        ]
    ]
    runs.append(make_run("r6", created_at=runs[-1].created_at))  # same time: ties on run_id
    for run in runs:
        await run_store.save_run(run)
    newest = sorted(runs, key=lambda r: (r.created_at, r.run_id), reverse=True)
    assert [r.run_id for r in newest] == ["r6", "r5", "r4", "r3", "r2", "r1"]
    assert await run_store.list_runs(RunQuery()) == newest
    assert [r.run_id for r in await run_store.list_runs(RunQuery(rule_id="rule-b"))] == ["r4", "r2"]
    by_state = await run_store.list_runs(RunQuery(state=RunState.SUCCEEDED))
    assert [r.run_id for r in by_state] == ["r5", "r4", "r1"]
    since = await run_store.list_runs(RunQuery(since=runs[3].created_at.astimezone(CEST)))
    assert [r.run_id for r in since] == ["r6", "r5", "r4"]
    both = RunQuery(rule_id="rule-a", state=RunState.SUCCEEDED, limit=1)
    assert [r.run_id for r in await run_store.list_runs(both)] == ["r5"]

    pages: list[list[str]] = []
    before: str | None = None
    while True:
        page = await run_store.list_runs(RunQuery(limit=2, before=before))
        if not page:
            break
        pages.append([r.run_id for r in page])
        before = page[-1].run_id
    assert pages == [["r6", "r5"], ["r4", "r3"], ["r2", "r1"]]
    assert await run_store.list_runs(RunQuery(before="r5", rule_id="rule-b")) == [runs[3], runs[1]]
    assert await run_store.list_runs(RunQuery(before="no-such-run")) == []


async def test_open_runs_are_the_non_terminal_ones(run_store: RunStore) -> None:
    for i, state in enumerate(RunState):
        await run_store.save_run(
            make_run(f"r{i}", state=state, created_at=T0 + timedelta(seconds=i))
        )
    other = make_run("other", state=RunState.PENDING, fingerprint="fp2", source=Source.GRAFANA)
    await run_store.save_run(other)
    open_states = {RunState.PENDING, RunState.WAITING_APPROVAL, RunState.RUNNING}
    found = await run_store.open_runs()
    assert {r.state for r in found} == open_states
    assert len(found) == 4
    mine = await run_store.open_runs(Source.ALERTMANAGER, "fp1")
    assert {r.state for r in mine} == open_states
    assert await run_store.open_runs(Source.GRAFANA, "fp2") == [other]
    assert await run_store.open_runs(Source.SENTRY, "fp1") == []


async def test_owner_round_trips(run_store: RunStore) -> None:
    owned = make_run("r1", owner="replica-a-123")
    await run_store.save_run(owned)
    await run_store.save_run(make_run("r2"))
    assert await run_store.get_run("r1") == owned
    assert (await run_store.get_run("r2")) == make_run("r2")
    assert [r.owner for r in await run_store.list_runs(RunQuery())] == [None, "replica-a-123"]


async def test_has_run_finds_a_run_of_this_rule_for_this_occurrence_only(
    run_store: RunStore,
) -> None:
    alert = make_alert(1)
    assert not await run_store.has_run("rule-a", alert)
    await run_store.save_run(
        make_run("r1", fingerprint=alert.fingerprint, alert_identity=alert.identity)
    )
    assert await run_store.has_run("rule-a", alert)
    assert not await run_store.has_run("rule-b", alert)  # another rule
    later = make_alert(1, starts_at=T0 + timedelta(hours=1))  # the same alert, firing again
    assert later.identity != alert.identity
    assert not await run_store.has_run("rule-a", later)
    assert not await run_store.has_run("rule-a", make_alert(2))  # another fingerprint


async def test_replace_run_if_saves_only_from_the_expected_state(run_store: RunStore) -> None:
    pending = make_run("r1", state=RunState.PENDING, not_before=T0)
    assert not await run_store.replace_run_if(pending, RunState.PENDING)  # absent: not created
    assert await run_store.get_run("r1") is None
    await run_store.save_run(pending)
    only = StepRecord(step_id="only", action="log", state=StepState.RUNNING, attempts=1)
    running = pending.model_copy(
        update={"state": RunState.RUNNING, "owner": "replica-a", "steps": (only,)}
    )
    assert await run_store.replace_run_if(running, RunState.PENDING)
    assert await run_store.get_run("r1") == running
    stale = pending.model_copy(update={"state": RunState.CANCELLED, "reason": "late"})
    assert not await run_store.replace_run_if(stale, RunState.PENDING)
    assert await run_store.get_run("r1") == running  # steps untouched too
    done = running.model_copy(update={"state": RunState.SUCCEEDED, "steps": ()})
    assert await run_store.replace_run_if(done, RunState.RUNNING)
    assert await run_store.get_run("r1") == done


async def test_concurrent_compare_and_set_has_exactly_one_winner(
    store_harness: StoreHarness, run_store: RunStore
) -> None:
    other = await store_harness.open()  # a second replica on the same database
    for round_ in range(5):
        run_id = f"r{round_}"
        await run_store.save_run(make_run(run_id, state=RunState.PENDING))
        claims = [make_run(run_id, state=RunState.RUNNING, owner=f"replica-{i}") for i in range(6)]
        stores = [run_store, other] * 3
        results = await asyncio.gather(
            *(s.replace_run_if(c, RunState.PENDING) for s, c in zip(stores, claims, strict=True))
        )
        assert results.count(True) == 1, results
        assert await other.get_run(run_id) == claims[results.index(True)]


async def test_due_runs_are_pending_and_due_earliest_first(run_store: RunStore) -> None:
    minute = timedelta(minutes=1)
    for run_id, state, not_before in [
        ("late", RunState.PENDING, T0 + 3 * minute),  # due exactly now: included
        ("early", RunState.PENDING, T0 + minute),
        ("tie-b", RunState.PENDING, T0 + 2 * minute),
        ("tie-a", RunState.PENDING, T0 + 2 * minute),
        ("future", RunState.PENDING, T0 + 10 * minute),
        ("running", RunState.RUNNING, T0),
        ("waiting", RunState.WAITING_APPROVAL, T0),
        ("undelayed", RunState.PENDING, None),
    ]:
        await run_store.save_run(make_run(run_id, state=state, not_before=not_before))
    now = (T0 + 3 * minute).astimezone(CEST)
    due = await run_store.due_runs(now, 10)
    assert [r.run_id for r in due] == ["early", "tie-a", "tie-b", "late"]
    assert due[0] == make_run("early", state=RunState.PENDING, not_before=T0 + minute)
    assert [r.run_id for r in await run_store.due_runs(now, 2)] == ["early", "tie-a"]
    assert await run_store.due_runs(T0, 10) == []
    with pytest.raises(ValueError, match="limit"):
        await run_store.due_runs(now, 0)


async def test_a_run_is_saved_with_its_audit_events_or_not_at_all(
    run_store: RunStore, audit_log: AuditLog
) -> None:
    matched = AuditEvent(kind=AuditKind.RULE_MATCHED, at=T0, run_id="with", rule_id="rule-a")
    started = AuditEvent(kind=AuditKind.STEP_STARTED, at=T0, run_id="with", step_id="state")
    await run_store.save_run(make_run("with"), [matched, started])
    assert await run_store.get_run("with") == make_run("with")
    assert await audit_log.audit_for_run("with") == [matched, started]
    # a run the store refuses takes its audit events down with it (one transaction)
    step = StepRecord(step_id="same", action="http.request")
    broken = make_run("broken").model_copy(update={"steps": (step, step)})
    lost = AuditEvent(kind=AuditKind.RULE_MATCHED, at=T0, run_id="broken")
    with pytest.raises(StoreUnavailableError):
        await run_store.save_run(broken, [lost])
    assert await audit_log.audit_for_run("broken") == []


async def test_nul_characters_in_step_params_and_output_are_kept(run_store: RunStore) -> None:
    output = {"body": "a\x00b", "nested": ["\x00"]}  # JSON columns keep it as written
    step = StepRecord(step_id="s", action="http.request", params=output, output=output)
    await run_store.save_run(make_run("r1", steps=(step,)))
    assert (await run_store.get_run("r1")) == make_run("r1", steps=(step,))
