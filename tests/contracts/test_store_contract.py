"""The Store contract: every implementation of `responder.ports.Store` must pass these."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from responder.errors import StoreUnavailableError
from responder.models.alerts import AlertStatus, Source
from responder.models.runs import AuditEvent, AuditKind, RunQuery, RunState, StepRecord, StepState
from responder.ports import Store
from tests.contracts import (
    CEST,
    STORE_IMPLEMENTATIONS,
    T0,
    PostgresHarness,
    SqliteHarness,
    StoreHarness,
    make_alert,
    make_delivery,
    make_run,
)


@pytest.fixture(params=STORE_IMPLEMENTATIONS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreHarness]:
    """One harness per implementation; it closes what it opened and checks for leaks."""
    made: StoreHarness
    if request.param == "sqlite":
        made = SqliteHarness(tmp_path / "data" / "responder.db")
    elif request.param == "postgres":  # its own empty database on a real server
        made = PostgresHarness(request.getfixturevalue("postgres_database"))
    else:
        raise AssertionError(f"no harness for {request.param}")
    yield made
    await made.aclose()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not others, f"tasks left running: {others}"


@pytest.fixture
async def store(harness: StoreHarness) -> Store:
    """An open store with an empty database."""
    return await harness.open()


async def test_record_delivery_round_trips_alerts_in_order(store: Store) -> None:
    alerts = (make_alert(1), make_alert(2, status=AlertStatus.RESOLVED, ends_at=T0), make_alert(3))
    received = datetime(2024, 5, 1, 14, 30, tzinfo=CEST)
    stored = await store.record_delivery(make_delivery(*alerts), received)
    assert [s.alert for s in stored] == list(alerts)
    assert [s.alert_id for s in stored] == sorted({s.alert_id for s in stored})
    assert all(s.delivery_id == "d1" and s.received_at == received for s in stored)
    assert await store.unprocessed_alerts(10) == stored
    again = (await store.unprocessed_alerts(10))[0]
    assert again.received_at.utcoffset() is not None
    assert again.alert.starts_at is not None
    assert again.alert.starts_at.utcoffset() == timedelta(hours=2)
    assert again.alert.labels["ünï"] == "cödé ✓"
    assert again.alert.raw == alerts[0].raw


async def test_unprocessed_alerts_oldest_first_until_processed(store: Store) -> None:
    first = await store.record_delivery(make_delivery(make_alert(1), make_alert(2)), T0)
    second = await store.record_delivery(make_delivery(make_alert(3), delivery_id="d2"), T0)
    ids = [s.alert_id for s in first + second]
    await store.mark_alert_processed(ids[1], T0)
    await store.mark_alert_processed(ids[1], T0 + timedelta(minutes=1))  # idempotent
    await store.mark_alert_processed(999_999, T0)  # unknown: ignored
    assert [s.alert_id for s in await store.unprocessed_alerts(10)] == [ids[0], ids[2]]
    assert [s.alert_id for s in await store.unprocessed_alerts(1)] == [ids[0]]
    with pytest.raises(ValueError, match="limit"):
        await store.unprocessed_alerts(0)


async def test_concurrent_deliveries_all_succeed_and_share_commits(
    harness: StoreHarness, store: Store
) -> None:
    before = harness.commits(store)
    batches = await asyncio.gather(
        *(store.record_delivery(make_delivery(make_alert(n)), T0) for n in range(50))
    )
    ids = [s.alert_id for batch in batches for s in batch]
    assert len(set(ids)) == 50
    assert len(await store.unprocessed_alerts(100)) == 50
    after = harness.commits(store)
    if before is not None and after is not None:
        assert after - before < 50


async def test_batch_max_bounds_what_one_commit_takes(harness: StoreHarness) -> None:
    store = await harness.open(batch_max=1)
    before = harness.commits(store)
    await asyncio.gather(
        *(store.record_delivery(make_delivery(make_alert(n)), T0) for n in range(10))
    )
    after = harness.commits(store)
    if before is not None and after is not None:
        assert after - before == 10


async def test_settled_alerts_are_written_processed(store: Store) -> None:
    stored = await store.record_delivery(
        make_delivery(make_alert(1), make_alert(2), make_alert(3)), T0, settled=[True, False]
    )
    left = await store.unprocessed_alerts(10)
    assert [a.alert_id for a in left] == [stored[1].alert_id, stored[2].alert_id]
    assert await store.get_alert(stored[0].alert_id) == stored[0]  # stored all the same
    # a delivery of one alert (its own INSERT shape on PostgreSQL), settled or not
    [settled] = await store.record_delivery(make_delivery(make_alert(4)), T0, settled=[True])
    [queued] = await store.record_delivery(make_delivery(make_alert(5)), T0, settled=[False])
    left = await store.unprocessed_alerts(10)
    assert [a.alert_id for a in left] == [stored[1].alert_id, stored[2].alert_id, queued.alert_id]
    assert await store.get_alert(settled.alert_id) == settled
    assert await store.get_alert(queued.alert_id) == queued


async def test_has_run_finds_a_run_of_this_rule_for_this_occurrence_only(store: Store) -> None:
    alert = make_alert(1)
    assert not await store.has_run("rule-a", alert)
    await store.save_run(make_run("r1", fingerprint=alert.fingerprint,
                                  alert_identity=alert.identity))  # fmt: skip
    assert await store.has_run("rule-a", alert)
    assert not await store.has_run("rule-b", alert)  # another rule
    later = make_alert(1, starts_at=T0 + timedelta(hours=1))  # the same alert, firing again
    assert later.identity != alert.identity
    assert not await store.has_run("rule-a", later)
    assert not await store.has_run("rule-a", make_alert(2))  # another fingerprint


async def test_get_alert_by_id(store: Store) -> None:
    stored = await store.record_delivery(make_delivery(make_alert(1), make_alert(2)), T0)
    assert await store.get_alert(stored[1].alert_id) == stored[1]
    assert await store.get_alert(stored[0].alert_id) == stored[0]
    assert await store.get_alert(999_999) is None


async def test_nul_characters_from_a_sender_do_not_make_a_delivery_unstorable(
    store: Store,
) -> None:
    nul = make_alert(1, name="Bad\x00Name", labels={"alertname": "Bad\x00Name", "k\x00": "v\x00"})
    stored = await store.record_delivery(make_delivery(nul), T0)
    assert await store.get_alert(stored[0].alert_id) == stored[0]
    assert stored[0].alert == nul
    grouped = make_alert(2, fingerprint="f\x00p", labels={"alertname": "A\x00"})
    both = await store.record_delivery(make_delivery(grouped, nul, delivery_id="d2"), T0)
    assert [s.alert for s in both] == [grouped, nul]
    for item in both:  # a grouped delivery takes the other insert path
        assert await store.get_alert(item.alert_id) == item
    output = {"body": "a\x00b", "nested": ["\x00"]}  # JSON columns keep it as written
    step = StepRecord(step_id="s", action="http.request", params=output, output=output)
    await store.save_run(make_run("r1", steps=(step,)))
    assert (await store.get_run("r1")) == make_run("r1", steps=(step,))
    event = AuditEvent(kind=AuditKind.STEP_FAILED, at=T0, run_id="r1", details=output)
    await store.append_audit([event])
    assert await store.audit_for_run("r1") == [event]


# -- runs ------------------------------------------------------------------------------------


async def test_save_run_upserts_and_replaces_steps(store: Store) -> None:
    run = make_run("r1", not_before=T0 + timedelta(minutes=2), dry_run=True)
    await store.save_run(run)
    assert await store.get_run("r1") == run
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
    await store.save_run(changed)
    assert await store.get_run("r1") == changed
    assert await store.get_run("missing") is None


async def test_list_runs_filters_newest_first_and_pages_by_keyset(store: Store) -> None:
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
        await store.save_run(run)
    newest = sorted(runs, key=lambda r: (r.created_at, r.run_id), reverse=True)
    assert [r.run_id for r in newest] == ["r6", "r5", "r4", "r3", "r2", "r1"]
    assert await store.list_runs(RunQuery()) == newest
    assert [r.run_id for r in await store.list_runs(RunQuery(rule_id="rule-b"))] == ["r4", "r2"]
    by_state = await store.list_runs(RunQuery(state=RunState.SUCCEEDED))
    assert [r.run_id for r in by_state] == ["r5", "r4", "r1"]
    since = await store.list_runs(RunQuery(since=runs[3].created_at.astimezone(CEST)))
    assert [r.run_id for r in since] == ["r6", "r5", "r4"]
    both = RunQuery(rule_id="rule-a", state=RunState.SUCCEEDED, limit=1)
    assert [r.run_id for r in await store.list_runs(both)] == ["r5"]

    pages: list[list[str]] = []
    before: str | None = None
    while True:
        page = await store.list_runs(RunQuery(limit=2, before=before))
        if not page:
            break
        pages.append([r.run_id for r in page])
        before = page[-1].run_id
    assert pages == [["r6", "r5"], ["r4", "r3"], ["r2", "r1"]]
    assert await store.list_runs(RunQuery(before="r5", rule_id="rule-b")) == [runs[3], runs[1]]
    assert await store.list_runs(RunQuery(before="no-such-run")) == []


async def test_open_runs_are_the_non_terminal_ones(store: Store) -> None:
    for i, state in enumerate(RunState):
        await store.save_run(make_run(f"r{i}", state=state, created_at=T0 + timedelta(seconds=i)))
    other = make_run("other", state=RunState.PENDING, fingerprint="fp2", source=Source.GRAFANA)
    await store.save_run(other)
    open_states = {RunState.PENDING, RunState.WAITING_APPROVAL, RunState.RUNNING}
    found = await store.open_runs()
    assert {r.state for r in found} == open_states
    assert len(found) == 4
    mine = await store.open_runs(Source.ALERTMANAGER, "fp1")
    assert {r.state for r in mine} == open_states
    assert await store.open_runs(Source.GRAFANA, "fp2") == [other]
    assert await store.open_runs(Source.SENTRY, "fp1") == []


async def test_owner_round_trips(store: Store) -> None:
    owned = make_run("r1", owner="replica-a-123")
    await store.save_run(owned)
    await store.save_run(make_run("r2"))
    assert await store.get_run("r1") == owned
    assert (await store.get_run("r2")) == make_run("r2")
    assert [r.owner for r in await store.list_runs(RunQuery())] == [None, "replica-a-123"]


async def test_replace_run_if_saves_only_from_the_expected_state(store: Store) -> None:
    pending = make_run("r1", state=RunState.PENDING, not_before=T0)
    assert not await store.replace_run_if(pending, RunState.PENDING)  # absent: not created
    assert await store.get_run("r1") is None
    await store.save_run(pending)
    only = StepRecord(step_id="only", action="log", state=StepState.RUNNING, attempts=1)
    running = pending.model_copy(
        update={"state": RunState.RUNNING, "owner": "replica-a", "steps": (only,)}
    )
    assert await store.replace_run_if(running, RunState.PENDING)
    assert await store.get_run("r1") == running
    stale = pending.model_copy(update={"state": RunState.CANCELLED, "reason": "late"})
    assert not await store.replace_run_if(stale, RunState.PENDING)
    assert await store.get_run("r1") == running  # steps untouched too
    done = running.model_copy(update={"state": RunState.SUCCEEDED, "steps": ()})
    assert await store.replace_run_if(done, RunState.RUNNING)
    assert await store.get_run("r1") == done


async def test_concurrent_compare_and_set_has_exactly_one_winner(
    harness: StoreHarness, store: Store
) -> None:
    other = await harness.open()  # a second replica on the same database
    for round_ in range(5):
        run_id = f"r{round_}"
        await store.save_run(make_run(run_id, state=RunState.PENDING))
        claims = [make_run(run_id, state=RunState.RUNNING, owner=f"replica-{i}") for i in range(6)]
        stores = [store, other] * 3
        results = await asyncio.gather(
            *(s.replace_run_if(c, RunState.PENDING) for s, c in zip(stores, claims, strict=True))
        )
        assert results.count(True) == 1, results
        assert await other.get_run(run_id) == claims[results.index(True)]


async def test_due_runs_are_pending_and_due_earliest_first(store: Store) -> None:
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
        await store.save_run(make_run(run_id, state=state, not_before=not_before))
    now = (T0 + 3 * minute).astimezone(CEST)
    due = await store.due_runs(now, 10)
    assert [r.run_id for r in due] == ["early", "tie-a", "tie-b", "late"]
    assert due[0] == make_run("early", state=RunState.PENDING, not_before=T0 + minute)
    assert [r.run_id for r in await store.due_runs(now, 2)] == ["early", "tie-a"]
    assert await store.due_runs(T0, 10) == []
    with pytest.raises(ValueError, match="limit"):
        await store.due_runs(now, 0)


# -- audit ------------------------------------------------------------------------------------


async def test_audit_appends_and_reads_oldest_first(store: Store) -> None:
    events = [
        AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="r1", rule_id="rule-a", alert_id=1),
        AuditEvent(kind=AuditKind.STEP_STARTED, at=T0, run_id="r1", step_id="state"),
        AuditEvent(
            kind=AuditKind.STEP_SKIPPED,
            at=T0 + timedelta(seconds=1),
            run_id="r1",
            step_id="reset",
            reason="cooldown",
            details={"remaining_seconds": 12.5, "keys": ["a", "b"]},
        ),
        AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="r2", actor="alice"),
    ]
    await store.append_audit(events[:2])
    await store.append_audit(events[2:])
    late = AuditEvent(kind=AuditKind.RUN_FINISHED, at=T0 + timedelta(minutes=5), run_id="r1")
    early = AuditEvent(kind=AuditKind.ALERT_RECEIVED, at=T0 - timedelta(minutes=1), run_id="r1")
    await store.append_audit([late, early])  # oldest first means by `at`, then append order
    assert await store.audit_for_run("r1") == [early, *events[:3], late]
    assert await store.audit_for_run("r2") == [events[3]]
    assert await store.audit_for_run("nope") == []
    await store.append_audit([])


async def test_a_long_audit_append_keeps_its_order(store: Store) -> None:
    # more events than one PostgreSQL statement holds (AUDIT_ROWS_PER_STATEMENT), all at one
    # time: only the append order sorts them
    events = [
        AuditEvent(kind=AuditKind.STEP_STARTED, at=T0, run_id="long", step_id=f"s{i}")
        for i in range(1_201)
    ]
    await store.append_audit(events)
    await store.append_audit(events[:1])
    assert await store.audit_for_run("long") == [*events, events[0]]


async def test_a_run_is_saved_with_its_audit_events_or_not_at_all(store: Store) -> None:
    matched = AuditEvent(kind=AuditKind.RULE_MATCHED, at=T0, run_id="with", rule_id="rule-a")
    started = AuditEvent(kind=AuditKind.STEP_STARTED, at=T0, run_id="with", step_id="state")
    await store.save_run(make_run("with"), [matched, started])
    assert await store.get_run("with") == make_run("with")
    assert await store.audit_for_run("with") == [matched, started]
    # a run the store refuses takes its audit events down with it (one transaction)
    step = StepRecord(step_id="same", action="http.request")
    broken = make_run("broken").model_copy(update={"steps": (step, step)})
    lost = AuditEvent(kind=AuditKind.RULE_MATCHED, at=T0, run_id="broken")
    with pytest.raises(StoreUnavailableError):
        await store.save_run(broken, [lost])
    assert await store.audit_for_run("broken") == []


async def test_audit_rows_cannot_be_updated_or_deleted(harness: StoreHarness, store: Store) -> None:
    event = AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="r1")
    await store.append_audit([event])
    for statement in ("update", "delete"):
        error = harness.tamper_with_audit(statement)
        assert error is not None, f"audit {statement} was allowed"
        assert "append-only" in str(error)
    assert await store.audit_for_run("r1") == [event]


async def test_prune_audit_deletes_old_events_and_audits_itself(
    harness: StoreHarness, store: Store
) -> None:
    day = timedelta(days=1)
    old = [AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0 - (100 + i) * day, run_id="r1")
           for i in range(3)]  # fmt: skip
    edge = AuditEvent(kind=AuditKind.STEP_STARTED, at=T0 - 90 * day, run_id="r1")  # kept
    new = AuditEvent(kind=AuditKind.RUN_FINISHED, at=T0, run_id="r1", reason="ok")
    await store.append_audit([*old, edge, new])
    cutoff = (T0 - 90 * day).astimezone(CEST)
    assert await store.prune_audit(cutoff, "cli:alice@ops") == 3
    assert await store.audit_for_run("r1") == [edge, new]
    pruned = ("audit_pruned", "cli:alice@ops", {"cutoff": "2024-02-01T12:00:00+00:00", "count": 3})
    assert harness.audit_log()[-1] == pruned
    assert await store.prune_audit(cutoff, "cli:bob@ops") == 0  # nothing left, still audited
    log = harness.audit_log()
    assert [kind for kind, _, _ in log] == [
        "step_started", "run_finished", "audit_pruned", "audit_pruned"
    ]  # fmt: skip
    assert log[-1][1:] == ("cli:bob@ops", {"cutoff": pruned[2]["cutoff"], "count": 0})
    for statement in ("update", "delete"):  # outside prune, the log is immutable again
        error = harness.tamper_with_audit(statement)
        assert error is not None, f"audit {statement} was allowed after a prune"
        assert "append-only" in str(error)
    assert len(harness.audit_log()) == 4
    with pytest.raises(ValueError, match="naive"):
        await store.prune_audit(datetime(2024, 1, 1), "cli:alice@ops")


# -- durability and failure -------------------------------------------------------------------


async def test_data_survives_close_and_reopen(harness: StoreHarness, store: Store) -> None:
    stored = await store.record_delivery(make_delivery(make_alert(1)), T0)
    await store.save_run(make_run("r1"))
    await store.append_audit([AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="r1")])
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailableError):
        await store.record_delivery(make_delivery(make_alert(2)), T0)
    reopened = await harness.open()
    assert await reopened.unprocessed_alerts(10) == stored
    assert await reopened.get_run("r1") == make_run("r1")
    assert len(await reopened.audit_for_run("r1")) == 1
    await reopened.check_writable()


async def test_failed_commit_fails_every_waiter_and_keeps_nothing(
    harness: StoreHarness, store: Store
) -> None:
    await store.check_writable()
    with harness.commits_failing():
        results = await asyncio.gather(
            *(store.record_delivery(make_delivery(make_alert(n)), T0) for n in range(10)),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreUnavailableError) for r in results), results
        with pytest.raises(StoreUnavailableError, match="check"):
            await store.check_writable()
    assert await store.unprocessed_alerts(100) == []
    await store.check_writable()
    assert len(await store.record_delivery(make_delivery(make_alert(1)), T0)) == 1


async def test_a_failing_write_does_not_take_concurrent_writes_down(store: Store) -> None:
    step = StepRecord(step_id="same", action="http.request")
    # The model refuses duplicate step ids; built without validation, the store must still
    # refuse them alone, without failing the writes batched with it.
    broken = make_run("broken").model_copy(update={"steps": (step, step)})
    results = await asyncio.gather(
        *(store.record_delivery(make_delivery(make_alert(n)), T0) for n in range(5)),
        store.save_run(broken),
        store.save_run(make_run("fine")),
        return_exceptions=True,
    )
    assert isinstance(results[5], StoreUnavailableError)
    assert not [r for r in results[:5] + results[6:] if isinstance(r, BaseException)]
    assert len(await store.unprocessed_alerts(10)) == 5
    assert await store.get_run("broken") is None
    assert await store.get_run("fine") == make_run("fine")


async def test_calls_are_bounded_by_the_timeout(harness: StoreHarness) -> None:
    store = await harness.open(timeout_seconds=0.3)
    with harness.write_lock_held():
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="check"):
            await store.record_delivery(make_delivery(make_alert(1)), T0)
        assert time.monotonic() - started < 2.0
    await store.check_writable()


async def test_unusable_location_fails_to_open(harness: StoreHarness) -> None:
    with pytest.raises(StoreUnavailableError, match="check"):
        await harness.open_unusable()


async def test_sqlite_schema_is_versioned_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    sqlite = SqliteHarness(tmp_path / "fresh" / "responder.db")
    for _ in range(2):  # the schema is applied once, then found in place
        await (await sqlite.open()).close()
    with closing(sqlite3.connect(sqlite.path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(1,), (2,), (3,)]
        raw.execute("INSERT INTO schema_version VALUES (99, 'by a newer responder')")
        raw.commit()
    with pytest.raises(StoreUnavailableError, match="newer"):
        await sqlite.open()
    await sqlite.aclose()  # and no writer thread is left, not even by the refused open


async def test_a_delivery_the_store_cannot_write_fails_alone(store: Store) -> None:
    # A lone surrogate cannot be encoded for the database (the webhook parser refuses it;
    # built here directly). Written together with concurrent deliveries, it must fail alone.
    bad = make_alert(99, labels={"alertname": "Bad", "k": "\ud800"})
    results = await asyncio.gather(
        *(
            store.record_delivery(
                make_delivery(make_alert(n), make_alert(n + 100), delivery_id=f"g{n}"), T0
            )
            for n in range(4)
        ),
        store.record_delivery(make_delivery(bad, delivery_id="bad"), T0),
        *(
            store.record_delivery(make_delivery(make_alert(n), delivery_id=f"s{n}"), T0)
            for n in range(10, 14)
        ),
        return_exceptions=True,
    )
    assert isinstance(results[4], Exception)
    good = [r for i, r in enumerate(results) if i != 4]
    assert not [r for r in good if isinstance(r, BaseException)]
    assert len(await store.unprocessed_alerts(100)) == 12
