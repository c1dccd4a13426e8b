"""Schemas of both stores: versioned migrations, refusing the wrong schema, session bounds.

PostgreSQL tests run on a real server (see tests/support/postgres_service.py), each on its own empty
database; SQLite tests on a file in tmp_path.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from responder.adapters.connecting import postgres as connections
from responder.adapters.store.postgres import migrating
from responder.adapters.store.postgres.store import PostgresStore
from responder.adapters.store.sqlite.schema import MIGRATIONS, to_text
from responder.adapters.store.sqlite.store import SqliteStore
from responder.errors import StoreUnavailableError
from responder.models.runs import AuditEvent, AuditKind, RunState
from tests.support.loopback import free_port
from tests.support.records import T0, make_run

SHIPPED = [m.name for m in migrating.shipped_migrations()]


def _rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


async def test_migrations_apply_in_order_and_twice_is_a_no_op(postgres_database: str) -> None:
    assert SHIPPED[0] == "0001_initial"
    assert await migrating.migrate(postgres_database, timeout_seconds=10) == SHIPPED
    assert await migrating.migrate(postgres_database, timeout_seconds=10) == []
    versions = _rows(postgres_database, "SELECT version, name FROM schema_migrations")
    assert versions == [(i + 1, name) for i, name in enumerate(SHIPPED)]
    tables = {name for (name,) in _rows(postgres_database, "SELECT tablename FROM pg_tables")}
    assert {"alerts", "runs", "steps", "approvals", "audit_events", "schema_migrations"} <= tables


async def test_replicas_migrating_at_once_apply_each_file_once(postgres_database: str) -> None:
    results = await asyncio.gather(
        *(migrating.migrate(postgres_database, timeout_seconds=10) for _ in range(4))
    )
    assert sorted(name for applied in results for name in applied) == SHIPPED
    assert len(_rows(postgres_database, "SELECT 1 FROM schema_migrations")) == len(SHIPPED)


async def test_a_failing_migration_leaves_nothing_of_itself(postgres_database: str) -> None:
    good = migrating.Migration(1, "0001_a", "CREATE TABLE a (x int); CREATE INDEX ON a (x);")
    bad = migrating.Migration(2, "0002_b", "CREATE TABLE b (x int); SELECT 1 / 0;")
    with pytest.raises(StoreUnavailableError, match=r"0002_b not applied.*division by zero"):
        await migrating.migrate(postgres_database, timeout_seconds=10, migrations=[good, bad])
    assert _rows(postgres_database, "SELECT version FROM schema_migrations") == [(1,)]
    assert _rows(postgres_database, "SELECT to_regclass('b')") == [(None,)]
    fixed = migrating.Migration(2, "0002_b", "CREATE TABLE b (x int);")
    applied = await migrating.migrate(
        postgres_database, timeout_seconds=10, migrations=[good, fixed]
    )
    assert applied == ["0002_b"]


async def test_open_refuses_a_database_without_the_schema(postgres_database: str) -> None:
    with pytest.raises(StoreUnavailableError, match="run `responder migrate`"):
        await PostgresStore.open(postgres_database, timeout_seconds=5)
    store = await PostgresStore.open(postgres_database, timeout_seconds=5, migrate=True)
    await store.check_writable()
    await store.close()
    reopened = await PostgresStore.open(postgres_database, timeout_seconds=5)  # now in place
    await reopened.close()


async def test_open_refuses_a_newer_schema(postgres_database: str) -> None:
    await migrating.migrate(postgres_database, timeout_seconds=10)
    _rows(postgres_database, "INSERT INTO schema_migrations VALUES (99, '0099_future', now())")
    with pytest.raises(StoreUnavailableError, match="newer than this responder"):
        await PostgresStore.open(postgres_database, timeout_seconds=5)


def test_schema_problems_name_what_to_do() -> None:
    shipped = [migrating.Migration(1, "0001_a", ""), migrating.Migration(2, "0002_b", "")]
    assert migrating.schema_problem([1, 2], shipped) is None
    older = migrating.schema_problem([1], shipped)
    assert older is not None
    assert "0002_b" in older
    assert "responder migrate" in older
    missing = migrating.schema_problem([], shipped)
    assert missing is not None
    assert "responder migrate" in missing
    newer = migrating.schema_problem([1, 2, 3], shipped)
    assert newer is not None
    assert "upgrade responder" in newer


async def test_check_writable_fails_on_a_read_only_database(postgres_database: str) -> None:
    await migrating.migrate(postgres_database, timeout_seconds=10)
    options = conninfo_to_dict(postgres_database).get("options") or ""
    read_only = make_conninfo(
        postgres_database, options=f"{options} -c default_transaction_read_only=on"
    )  # what a hot standby answers, too
    store = await PostgresStore.open(read_only, timeout_seconds=5)
    try:
        with pytest.raises(StoreUnavailableError, match="read-only"):
            await store.check_writable()
    finally:
        await store.close()


async def test_audit_cannot_be_truncated(postgres_database: str) -> None:
    await migrating.migrate(postgres_database, timeout_seconds=10)
    with pytest.raises(psycopg.Error, match="append-only"):
        _rows(postgres_database, "TRUNCATE audit_events")


async def test_sessions_are_bounded_and_keep_the_dsn_options(postgres_dsn: str) -> None:
    dsn = make_conninfo(postgres_dsn, options="-c search_path=x,public")
    conn = await migrating.connect(dsn, 1.5)
    try:
        settings = {}
        for name in (
            "statement_timeout",
            "lock_timeout",
            "idle_in_transaction_session_timeout",
            "TimeZone",
            "application_name",
            "search_path",
        ):
            cur = await conn.execute(f"SHOW {name}")
            settings[name] = str((await cur.fetchone() or [""])[0])
    finally:
        await conn.close()
    assert settings == {
        "statement_timeout": "1500ms",
        "lock_timeout": "1500ms",
        "idle_in_transaction_session_timeout": "3s",
        "TimeZone": "UTC",
        "application_name": "responder",
        "search_path": "x,public",
    }


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://responder:s3cr%40t-pw@127.0.0.1:{port}/x",
        "host=127.0.0.1 port={port} user=responder password=s3cr@t-pw dbname=x",
        "host=127.0.0.1 port={port} password='s3cr@t-pw' dbname=x broken",
        "postgresql://responder:s3cr@t-pw@127.0.0.1:{port}:bad/x",
    ],
)
async def test_errors_never_show_the_password(dsn: str) -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        await PostgresStore.open(dsn.format(port=free_port()), timeout_seconds=2)
    message = str(caught.value)
    assert "s3cr" not in message, message
    assert "t-pw" not in message, message
    assert "check" in message
    assert connections.describe("postgresql://u:pw@h:5/db") == "postgresql://u@h:5/db"


async def test_sqlite_files_of_version_1_migrate_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        for statement in MIGRATIONS[0][1]:
            raw.execute(statement)
        raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
        raw.execute("INSERT INTO schema_version VALUES (1, ?)", (to_text(T0),))
        raw.execute(
            "INSERT INTO runs (run_id, rule_id, alert_id, source, fingerprint, alert_identity, "
            "guard_key, idempotency_key, state, dry_run, created_at, updated_at) "
            "VALUES ('old', 'rule-a', 1, 'alertmanager', 'fp1', 'alertmanager:fp1:-:firing', "
            "'shop/api', 'idem-old', 'running', 0, ?, ?)",
            (to_text(T0), to_text(T0)),
        )
    store = await SqliteStore.open(path, timeout_seconds=5, batch_max=8)
    try:
        old = await store.get_run("old")
        assert old is not None
        assert old.owner is None
        assert await store.replace_run_if(old.model_copy(update={"owner": "me"}), RunState.RUNNING)
        await store.append_audit([AuditEvent(kind=AuditKind.RUN_PLANNED, at=T0, run_id="old")])
        assert await store.prune_audit(T0 + timedelta(seconds=1), "test") == 1
        assert await store.get_run("old") == make_run("old", owner="me", steps=())
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [
            (version,) for version, _ in MIGRATIONS
        ]
        assert raw.execute("SELECT count(*) FROM audit_prune_guard").fetchone() == (0,)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("DELETE FROM audit_events")
