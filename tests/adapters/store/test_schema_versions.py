"""Each backend's schema versions: applied once, a newer one refused, older ones migrated forward.

Not a contract: these open SqliteStore and PostgresStore directly, on purpose.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from responder.adapters.store.postgres import migrating
from responder.adapters.store.postgres.store import PostgresStore
from responder.adapters.store.sqlite.schema import MIGRATIONS, to_text
from responder.adapters.store.sqlite.store import SqliteStore
from responder.errors import StoreUnavailableError
from responder.models.approvals import ApprovalState
from tests.adapters.store.harnesses import SqliteHarness
from tests.support.records import FULL, T0, make_approval


async def test_sqlite_schema_is_versioned_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    sqlite = SqliteHarness(tmp_path / "fresh" / "responder.db")
    for _ in range(2):  # the schema is applied once, then found in place
        await (await sqlite.open()).close()
    with closing(sqlite3.connect(sqlite.path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [
            (version,) for version, _ in MIGRATIONS
        ]
        raw.execute("INSERT INTO schema_version VALUES (99, 'by a newer responder')")
        raw.commit()
    with pytest.raises(StoreUnavailableError, match="newer"):
        await sqlite.open()
    await sqlite.aclose()  # and no writer thread is left, not even by the refused open


async def test_sqlite_files_of_the_previous_version_migrate_forward(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    previous = 2  # the version whose approvals table version 3 replaced
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for version, statements in MIGRATIONS[:previous]:
            for statement in statements:
                raw.execute(statement)
            raw.execute("INSERT INTO schema_version VALUES (?, ?)", (version, to_text(T0)))
        columns = {row[1] for row in raw.execute("PRAGMA table_info(approvals)")}
        assert "id" in columns  # the old shape, with a row that the migration drops
        raw.execute(
            "INSERT INTO approvals (id, run_id, step_id, requested_at, expires_at) "
            "VALUES ('old', 'r1', 'restart', ?, ?)",
            (to_text(T0), to_text(T0)),
        )
    store = await SqliteStore.open(path, timeout_seconds=5, batch_max=8)
    try:
        await store.save_approval(FULL)
        assert await store.get_approval("a-full") == FULL
        cancelled = make_approval("a1", state=ApprovalState.CANCELLED)
        await store.save_approval(cancelled)  # refused by the old CHECK
        assert await store.list_approvals(ApprovalState.CANCELLED) == [cancelled]
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as raw:
        versions = [v for (v,) in raw.execute("SELECT version FROM schema_version")]
        assert versions == [version for version, _ in MIGRATIONS]
        indexes = {row[1] for row in raw.execute("PRAGMA index_list(approvals)")}
        assert {"approvals_by_state", "approvals_pending", "approvals_by_run"} <= indexes


async def test_postgres_at_version_1_migrates_to_2(postgres_database: str) -> None:
    shipped = migrating.shipped_migrations()
    assert [m.name for m in shipped[:2]] == ["0001_initial", "0002_approvals"]
    assert await migrating.migrate(postgres_database, timeout_seconds=10, migrations=shipped[:1])
    with pytest.raises(StoreUnavailableError, match="0002_approvals"):
        await PostgresStore.open(postgres_database, timeout_seconds=5)
    applied = await migrating.migrate(postgres_database, timeout_seconds=10)
    assert applied == [m.name for m in shipped[1:]]
    store = await PostgresStore.open(postgres_database, timeout_seconds=5)
    try:
        await store.save_approval(FULL)
        assert await store.get_approval("a-full") == FULL
        pending = make_approval("a1")
        await store.save_approval(pending)
        cancelled = pending.model_copy(update={"state": ApprovalState.CANCELLED})
        assert await store.replace_approval_if(cancelled, ApprovalState.PENDING)
        assert await store.list_approvals(run_id="r1") == [FULL, cancelled]
    finally:
        await store.close()
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'approvals'"
        ).fetchall()
    assert {"approvals_by_state", "approvals_pending", "approvals_by_run"} <= {
        name for (name,) in rows
    }
