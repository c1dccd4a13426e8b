"""The SQL of the SQLite store and the mapping between its rows and our models.

Functions here take the writer thread's connection (see `sqlite_writer`) and run inside the
transaction it opened. Datetimes are fixed-width ISO-8601 UTC text (`sqlite_schema.to_text`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import TypeAdapter

from responder.adapters.sqlite_schema import from_text, to_text
from responder.models.alerts import Alert, Source
from responder.models.runs import (
    TERMINAL_RUN_STATES,
    AuditEvent,
    AuditKind,
    RunQuery,
    RunRecord,
    RunState,
    StepRecord,
    StoredAlert,
)

_DICT = TypeAdapter(dict[str, Any])
# fmt: off
_TIMES = frozenset(
    ("at", "received_at", "created_at", "updated_at", "not_before", "started_at", "finished_at")
)
_JSON = frozenset(("params", "output", "details"))  # stored in `<field>_json` columns
RUN_FIELDS = ("run_id", "rule_id", "alert_id", "source", "fingerprint", "alert_identity",
              "guard_key", "idempotency_key", "state", "reason", "dry_run", "created_at",
              "updated_at", "not_before", "owner")
STEP_FIELDS = ("step_id", "action", "state", "reason", "params", "output", "error", "attempts",
               "started_at", "finished_at")
AUDIT_FIELDS = ("at", "kind", "actor", "run_id", "rule_id", "step_id", "alert_id", "reason",
                "details")
ALERT_FIELDS = ("delivery_id", "source", "fingerprint", "identity", "status", "name",
                "received_at", "alert_json", "processed_at")
# fmt: on


def _columns(fields: tuple[str, ...]) -> str:
    return ", ".join(f"{f}_json" if f in _JSON else f for f in fields)


def _insert(table: str, fields: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(fields))
    return f"INSERT INTO {table} ({_columns(fields)}) VALUES ({marks})"  # noqa: S608


_ALERT_VALUES = "(" + ", ".join("?" * len(ALERT_FIELDS)) + ")"
RUN_UPSERT = (
    _insert("runs", RUN_FIELDS)
    + " ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{f} = excluded.{f}" for f in RUN_FIELDS[1:])
)
RUN_CAS = (
    "UPDATE runs SET "  # noqa: S608 - column names are constants, values are bound
    + ", ".join(f"{f} = ?" for f in RUN_FIELDS[1:])
    + " WHERE run_id = ? AND state = ?"
)
STEP_INSERT = _insert("steps", ("run_id", "position", *STEP_FIELDS))
AUDIT_INSERT = _insert("audit_events", AUDIT_FIELDS)
MARK_PROCESSED = "UPDATE alerts SET processed_at = coalesce(processed_at, ?) WHERE id = ?"
PROBE_UPSERT = "INSERT OR REPLACE INTO writable_probe (id, checked_at) VALUES (1, ?)"


ALERTS_PER_INSERT = 500  # x 9 bound values, far below SQLite's 32,766 variables


def insert_alerts(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert `alert_row`s; their new ids, in order.

    One multi-row INSERT per 500 alerts: every statement costs the writer thread a GIL
    hand-off, which waits up to the switch interval while the event loop is busy. The rows
    of one INSERT get consecutive ids (AUTOINCREMENT, and this connection is the only
    writer inside its transaction), so the last one gives them all.
    """
    ids: list[int] = []
    for start in range(0, len(rows), ALERTS_PER_INSERT):
        chunk = rows[start : start + ALERTS_PER_INSERT]
        values = ", ".join([_ALERT_VALUES] * len(chunk))
        sql = f"INSERT INTO alerts ({_columns(ALERT_FIELDS)}) VALUES {values}"  # noqa: S608
        last = int(conn.execute(sql, [v for row in chunk for v in row]).lastrowid or 0)
        ids.extend(range(last - len(chunk) + 1, last + 1))
    return ids


def select_unprocessed(conn: sqlite3.Connection, limit: int) -> list[StoredAlert]:
    """Alerts with no processed_at, lowest id first."""
    sql = "SELECT * FROM alerts WHERE processed_at IS NULL ORDER BY id LIMIT ?"
    return [stored_alert(row) for row in conn.execute(sql, (limit,))]


def select_alert(conn: sqlite3.Connection, alert_id: int) -> StoredAlert | None:
    """One alert by id, or None."""
    row = conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return None if row is None else stored_alert(row)


def upsert_run(
    conn: sqlite3.Connection,
    row: tuple[Any, ...],
    steps: list[tuple[Any, ...]],
    audit: Sequence[tuple[Any, ...]] = (),
) -> None:
    """Insert or update a `run_row`, replace its steps with `step_rows`, append `audit_row`s."""
    conn.execute(RUN_UPSERT, row)
    conn.execute("DELETE FROM steps WHERE run_id = ?", (row[0],))
    conn.executemany(STEP_INSERT, steps)
    if audit:
        conn.executemany(AUDIT_INSERT, audit)


def replace_run_if(
    conn: sqlite3.Connection, row: tuple[Any, ...], steps: list[tuple[Any, ...]], expected: str
) -> bool:
    """Update a `run_row` and its steps only if the stored run is in state `expected`.

    Atomic across processes: the writer's BEGIN IMMEDIATE holds the file's write lock.
    """
    if conn.execute(RUN_CAS, (*row[1:], row[0], expected)).rowcount != 1:
        return False
    conn.execute("DELETE FROM steps WHERE run_id = ?", (row[0],))
    conn.executemany(STEP_INSERT, steps)
    return True


def select_audit(conn: sqlite3.Connection, run_id: str) -> list[AuditEvent]:
    """The audit events of one run, by time then insertion order."""
    sql = "SELECT * FROM audit_events WHERE run_id = ? ORDER BY at, id"
    return [audit_event(row) for row in conn.execute(sql, (run_id,))]


def prune_audit(conn: sqlite3.Connection, older_than: datetime, actor: str, now: datetime) -> int:
    """Delete audit rows older than `older_than`, append `audit_pruned`; the count deleted.

    The guard row that lets DELETE through exists only inside this write transaction.
    """
    conn.execute("INSERT INTO audit_prune_guard (id) VALUES (1)")
    try:
        sql = "DELETE FROM audit_events WHERE at < ?"
        count = conn.execute(sql, (to_text(older_than),)).rowcount
    finally:
        conn.execute("DELETE FROM audit_prune_guard")
    conn.execute(AUDIT_INSERT, audit_row(pruned_event(older_than, actor, now, count)))
    return count


def pruned_event(older_than: datetime, actor: str, now: datetime, count: int) -> AuditEvent:
    """The `audit_pruned` record of one retention run (both stores write this one)."""
    return AuditEvent(
        kind=AuditKind.AUDIT_PRUNED,
        at=now,
        actor=actor,
        reason="retention",
        details={"cutoff": older_than.astimezone(UTC).isoformat(), "count": count},
    )


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


def alert_row(
    delivery_id: str, alert: Alert, received_at: str, *, processed_at: str | None = None
) -> tuple[Any, ...]:
    """Parameters for `insert_alerts` (one row)."""
    keys = (alert.source, alert.fingerprint, alert.identity, alert.status, alert.name)
    return (delivery_id, *map(_encode, keys), received_at, alert.model_dump_json(), processed_at)


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
        ("source = ?", query.source),
        ("fingerprint = ?", query.fingerprint),
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


NEWEST_FIRST = "ORDER BY created_at DESC, run_id DESC"
OLDEST_FIRST = "ORDER BY created_at, run_id"
DUE_FILTER = "WHERE state = 'pending' AND not_before <= ?"
DUE_ORDER = "ORDER BY not_before, created_at, run_id"


RUN_EXISTS = (
    "SELECT 1 FROM runs WHERE source = ? AND fingerprint = ? AND rule_id = ? "
    "AND alert_identity = ? LIMIT 1"
)


def run_exists(conn: sqlite3.Connection, params: tuple[Any, ...]) -> bool:
    """Whether RUN_EXISTS finds a row for (source, fingerprint, rule_id, alert_identity)."""
    return conn.execute(RUN_EXISTS, params).fetchone() is not None


def select_runs(
    conn: sqlite3.Connection, where: str, params: list[Any], *, order: str, limit: int
) -> list[RunRecord]:
    """Runs matching `where` with their steps, in `order` (a constant ORDER BY clause)."""
    sql = f"SELECT * FROM runs {where} {order} LIMIT ?"  # noqa: S608 - values are bound
    runs = conn.execute(sql, [*params, limit]).fetchall()
    steps: dict[str, list[sqlite3.Row]] = {r["run_id"]: [] for r in runs}
    if steps:
        marks = ", ".join("?" * len(steps))
        step_sql = f"SELECT * FROM steps WHERE run_id IN ({marks}) ORDER BY position"  # noqa: S608
        for step in conn.execute(step_sql, list(steps)):
            steps[step["run_id"]].append(step)
    return [run_record(r, steps[r["run_id"]]) for r in runs]
