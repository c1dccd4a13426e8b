"""The SQL of the PostgreSQL store's runs, steps and audit events, the mapping between their
rows and our models, and the parameter encoding every table shares (`encode`). The `alerts`
table is `postgres_alert_queries`, the `approvals` table `postgres_approvals`.

Each function takes an open autocommit connection and does one unit of work; those that write
more than one statement open their own transaction. Times are timestamptz (naive datetimes are
refused) and read back as aware UTC. JSON columns are `json`, written as pydantic JSON text and
read back `::text`, so both stores decode them the same way. PostgreSQL text cannot hold NUL:
in scalar columns (names, fingerprints, reasons) it is stored as U+FFFD; JSON keeps `\\u0000`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow, dict_row
from pydantic import TypeAdapter

from responder.adapters.sqlite_queries import pruned_event
from responder.models.alerts import Source
from responder.models.runs import (
    TERMINAL_RUN_STATES,
    AuditEvent,
    RunQuery,
    RunRecord,
    RunState,
    StepRecord,
)

Conn = AsyncConnection[TupleRow]
_DICT = TypeAdapter(dict[str, Any])
_JSON = frozenset(("params", "output", "details"))
# fmt: off
RUN_COLUMNS = ("run_id", "rule_id", "alert_id", "source", "fingerprint", "alert_identity",
               "guard_key", "idempotency_key", "state", "reason", "dry_run", "created_at",
               "updated_at", "not_before", "owner")
STEP_COLUMNS = ("step_id", "action", "state", "reason", "params", "output", "error", "attempts",
                "started_at", "finished_at")
AUDIT_COLUMNS = ("at", "kind", "actor", "run_id", "rule_id", "step_id", "alert_id", "reason",
                 "details")
# fmt: on
_OPEN_STATES = [s.value for s in RunState if s not in TERMINAL_RUN_STATES]


def _marks(columns: Sequence[str]) -> str:
    return ", ".join("%s::json" if c in _JSON else "%s" for c in columns)


def _select(columns: Sequence[str]) -> str:
    return ", ".join(f"{c}::text AS {c}" if c in _JSON else c for c in columns)


_RUN_INSERT = f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({_marks(RUN_COLUMNS)})"  # noqa: S608
RUN_UPSERT = f"{_RUN_INSERT} ON CONFLICT (run_id) DO UPDATE SET " + ", ".join(
    f"{c} = EXCLUDED.{c}" for c in RUN_COLUMNS[1:]
)
RUN_CAS = (
    "UPDATE runs SET "  # noqa: S608 - column names are constants, values are bound
    + ", ".join(f"{c} = %s" for c in RUN_COLUMNS[1:])
    + " WHERE run_id = %s AND state = %s"
)
STEP_INSERT = (
    f"INSERT INTO steps (run_id, position, {', '.join(STEP_COLUMNS)}) "  # noqa: S608
    f"VALUES (%s, %s, {_marks(STEP_COLUMNS)})"
)
AUDIT_ROWS_PER_STATEMENT = 500  # 4,500 parameters, far below PostgreSQL's 65,535
PROBE_UPSERT = (
    "INSERT INTO writable_probe (id, checked_at) VALUES (1, now()) "
    "ON CONFLICT (id) DO UPDATE SET checked_at = EXCLUDED.checked_at"
)


def encode(value: Any) -> Any:
    """A model value as a query parameter."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) time")
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return _DICT.dump_json(value).decode()
    return value


def _decode(row: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for column, value in row.items():
        if column in skip:
            continue
        if column in _JSON and value is not None:
            value = _DICT.validate_json(value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC)
        fields[column] = value
    return fields


def _run_params(run: RunRecord) -> list[Any]:
    return [encode(getattr(run, c)) for c in RUN_COLUMNS]


async def _replace_steps(conn: Conn, run: RunRecord) -> None:
    await conn.execute("DELETE FROM steps WHERE run_id = %s", (encode(run.run_id),))
    rows = [
        [encode(run.run_id), position, *(encode(getattr(step, c)) for c in STEP_COLUMNS)]
        for position, step in enumerate(run.steps)
    ]
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(STEP_INSERT, rows)


async def upsert_run(conn: Conn, run: RunRecord, audit: Sequence[AuditEvent] = ()) -> None:
    """Insert or update `run`, replace its steps and append `audit`, in one transaction.

    In pipeline mode: the statements go out together and their answers come back together,
    one round trip instead of one per statement (BEGIN, upsert, delete, inserts, COMMIT)."""
    async with conn.pipeline(), conn.transaction():
        await conn.execute(RUN_UPSERT, _run_params(run))
        await _replace_steps(conn, run)
        await _insert_audit(conn, audit)


async def _insert_audit(conn: Conn, events: Sequence[AuditEvent]) -> None:
    """One multi-row INSERT per `AUDIT_ROWS_PER_STATEMENT` events, rows (and so ids) in order.

    Not `executemany`: a statement per event cost about 0.3 ms of CPU each, and an alert
    storm's duplicates append one `run_skipped` event apiece."""
    for start in range(0, len(events), AUDIT_ROWS_PER_STATEMENT):
        chunk = events[start : start + AUDIT_ROWS_PER_STATEMENT]
        params = [encode(getattr(e, c)) for e in chunk for c in AUDIT_COLUMNS]
        await conn.execute(_audit_insert(len(chunk)), params)


@functools.lru_cache(maxsize=32)
def _audit_insert(rows: int) -> str:
    """The audit INSERT with `rows` rows of placeholders."""
    values = ", ".join([f"({_marks(AUDIT_COLUMNS)})"] * rows)
    return f"INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) VALUES {values}"  # noqa: S608


async def replace_run_if(conn: Conn, run: RunRecord, expected: RunState) -> bool:
    """Compare-and-set on the stored state; the row lock serialises concurrent callers."""
    params = _run_params(run)
    async with conn.transaction():
        cur = await conn.execute(RUN_CAS, [*params[1:], params[0], encode(expected)])
        if cur.rowcount != 1:
            return False
        await _replace_steps(conn, run)
    return True


def runs_filter(query: RunQuery) -> tuple[str, list[Any]]:
    """WHERE clause and parameters for `list_runs` (keyset `before` on (created_at, run_id))."""
    return where(
        ("rule_id = %s", query.rule_id),
        ("state = %s", query.state),
        ("source = %s", query.source),
        ("fingerprint = %s", query.fingerprint),
        ("created_at >= %s", query.since),
        ("(created_at, run_id) < (SELECT created_at, run_id FROM runs WHERE run_id = %s)",
         query.before),
    )  # fmt: skip


def open_runs_filter(source: Source | None, fingerprint: str | None) -> tuple[str, list[Any]]:
    """WHERE clause and parameters for runs not in a terminal state."""
    clause, params = where(("source = %s", source), ("fingerprint = %s", fingerprint))
    joined = f"{clause} AND state = ANY(%s)" if clause else "WHERE state = ANY(%s)"
    return joined, [*params, _OPEN_STATES]


DUE_FILTER = "WHERE state = 'pending' AND not_before <= %s"
DUE_ORDER = "ORDER BY not_before, created_at, run_id"


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`WHERE a AND b` of the conditions whose value is not None, and their parameters."""
    used = [(clause, encode(value)) for clause, value in conditions if value is not None]
    clause = " AND ".join(c for c, _ in used)
    return (f"WHERE {clause}" if clause else ""), [v for _, v in used]


_STEP_OBJECT = ", ".join(f"'{c}', s.{c}" for c in STEP_COLUMNS)
_STEPS_JSON = (
    f"(SELECT coalesce(json_agg(json_build_object({_STEP_OBJECT}) ORDER BY s.position), '[]') "  # noqa: S608
    "FROM steps s WHERE s.run_id = runs.run_id)::text AS steps"
)
_STEPS = TypeAdapter(tuple[StepRecord, ...])


async def run_exists(conn: Conn, params: Sequence[Any]) -> bool:
    """Whether a run exists for (source, fingerprint, rule_id, alert_identity)."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE source = %s AND fingerprint = %s "
        "AND rule_id = %s AND alert_identity = %s)",
        params,
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def select_runs(
    conn: Conn, where_clause: str, params: Sequence[Any], *, order: str, limit: int | None
) -> list[RunRecord]:
    """Runs matching `where_clause`, in `order`, each with its steps: one statement, so one
    snapshot and one round trip."""
    limit_clause = "LIMIT %s" if limit is not None else ""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_select(RUN_COLUMNS)}, {_STEPS_JSON} FROM runs "  # noqa: S608
            f"{where_clause} {order} {limit_clause}",
            [*params, *([limit] if limit is not None else [])],
        )
        rows = await cur.fetchall()
    return [
        RunRecord.model_validate(
            {**_decode(r, ("steps",)), "steps": _STEPS.validate_json(r["steps"])}
        )
        for r in rows
    ]


async def append_audit(conn: Conn, events: Sequence[AuditEvent]) -> None:
    """Insert `events` in order, all or none: one autocommit statement (one round trip);
    a transaction only when they need more than one."""
    if len(events) <= AUDIT_ROWS_PER_STATEMENT:
        await _insert_audit(conn, events)
        return
    async with conn.pipeline(), conn.transaction():
        await _insert_audit(conn, events)


async def select_audit(conn: Conn, run_id: str) -> list[AuditEvent]:
    """The audit trail of one run, by time then insertion order."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_select(AUDIT_COLUMNS)} FROM audit_events "  # noqa: S608
            "WHERE run_id = %s ORDER BY at, id",
            (encode(run_id),),
        )
        return [AuditEvent.model_validate(_decode(row)) for row in await cur.fetchall()]


async def prune_audit(conn: Conn, older_than: datetime, actor: str, now: datetime) -> int:
    """Delete audit events older than `older_than` and append `audit_pruned`, atomically.

    Only here does a transaction set `responder.audit_prune`, the one flag the append-only
    trigger lets DELETE through with; it is transaction-local and reset before the insert.
    """
    cutoff = encode(older_than)
    async with conn.transaction():
        await conn.execute("SELECT set_config('responder.audit_prune', 'on', true)")
        cur = await conn.execute("DELETE FROM audit_events WHERE at < %s", (cutoff,))
        count = cur.rowcount
        await conn.execute("SELECT set_config('responder.audit_prune', 'off', true)")
        event = pruned_event(older_than, actor, now, count)
        await _insert_audit(conn, [event])
    return count
