"""`responder migrate` and `responder audit prune`, called as the CLI will call them.

Settings come from RESPONDER_* variables, as for the real commands; PostgreSQL runs use a
fresh database on a real server (tests/support/postgres_service.py), SQLite runs a file in tmp_path.
"""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from responder.adapters.store.postgres.store import PostgresStore
from responder.adapters.store.sqlite.store import SqliteStore
from responder.commands.migrating import migrate_command
from responder.commands.pruning import prune_command, whoami
from responder.models.runs import AuditEvent, AuditKind
from responder.ports.store import Store
from tests.support.loopback import free_port
from tests.support.records import T0

NOW = T0 + timedelta(days=365)


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what each test sets: no database URL, data under tmp_path, no config file."""
    for name in ("RESPONDER_DATABASE_URL", "RESPONDER_CONFIG", "RESPONDER_STORE_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESPONDER_DATA_DIR", str(tmp_path / "data"))


def run_migrate() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = migrate_command(out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def run_prune(older_than: str, actor: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = prune_command(older_than, out=out, err=err, actor=actor, now=NOW)
    return code, out.getvalue(), err.getvalue()


async def _seed(store: Store) -> None:
    await store.append_audit(
        [
            AuditEvent(kind=AuditKind.RUN_PLANNED, at=NOW - timedelta(days=200), run_id="r1"),
            AuditEvent(kind=AuditKind.RUN_FINISHED, at=NOW - timedelta(days=91), run_id="r1"),
            AuditEvent(kind=AuditKind.RUN_PLANNED, at=NOW - timedelta(days=10), run_id="r2"),
        ]
    )
    await store.close()


def test_migrate_without_a_database_url_explains_sqlite_migrates_itself() -> None:
    code, out, err = run_migrate()
    assert code == 0, err
    assert "SQLite" in out
    assert "migrates itself" in out


def test_migrate_applies_then_finds_the_schema_current(
    monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    monkeypatch.setenv("RESPONDER_DATABASE_URL", postgres_database)
    code, out, err = run_migrate()
    assert code == 0, err
    assert "applied to postgresql://" in out
    assert "0001_initial" in out
    code, again, err = run_migrate()
    assert code == 0, err
    assert "applied" not in again
    assert "up to date" in again


def test_migrate_reports_an_unreachable_server_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql://responder:pa55-w0rd@127.0.0.1:{free_port()}/responder"
    monkeypatch.setenv("RESPONDER_DATABASE_URL", url)
    monkeypatch.setenv("RESPONDER_STORE_TIMEOUT_SECONDS", "2")
    code, out, err = run_migrate()
    assert code == 1
    assert "check that the server is up" in err
    assert "pa55-w0rd" not in err + out


def test_prune_on_sqlite_deletes_old_events_and_records_who(tmp_path: Path) -> None:
    path = tmp_path / "data" / "responder.sqlite3"
    asyncio.run(_seed_sqlite(path))
    code, out, err = run_prune("90d", actor="cli:alice@ops")
    assert code == 0, err
    assert out.startswith("pruned 2 audit events older than ")
    assert "cli:alice@ops" in out
    events = asyncio.run(_audit(path))
    assert [e.run_id for e in events] == ["r2"]


async def _seed_sqlite(path: Path) -> None:
    await _seed(await SqliteStore.open(path, timeout_seconds=5, batch_max=8))


async def _audit(path: Path) -> list[AuditEvent]:
    store = await SqliteStore.open(path, timeout_seconds=5, batch_max=8)
    try:
        return [*await store.audit_for_run("r1"), *await store.audit_for_run("r2")]
    finally:
        await store.close()


def test_prune_on_postgres_deletes_old_events_and_records_who(
    monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    monkeypatch.setenv("RESPONDER_DATABASE_URL", postgres_database)
    asyncio.run(_seed_postgres(postgres_database))
    code, out, err = run_prune("90d")
    assert code == 0, err
    assert out.startswith("pruned 2 audit events older than ")
    assert whoami() in out
    code, out, err = run_prune("90d")
    assert code == 0, err
    assert out.startswith("pruned 0 audit events")
    with psycopg.connect(postgres_database) as conn:
        rows = conn.execute(
            "SELECT actor, details->>'count' FROM audit_events WHERE kind = 'audit_pruned' "
            "ORDER BY id"
        ).fetchall()
    assert rows == [(whoami(), "2"), (whoami(), "0")]


async def _seed_postgres(dsn: str) -> None:
    await _seed(await PostgresStore.open(dsn, timeout_seconds=5, migrate=True))


def test_prune_refuses_an_unmigrated_postgres_database(
    monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    monkeypatch.setenv("RESPONDER_DATABASE_URL", postgres_database)
    code, _, err = run_prune("90d")
    assert code == 1
    assert "responder migrate" in err


def test_prune_refuses_a_missing_sqlite_file() -> None:
    code, _, err = run_prune("90d")
    assert code == 1
    assert "no SQLite store at" in err


@pytest.mark.parametrize("bad", ["90x", "", "0d", "ninety days"])
def test_prune_refuses_a_bad_age(bad: str) -> None:
    code, out, err = run_prune(bad)
    assert code == 2
    assert "--older-than" in err
    assert out == ""
