"""The PostgreSQL store's fast paths keep their guarantees.

- Connections returned to the pool moments ago are handed out without a round trip, unless the
  server sent them something while they sat idle: a terminated or restarted backend announces
  itself that way, and such a connection must be replaced, not fail the next request.
- Concurrent `mark_alert_processed` calls share one UPDATE; each alert keeps the time of its
  first mark, and none is lost when the store closes right after.
- Concurrent deliveries share one INSERT, each getting its own ids in order, and deliveries
  queued when the store closes are written first, not failed.
- Audit events go in multi-row INSERTs, concurrent appends together; an append longer than
  one statement, or batched with others, is still all or none, and a bad one fails alone.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from responder.adapters.store.postgres.queries import AUDIT_ROWS_PER_STATEMENT
from responder.adapters.store.postgres.store import PostgresStore
from responder.errors import StoreUnavailableError
from responder.models.alerts import Alert, AlertStatus, Delivery, Source
from responder.models.runs import AuditEvent, AuditKind

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_connections_the_server_terminated_are_replaced(postgres_database: str) -> None:
    store = await PostgresStore.open(
        postgres_database, timeout_seconds=5, pool_min=2, pool_max=2, migrate=True
    )
    try:
        await asyncio.gather(store.check_writable(), store.check_writable())  # both used
        name = str(conninfo_to_dict(postgres_database)["application_name"])
        admin_dsn = make_conninfo(postgres_database, application_name="pool-check-admin")
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                "FROM pg_stat_activity WHERE application_name = %s",
                (name,),
            ).fetchone()
        assert ended is not None
        assert ended[0] >= 1
        await asyncio.sleep(0.2)  # the termination notice reaches the idle sockets
        for _ in range(4):  # every pooled connection was ended; each call must still work
            await store.check_writable()
    finally:
        await store.close()


async def test_concurrent_marks_keep_the_first_time_and_survive_close(
    postgres_database: str,
) -> None:
    store = await PostgresStore.open(postgres_database, timeout_seconds=5, migrate=True)
    alerts = tuple(
        Alert(source=Source.ALERTMANAGER, name="A", status=AlertStatus.FIRING, fingerprint=str(i))
        for i in range(40)
    )
    try:
        stored = await store.record_delivery(
            Delivery(source=Source.ALERTMANAGER, delivery_id="d", alerts=alerts), T0
        )
        ids = [s.alert_id for s in stored]
        first, later = T0 + timedelta(seconds=1), T0 + timedelta(minutes=5)
        marks = [store.mark_alert_processed(i, first) for i in ids]
        marks.append(store.mark_alert_processed(ids[0], later))  # queued behind the first
        marks.append(store.mark_alert_processed(999_999, first))  # unknown: ignored
        await asyncio.gather(*marks)
        await store.mark_alert_processed(ids[1], later)  # a later call: ignored
        assert await store.unprocessed_alerts(100) == []
        pending = [
            asyncio.ensure_future(store.mark_alert_processed(ids[2], later)) for _ in range(3)
        ]
        await asyncio.sleep(0)  # the marks are queued...
        await store.close()  # ...and written before the pool closes, not failed
        await asyncio.gather(*pending)
    finally:
        await store.close()
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        rows = conn.execute("SELECT id, processed_at FROM alerts").fetchall()
    times: dict[int, datetime] = dict(rows)
    assert set(times.values()) == {first}


async def test_concurrent_deliveries_share_an_insert_and_survive_close(
    postgres_database: str,
) -> None:
    store = await PostgresStore.open(postgres_database, timeout_seconds=5, migrate=True)

    def delivery(n: int, size: int) -> Delivery:
        alerts = tuple(
            Alert(
                source=Source.ALERTMANAGER,
                name="A",
                status=AlertStatus.FIRING,
                fingerprint=f"{n}-{i}",
            )
            for i in range(size)
        )
        return Delivery(source=Source.ALERTMANAGER, delivery_id=f"d{n}", alerts=alerts)

    try:
        before = store.statements
        sent = [delivery(n, size=1 + n % 3) for n in range(30)]
        stored = await asyncio.gather(*(store.record_delivery(d, T0) for d in sent))
        assert store.statements - before < 10  # 30 deliveries, a few INSERTs
        for one, got in zip(sent, stored, strict=True):
            assert [s.alert for s in got] == list(one.alerts)
            assert {s.delivery_id for s in got} == {one.delivery_id}
            ids = [s.alert_id for s in got]
            assert ids == sorted(ids)
            for item in got:
                assert await store.get_alert(item.alert_id) == item
        pending = [
            asyncio.ensure_future(store.record_delivery(delivery(100 + n, 2), T0)) for n in range(5)
        ]
        await asyncio.sleep(0)  # queued...
        await store.close()  # ...and written before the pool closes
        assert all(len(got) == 2 for got in await asyncio.gather(*pending))
    finally:
        await store.close()
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM alerts").fetchone()
    assert row is not None
    assert row[0] == sum(len(d.alerts) for d in sent) + 10


async def test_an_audit_append_of_several_statements_is_all_or_none(
    postgres_database: str,
) -> None:
    store = await PostgresStore.open(postgres_database, timeout_seconds=5, migrate=True)
    try:
        events = [
            AuditEvent(kind=AuditKind.STEP_STARTED, at=T0, run_id="r", step_id=f"s{i}")
            for i in range(2 * AUDIT_ROWS_PER_STATEMENT + 1)
        ]
        refused = events[-1].model_copy(update={"alert_id": 2**63})  # beyond a bigint
        with pytest.raises(StoreUnavailableError):
            await store.append_audit([*events[:-1], refused])
        assert await store.audit_for_run("r") == []
        with pytest.raises(StoreUnavailableError):
            await store.append_audit([events[0], refused])  # one statement: none either
        assert await store.audit_for_run("r") == []
        await store.append_audit(events)
        assert await store.audit_for_run("r") == events
    finally:
        await store.close()


async def test_concurrent_audit_appends_share_a_statement_and_a_bad_one_fails_alone(
    postgres_database: str,
) -> None:
    store = await PostgresStore.open(postgres_database, timeout_seconds=5, migrate=True)
    try:

        def events(run_id: str, count: int) -> list[AuditEvent]:
            return [
                AuditEvent(kind=AuditKind.STEP_STARTED, at=T0, run_id=run_id, step_id=f"s{i}")
                for i in range(count)
            ]

        appends = {f"r{n}": events(f"r{n}", 3) for n in range(30)}
        before = store.statements
        await asyncio.gather(*(store.append_audit(e) for e in appends.values()))
        assert store.statements - before < 10  # 30 appends, a few INSERTs
        for run_id, appended in appends.items():
            assert await store.audit_for_run(run_id) == appended

        good = {f"g{n}": events(f"g{n}", 2) for n in range(5)}
        bad = [*events("bad", 1), events("bad", 2)[1].model_copy(update={"alert_id": 2**63})]
        outcomes = await asyncio.gather(
            *(store.append_audit(e) for e in [*good.values(), bad]), return_exceptions=True
        )
        assert outcomes[:-1] == [None] * len(good)
        assert isinstance(outcomes[-1], StoreUnavailableError)
        assert await store.audit_for_run("bad") == []  # all or none, alone
        for run_id, appended in good.items():
            assert await store.audit_for_run(run_id) == appended
    finally:
        await store.close()
