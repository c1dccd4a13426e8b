"""The SQL of the SQLite store and the mapping between its rows and our models.

Functions here take the writer thread's connection (see `writer`) and run inside the
transaction it opened. Datetimes are fixed-width ISO-8601 UTC text (`schema.to_text`); JSON
fields (`codecs.JSON_FIELDS`) are stored in `<field>_json` columns. The approvals table is
`approvals`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from responder.adapters.store.codecs import (
    AUDIT_FIELDS,
    JSON_FIELDS,
    RUN_FIELDS,
    STEP_FIELDS,
    load_json,
    pruned_event,
    values,
)
from responder.adapters.store.filters import Dialect, Filter
from responder.adapters.store.sqlite.schema import from_text, to_text
from responder.models.alerts import Alert
from responder.models.runs import AuditEvent, RunRecord, StepRecord, StoredAlert

TIME_FIELDS = frozenset(
    (
        "at",
        "received_at",
        "created_at",
        "updated_at",
        "not_before",
        "started_at",
        "finished_at",
        "requested_at",
        "expires_at",
        "decided_at",
    )
)
ALERT_COLUMNS = (
    "delivery_id",
    "source",
    "fingerprint",
    "identity",
    "status",
    "name",
    "received_at",
    "alert_json",
    "processed_at",
)


def encode(value: Any) -> Any:
    """A model value as a parameter: times as `to_text`, enums by value, booleans as 0/1."""
    if isinstance(value, datetime):
        return to_text(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


def column(field: str) -> str:
    """The column of a model field: `<field>_json` for a JSON field."""
    return f"{field}_json" if field in JSON_FIELDS else field


def columns(fields: Sequence[str]) -> tuple[str, ...]:
    """The columns of `fields`, in order."""
    return tuple(column(f) for f in fields)


def decode(row: sqlite3.Row, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row's columns as model fields: JSON and times read back, `skip` left out."""
    fields: dict[str, Any] = {}
    for name in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
        if name in skip:
            continue
        value = row[name]
        if name.endswith("_json") and name[:-5] in JSON_FIELDS:
            name = name[:-5]
            value = load_json(name, value)
        elif name in TIME_FIELDS and value is not None:
            value = from_text(value)
        fields[name] = value
    return fields


def _one_of(name: str, choices: Sequence[str]) -> Filter:
    return f"{name} IN ({', '.join('?' * len(choices))})", list(choices)


DIALECT = Dialect(mark="?", encode=encode, one_of=_one_of)


def _insert(table: str, names: Sequence[str]) -> str:
    marks = ", ".join("?" * len(names))
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608


def upsert_sql(table: str, fields: Sequence[str]) -> str:
    """INSERT of `fields`, or UPDATE of all but the first (the key) when the key exists."""
    names = columns(fields)
    return (
        _insert(table, names)
        + f" ON CONFLICT ({names[0]}) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in names[1:])
    )


def cas_sql(table: str, fields: Sequence[str]) -> str:
    """UPDATE of all `fields` but the first (the key), only while `state` is the expected one.

    Parameters: the values of the fields after the key, the key, the expected state.
    """
    names = columns(fields)
    sets = ", ".join(f"{c} = ?" for c in names[1:])
    return f"UPDATE {table} SET {sets} WHERE {names[0]} = ? AND state = ?"  # noqa: S608


_ALERT_VALUES = "(" + ", ".join("?" * len(ALERT_COLUMNS)) + ")"
RUN_UPSERT = upsert_sql("runs", RUN_FIELDS)
RUN_CAS = cas_sql("runs", RUN_FIELDS)
STEP_INSERT = _insert("steps", ("run_id", "position", *columns(STEP_FIELDS)))
# one step as a transition left it: inserted, or updated in place (its key: run_id, step_id)
STEP_UPSERT = (
    STEP_INSERT
    + " ON CONFLICT (run_id, step_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ("position", *columns(STEP_FIELDS[1:])))
)
AUDIT_INSERT = _insert("audit_events", columns(AUDIT_FIELDS))
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
        rows_sql = ", ".join([_ALERT_VALUES] * len(chunk))
        sql = f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) VALUES {rows_sql}"  # noqa: S608
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


def upsert_steps(
    conn: sqlite3.Connection,
    row: tuple[Any, ...],
    steps: list[tuple[Any, ...]],
    audit: Sequence[tuple[Any, ...]] = (),
) -> None:
    """Insert or update a `run_row` and only the `step_rows` given, append `audit_row`s."""
    conn.execute(RUN_UPSERT, row)
    conn.executemany(STEP_UPSERT, steps)
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


def alert_row(
    delivery_id: str, alert: Alert, received_at: str, *, processed_at: str | None = None
) -> tuple[Any, ...]:
    """Parameters for `insert_alerts` (one row)."""
    keys = (alert.source, alert.fingerprint, alert.identity, alert.status, alert.name)
    return (delivery_id, *map(encode, keys), received_at, alert.model_dump_json(), processed_at)


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
    return tuple(values(run, RUN_FIELDS, encode))


def step_rows(run: RunRecord, step_ids: Collection[str] | None = None) -> list[tuple[Any, ...]]:
    """Parameters for STEP_INSERT (and STEP_UPSERT), one per step (only those of `step_ids`
    if given: ValueError for an id the run does not have), keeping the steps' order."""
    if step_ids is not None:
        unknown = set(step_ids) - {step.step_id for step in run.steps}
        if unknown:
            raise ValueError(f"run {run.run_id} has no step {', '.join(sorted(unknown))}")
    return [
        (run.run_id, position, *values(step, STEP_FIELDS, encode))
        for position, step in enumerate(run.steps)
        if step_ids is None or step.step_id in step_ids
    ]


def run_record(row: sqlite3.Row, steps: list[sqlite3.Row]) -> RunRecord:
    """A RunRecord from a `runs` row and its `steps` rows (in position order)."""
    fields = decode(row)
    fields["dry_run"] = bool(fields["dry_run"])
    skip = ("run_id", "position")
    fields["steps"] = tuple(StepRecord.model_validate(decode(s, skip=skip)) for s in steps)
    return RunRecord.model_validate(fields)


def audit_row(event: AuditEvent) -> tuple[Any, ...]:
    """Parameters for AUDIT_INSERT."""
    return tuple(values(event, AUDIT_FIELDS, encode))


def audit_event(row: sqlite3.Row) -> AuditEvent:
    """An AuditEvent from an `audit_events` row."""
    return AuditEvent.model_validate(decode(row, skip=("id",)))


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
