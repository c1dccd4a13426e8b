"""Tables of the SQLite store, their versioned migrations, and the SQL mapping models to rows.

Datetimes are stored as fixed-width ISO-8601 UTC text (`2024-05-01T12:00:00.000000+00:00`), so
text order is time order and they read back timezone-aware. JSON columns hold pydantic JSON.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import TypeAdapter

from responder.errors import StoreUnavailableError
from responder.models.alerts import Alert, Source
from responder.models.runs import (
    TERMINAL_RUN_STATES,
    AuditEvent,
    RunQuery,
    RunRecord,
    RunState,
    StepRecord,
    StoredAlert,
)

_V1 = (
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id TEXT NOT NULL, source TEXT NOT NULL, fingerprint TEXT NOT NULL,
        identity TEXT NOT NULL, status TEXT NOT NULL, name TEXT NOT NULL,
        received_at TEXT NOT NULL, processed_at TEXT, alert_json TEXT NOT NULL)""",
    "CREATE INDEX alerts_unprocessed ON alerts (id) WHERE processed_at IS NULL",
    "CREATE INDEX alerts_by_fingerprint ON alerts (source, fingerprint)",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, alert_id INTEGER NOT NULL,
        source TEXT NOT NULL, fingerprint TEXT NOT NULL, alert_identity TEXT NOT NULL,
        guard_key TEXT NOT NULL, idempotency_key TEXT NOT NULL, state TEXT NOT NULL,
        reason TEXT, dry_run INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, not_before TEXT)""",
    "CREATE INDEX runs_by_created ON runs (created_at, run_id)",
    "CREATE INDEX runs_by_rule ON runs (rule_id, created_at, run_id)",
    "CREATE INDEX runs_by_state ON runs (state, created_at, run_id)",
    "CREATE INDEX runs_by_fingerprint ON runs (source, fingerprint)",
    """CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        step_id TEXT NOT NULL, position INTEGER NOT NULL, action TEXT NOT NULL,
        state TEXT NOT NULL, reason TEXT, params_json TEXT, output_json TEXT, error TEXT,
        attempts INTEGER NOT NULL, started_at TEXT, finished_at TEXT,
        PRIMARY KEY (run_id, step_id))""",
    """CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
        actor TEXT NOT NULL, run_id TEXT, rule_id TEXT, step_id TEXT, alert_id INTEGER,
        reason TEXT, details_json TEXT NOT NULL)""",
    "CREATE INDEX audit_by_run ON audit_events (run_id, at)",
    "CREATE INDEX audit_by_time ON audit_events (at)",
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TABLE writable_probe (
        id INTEGER PRIMARY KEY CHECK (id = 1), checked_at TEXT NOT NULL)""",
)

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _V1),)
"""(version, statements) in order; append a new version, never edit a shipped one."""

LATEST_VERSION = MIGRATIONS[-1][0]
_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)"
)


def apply_schema(conn: sqlite3.Connection) -> int:
    """Bring the schema up to LATEST_VERSION in one transaction; return the version found.

    Idempotent and safe against a concurrent opener (BEGIN IMMEDIATE serialises them).
    `conn` must be in autocommit mode (isolation_level=None).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_VERSION_TABLE)
        found = int(
            conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        )
        if found > LATEST_VERSION:
            raise StoreUnavailableError(
                f"database schema version {found} is newer than this responder knows "
                f"({LATEST_VERSION}); upgrade responder or point it at another database"
            )
        for version, statements in MIGRATIONS[found:]:  # versions are 1, 2, 3, ...
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version, to_text(datetime.now(UTC))),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def to_text(value: datetime) -> str:
    """Fixed-width ISO-8601 UTC text; naive datetimes are refused, not guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) time")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    """Read `to_text` output back as an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


_DICT = TypeAdapter(dict[str, Any])
# fmt: off
_TIMES = frozenset(
    ("at", "received_at", "created_at", "updated_at", "not_before", "started_at", "finished_at")
)
_JSON = frozenset(("params", "output", "details"))  # stored in `<field>_json` columns
RUN_FIELDS = ("run_id", "rule_id", "alert_id", "source", "fingerprint", "alert_identity",
              "guard_key", "idempotency_key", "state", "reason", "dry_run", "created_at",
              "updated_at", "not_before")
STEP_FIELDS = ("step_id", "action", "state", "reason", "params", "output", "error", "attempts",
               "started_at", "finished_at")
AUDIT_FIELDS = ("at", "kind", "actor", "run_id", "rule_id", "step_id", "alert_id", "reason",
                "details")
ALERT_FIELDS = ("delivery_id", "source", "fingerprint", "identity", "status", "name",
                "received_at", "alert_json")
# fmt: on


def _columns(fields: tuple[str, ...]) -> str:
    return ", ".join(f"{f}_json" if f in _JSON else f for f in fields)


def _insert(table: str, fields: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(fields))
    return f"INSERT INTO {table} ({_columns(fields)}) VALUES ({marks})"  # noqa: S608


ALERT_INSERT = _insert("alerts", ALERT_FIELDS)
RUN_UPSERT = (
    _insert("runs", RUN_FIELDS)
    + " ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{f} = excluded.{f}" for f in RUN_FIELDS[1:])
)
STEP_INSERT = _insert("steps", ("run_id", "position", *STEP_FIELDS))
AUDIT_INSERT = _insert("audit_events", AUDIT_FIELDS)
MARK_PROCESSED = "UPDATE alerts SET processed_at = coalesce(processed_at, ?) WHERE id = ?"
PROBE_UPSERT = "INSERT OR REPLACE INTO writable_probe (id, checked_at) VALUES (1, ?)"


def insert_alerts(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert `alert_row`s; their new ids, in order."""
    return [int(conn.execute(ALERT_INSERT, row).lastrowid or 0) for row in rows]


def select_unprocessed(conn: sqlite3.Connection, limit: int) -> list[StoredAlert]:
    """Alerts with no processed_at, lowest id first."""
    sql = "SELECT * FROM alerts WHERE processed_at IS NULL ORDER BY id LIMIT ?"
    return [stored_alert(row) for row in conn.execute(sql, (limit,))]


def upsert_run(
    conn: sqlite3.Connection, row: tuple[Any, ...], steps: list[tuple[Any, ...]]
) -> None:
    """Insert or update a `run_row` and replace its steps with `step_rows`."""
    conn.execute(RUN_UPSERT, row)
    conn.execute("DELETE FROM steps WHERE run_id = ?", (row[0],))
    conn.executemany(STEP_INSERT, steps)


def select_audit(conn: sqlite3.Connection, run_id: str) -> list[AuditEvent]:
    """The audit events of one run, by time then insertion order."""
    sql = "SELECT * FROM audit_events WHERE run_id = ? ORDER BY at, id"
    return [audit_event(row) for row in conn.execute(sql, (run_id,))]


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_text(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict):
        return _DICT.dump_json(value).decode()
    return value


def _decode(row: sqlite3.Row, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for column in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
        if column in skip:
            continue
        value = row[column]
        if column.endswith("_json") and column[:-5] in _JSON:
            column, value = column[:-5], None if value is None else _DICT.validate_json(value)
        elif column in _TIMES and value is not None:
            value = from_text(value)
        fields[column] = value
    return fields


def alert_row(delivery_id: str, alert: Alert, received_at: str) -> tuple[Any, ...]:
    """Parameters for ALERT_INSERT."""
    keys = (alert.source, alert.fingerprint, alert.identity, alert.status, alert.name)
    return (delivery_id, *map(_encode, keys), received_at, alert.model_dump_json())


def stored_alert(row: sqlite3.Row) -> StoredAlert:
    """A StoredAlert from an `alerts` row."""
    return StoredAlert(
        alert_id=row["id"],
        delivery_id=row["delivery_id"],
        received_at=from_text(row["received_at"]),
        alert=Alert.model_validate_json(row["alert_json"]),
    )


def run_row(run: RunRecord) -> tuple[Any, ...]:
    """Parameters for RUN_UPSERT."""
    return tuple(_encode(getattr(run, f)) for f in RUN_FIELDS)


def step_rows(run: RunRecord) -> list[tuple[Any, ...]]:
    """Parameters for STEP_INSERT, one per step, keeping the steps' order."""
    return [
        (run.run_id, position, *(_encode(getattr(step, f)) for f in STEP_FIELDS))
        for position, step in enumerate(run.steps)
    ]


def run_record(row: sqlite3.Row, steps: list[sqlite3.Row]) -> RunRecord:
    """A RunRecord from a `runs` row and its `steps` rows (in position order)."""
    fields = _decode(row)
    fields["dry_run"] = bool(fields["dry_run"])
    skip = ("run_id", "position")
    fields["steps"] = tuple(StepRecord.model_validate(_decode(s, skip=skip)) for s in steps)
    return RunRecord.model_validate(fields)


def audit_row(event: AuditEvent) -> tuple[Any, ...]:
    """Parameters for AUDIT_INSERT."""
    return tuple(_encode(getattr(event, f)) for f in AUDIT_FIELDS)


def audit_event(row: sqlite3.Row) -> AuditEvent:
    """An AuditEvent from an `audit_events` row."""
    return AuditEvent.model_validate(_decode(row, skip=("id",)))


_OPEN_STATES = tuple(s.value for s in RunState if s not in TERMINAL_RUN_STATES)


def runs_filter(query: RunQuery) -> tuple[str, list[Any]]:
    """WHERE clause and parameters for `list_runs` (keyset `before` on (created_at, run_id))."""
    return _where(
        ("rule_id = ?", query.rule_id),
        ("state = ?", query.state),
        ("created_at >= ?", query.since),
        ("(created_at, run_id) < (SELECT created_at, run_id FROM runs WHERE run_id = ?)",
         query.before),
    )  # fmt: skip


def open_runs_filter(source: Source | None, fingerprint: str | None) -> tuple[str, list[Any]]:
    """WHERE clause and parameters for runs not in a terminal state."""
    where, params = _where(("source = ?", source), ("fingerprint = ?", fingerprint))
    in_open = f"state IN ({', '.join('?' * len(_OPEN_STATES))})"
    return f"{where} AND {in_open}" if where else f"WHERE {in_open}", [*params, *_OPEN_STATES]


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    used = [(clause, _encode(value)) for clause, value in conditions if value is not None]
    where = " AND ".join(clause for clause, _ in used)
    return (f"WHERE {where}" if where else ""), [value for _, value in used]


def select_runs(
    conn: sqlite3.Connection, where: str, params: list[Any], *, newest_first: bool, limit: int
) -> list[RunRecord]:
    """Runs matching `where` with their steps, ordered by (created_at, run_id)."""
    order = "DESC" if newest_first else "ASC"
    sql = (
        f"SELECT * FROM runs {where} "  # noqa: S608 - clauses are constants, values are bound
        f"ORDER BY created_at {order}, run_id {order} LIMIT ?"
    )
    runs = conn.execute(sql, [*params, limit]).fetchall()
    steps: dict[str, list[sqlite3.Row]] = {r["run_id"]: [] for r in runs}
    if steps:
        marks = ", ".join("?" * len(steps))
        step_sql = f"SELECT * FROM steps WHERE run_id IN ({marks}) ORDER BY position"  # noqa: S608
        for step in conn.execute(step_sql, list(steps)):
            steps[step["run_id"]].append(step)
    return [run_record(r, steps[r["run_id"]]) for r in runs]
