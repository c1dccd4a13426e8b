"""The SQL of the PostgreSQL store's alerts, runs, steps and audit events, the mapping between
their rows and our models, and the parameter encoding every table shares (`encode`). The
`approvals` table is `approvals`.

Each function takes an open autocommit connection and does one unit of work; those that write
more than one statement open their own transaction. Times are timestamptz (naive datetimes are
refused) and read back as aware UTC. JSON fields (`codecs.JSON_FIELDS`) are `json` columns,
written as pydantic JSON text and read back `::text`, so both stores decode them the same way.
PostgreSQL text cannot hold NUL: in scalar columns (names, fingerprints, reasons) it is stored
as U+FFFD; JSON keeps `\\u0000`. The alert documents are `json`, read back `::text` and
validated as `Alert`.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NamedTuple

from psycopg.rows import dict_row
from pydantic import TypeAdapter

from responder.adapters.store.codecs import (
    AUDIT_FIELDS,
    JSON_FIELDS,
    RUN_FIELDS,
    STEP_FIELDS,
    aware,
    load_json,
    pruned_event,
    values,
)
from responder.adapters.store.filters import Dialect, Filter
from responder.adapters.store.postgres.connections import Conn
from responder.models.alerts import Alert, Delivery
from responder.models.runs import AuditEvent, RunRecord, RunState, StepRecord, StoredAlert


def encode(value: Any) -> Any:
    """A model value as a query parameter: aware times as they are, enums by value, NUL in
    text as U+FFFD."""
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    return value


def decode(row: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row's columns as model fields: JSON read back, times as UTC, `skip` left out."""
    fields: dict[str, Any] = {}
    for column, value in row.items():
        if column in skip:
            continue
        if column in JSON_FIELDS:
            value = load_json(column, value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC)
        fields[column] = value
    return fields


def mark(column: str) -> str:
    """The placeholder of a column's value (`%s::json` for a JSON field)."""
    return "%s::json" if column in JSON_FIELDS else "%s"


def marks(columns: Sequence[str]) -> str:
    """The placeholders of `columns` in an INSERT."""
    return ", ".join(mark(c) for c in columns)


def select_list(columns: Sequence[str]) -> str:
    """The SELECT list of `columns` (a JSON field read back `::text`)."""
    return ", ".join(f"{c}::text AS {c}" if c in JSON_FIELDS else c for c in columns)


def upsert_sql(table: str, fields: Sequence[str]) -> str:
    """INSERT of `fields`, or UPDATE of all but the first (the key) when the key exists."""
    return (
        f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({marks(fields)}) "  # noqa: S608
        f"ON CONFLICT ({fields[0]}) DO UPDATE SET "
        + ", ".join(f"{f} = EXCLUDED.{f}" for f in fields[1:])
    )


def cas_sql(table: str, fields: Sequence[str]) -> str:
    """UPDATE of all `fields` but the first (the key), only while `state` is the expected one.

    Parameters: the values of the fields after the key, the key, the expected state.
    """
    sets = ", ".join(f"{f} = {mark(f)}" for f in fields[1:])
    return f"UPDATE {table} SET {sets} WHERE {fields[0]} = %s AND state = %s"  # noqa: S608


def _any_of(column: str, choices: Sequence[str]) -> Filter:
    return f"{column} = ANY(%s)", [list(choices)]


DIALECT = Dialect(mark="%s", encode=encode, one_of=_any_of)


_ALERTS = TypeAdapter(list[Alert])
# The alerts of one or several deliveries (concurrent deliveries are written together, see
# `batching`). The text arrays go in binary (%b): no quoting and escaping of every
# element, which in text format cost ~0.3 ms of CPU per alert. The alert documents go as ONE
# JSON array, serialised in one call and split by the server (json_array_elements), instead of
# a model_dump_json per alert and a binary array of their texts.
ALERT_INSERT = """
    INSERT INTO alerts (delivery_id, source, fingerprint, identity, status, name, received_at,
                        alert, processed_at)
    SELECT a.delivery, a.source, a.fingerprint, a.identity, a.status, a.name, a.at,
           a.alert, CASE WHEN a.settled THEN a.at END
    FROM ROWS FROM (unnest(%(delivery)b::text[]), unnest(%(source)b::text[]),
                    unnest(%(fingerprint)b::text[]), unnest(%(identity)b::text[]),
                    unnest(%(status)b::text[]), unnest(%(name)b::text[]),
                    unnest(%(at)b::timestamptz[]), json_array_elements(%(alerts)s::json),
                    unnest(%(settled)b::bool[]))
         WITH ORDINALITY AS a (delivery, source, fingerprint, identity, status, name, at, alert,
                               settled, ord)
    ORDER BY a.ord
    RETURNING id"""
# One alert (Grafana, Sentry, ungrouped Alertmanager): plain parameters cost psycopg a quarter
# less CPU than seven one-element arrays (0.30 against 0.40 ms per insert).
ALERT_INSERT_ONE = """
    INSERT INTO alerts (delivery_id, source, fingerprint, identity, status, name, received_at,
                        alert, processed_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s::json, %s)
    RETURNING id"""
_ALERT_SELECT = "SELECT id, delivery_id, received_at, alert::text AS alert FROM alerts"
# Concurrent processed marks, one UPDATE (see `batching`); the first mark is kept.
MARK_MANY = (
    "UPDATE alerts SET processed_at = m.at "
    "FROM unnest(%s::bigint[], %s::timestamptz[]) AS m (id, at) "
    "WHERE alerts.id = m.id AND alerts.processed_at IS NULL"
)


class DeliveryRows(NamedTuple):
    """One delivery to insert: its alerts, when it was received, and which of its alerts are
    written already processed (`settled[i]`, at `received_at`)."""

    delivery: Delivery
    received_at: datetime
    settled: Sequence[bool]


async def insert_alerts(conn: Conn, deliveries: Sequence[DeliveryRows]) -> list[list[int]]:
    """Insert every alert of `deliveries` in one statement; each delivery's ids, in order."""
    if len(deliveries) == 1 and len(deliveries[0].delivery.alerts) == 1:
        delivery, received_at, settled = deliveries[0]
        [alert] = delivery.alerts
        keys = (delivery.delivery_id, alert.source, alert.fingerprint, alert.identity)
        one = [encode(v) for v in (*keys, alert.status, alert.name, received_at)]
        one += [alert.model_dump_json(), encode(received_at) if settled[0] else None]
        cur = await conn.execute(ALERT_INSERT_ONE, one)
        return [[int(row[0]) for row in await cur.fetchall()]]
    alerts = [alert for rows in deliveries for alert in rows.delivery.alerts]
    params = {
        "delivery": _texts([r.delivery.delivery_id for r in deliveries for _ in r.delivery.alerts]),
        "source": _texts([str(a.source) for a in alerts]),
        "fingerprint": _texts([a.fingerprint for a in alerts]),
        "identity": _texts([a.identity for a in alerts]),
        "status": _texts([str(a.status) for a in alerts]),
        "name": _texts([a.name for a in alerts]),
        "at": [encode(r.received_at) for r in deliveries for _ in r.delivery.alerts],
        "alerts": _ALERTS.dump_json(alerts).decode(),
        "settled": [bool(done) for rows in deliveries for done in rows.settled],
    }
    cur = await conn.execute(ALERT_INSERT, params)
    # identities are drawn in ORDER BY ord order, so ascending ids are delivery order
    ids = sorted(int(row[0]) for row in await cur.fetchall())
    split: list[list[int]] = []
    for rows in deliveries:
        split.append(ids[: len(rows.delivery.alerts)])
        ids = ids[len(rows.delivery.alerts) :]
    return split


def _texts(texts: list[str]) -> list[str]:
    """A text column of a grouped insert, as `encode` would make it, checked in one pass: a
    NUL (which PostgreSQL text cannot hold) becomes U+FFFD."""
    if "\x00" in "".join(texts):
        return [text.replace("\x00", "\ufffd") for text in texts]
    return texts


def _stored_alert(row: dict[str, Any]) -> StoredAlert:
    return StoredAlert(
        alert_id=row["id"],
        delivery_id=row["delivery_id"],
        received_at=row["received_at"].astimezone(UTC),
        alert=Alert.model_validate_json(row["alert"]),
    )


async def select_alerts(conn: Conn, where: str, params: Sequence[Any]) -> list[StoredAlert]:
    """Alerts matching `where` (a constant clause, ORDER BY and LIMIT included)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"{_ALERT_SELECT} {where}", params)
        return [_stored_alert(row) for row in await cur.fetchall()]


async def mark_processed(conn: Conn, params: tuple[list[int], list[Any]]) -> None:
    """Mark the alerts `params[0]` processed at the times `params[1]`, unless already marked."""
    await conn.execute(MARK_MANY, params)


RUN_CAS = cas_sql("runs", RUN_FIELDS)
STEP_INSERT = (
    f"INSERT INTO steps (run_id, position, {', '.join(STEP_FIELDS)}) "  # noqa: S608
    f"VALUES (%s, %s, {marks(STEP_FIELDS)})"
)
# Step transitions of many runs (`upsert_steps`): ONE autocommit statement (so one round trip
# and one commit, no transaction or pipeline set-up) for the runs' rows, the steps that changed,
# the stale steps of replaced runs and the audit events, whatever the number of runs; each
# column is one array parameter, sent in binary (in text, quoting every element was 13% of
# the daemon's CPU in the engine bench). Data-modifying CTEs all run to completion; the
# steps' foreign key is checked at the end of the statement, when their runs are there.
_TYPES = {
    "alert_id": "bigint",
    "dry_run": "boolean",
    "position": "integer",
    "attempts": "integer",
    **dict.fromkeys(("created_at", "updated_at", "not_before", "at"), "timestamptz"),
    **dict.fromkeys(("started_at", "finished_at"), "timestamptz"),
}
STEP_COLUMNS = ("run_id", "position", *STEP_FIELDS)


def _unnest(prefix: str, names: Sequence[str]) -> tuple[str, str]:
    """`unnest(<one typed array parameter per column>)` and the SELECT list over it."""
    arrays = ", ".join(f"%({prefix}{i})b::{_TYPES.get(n, 'text')}[]" for i, n in enumerate(names))
    picked = ", ".join(f"u.{n}::json" if n in JSON_FIELDS else f"u.{n}" for n in names)
    return arrays, picked


def _upsert_steps_sql() -> str:
    run_arrays, run_picked = _unnest("r", RUN_FIELDS)
    step_arrays, step_picked = _unnest("s", STEP_COLUMNS)
    audit_arrays, audit_picked = _unnest("a", AUDIT_FIELDS)
    run_sets = ", ".join(f"{n} = EXCLUDED.{n}" for n in RUN_FIELDS[1:])
    step_sets = ", ".join(f"{n} = EXCLUDED.{n}" for n in ("position", *STEP_FIELDS[1:]))
    return (  # only our column names are interpolated
        f"WITH r AS (INSERT INTO runs ({', '.join(RUN_FIELDS)}) SELECT {run_picked} "  # noqa: S608
        f"FROM unnest({run_arrays}) AS u ({', '.join(RUN_FIELDS)}) "
        f"ON CONFLICT (run_id) DO UPDATE SET {run_sets} RETURNING 1), "
        # a replaced run's stored steps that its new list does not have
        "d AS (DELETE FROM steps WHERE run_id = ANY(%(replaced)b::text[]) "
        "AND (run_id, step_id) NOT IN (SELECT * FROM unnest(%(s0)b::text[], %(s2)b::text[])) "
        "RETURNING 1), "
        f"s AS (INSERT INTO steps ({', '.join(STEP_COLUMNS)}) SELECT {step_picked} "
        f"FROM unnest({step_arrays}) AS u ({', '.join(STEP_COLUMNS)}) "
        f"ON CONFLICT (run_id, step_id) DO UPDATE SET {step_sets} RETURNING 1), "
        f"a AS (INSERT INTO audit_events ({', '.join(AUDIT_FIELDS)}) SELECT {audit_picked} "
        f"FROM unnest({audit_arrays}) WITH ORDINALITY AS u ({', '.join(AUDIT_FIELDS)}, ord) "
        "ORDER BY u.ord RETURNING 1) "
        "SELECT 1"
    )


STEPS_UPSERT = _upsert_steps_sql()
AUDIT_ROWS_PER_STATEMENT = 500  # 4,500 parameters, far below PostgreSQL's 65,535
PROBE_UPSERT = (
    "INSERT INTO writable_probe (id, checked_at) VALUES (1, now()) "
    "ON CONFLICT (id) DO UPDATE SET checked_at = EXCLUDED.checked_at"
)


def _run_params(run: RunRecord) -> list[Any]:
    return values(run, RUN_FIELDS, encode)


async def _replace_steps(conn: Conn, run: RunRecord) -> None:
    await conn.execute("DELETE FROM steps WHERE run_id = %s", (encode(run.run_id),))
    rows = [
        [encode(run.run_id), position, *values(step, STEP_FIELDS, encode)]
        for position, step in enumerate(run.steps)
    ]
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(STEP_INSERT, rows)


class StepWrite(NamedTuple):
    """One `save_steps` call (or, `replace` set, one `save_run`: the run's other stored steps
    are deleted): the run, the ids of the steps to write, its audit events."""

    run: RunRecord
    step_ids: frozenset[str]
    audit: Sequence[AuditEvent]
    replace: bool = False


def step_write(run: RunRecord, step_ids: Collection[str], audit: Sequence[AuditEvent]) -> StepWrite:
    """A checked `StepWrite` (ValueError for a step id the run does not have)."""
    wanted = frozenset(step_ids)
    unknown = wanted - {step.step_id for step in run.steps}
    if unknown:
        raise ValueError(f"run {run.run_id} has no step {', '.join(sorted(unknown))}")
    return StepWrite(run, wanted, tuple(audit))


async def upsert_steps(conn: Conn, writes: Sequence[StepWrite]) -> None:
    """Insert or update the runs' rows and only the named steps (a replaced run's other steps
    deleted), append the audit events: one statement per round of distinct runs, usually
    one in all (a run written twice in one batch goes in a later round, after its first
    write; several rounds share one transaction)."""
    rounds: list[list[StepWrite]] = []
    for write in writes:
        for round_ in rounds:
            if all(w.run.run_id != write.run.run_id for w in round_):
                round_.append(write)
                break
        else:
            rounds.append([write])
    if len(rounds) == 1:
        await conn.execute(STEPS_UPSERT, _round_params(rounds[0]))
        return
    async with conn.pipeline(), conn.transaction():
        for round_ in rounds:
            await conn.execute(STEPS_UPSERT, _round_params(round_))


def _round_params(writes: Sequence[StepWrite]) -> dict[str, Any]:
    """The array parameters of STEPS_UPSERT for `writes` (distinct runs)."""
    runs = [values(w.run, RUN_FIELDS, encode) for w in writes]
    steps = [
        [encode(w.run.run_id), position, *values(step, STEP_FIELDS, encode)]
        for w in writes
        for position, step in enumerate(w.run.steps)
        if step.step_id in w.step_ids
    ]
    audit = [values(event, AUDIT_FIELDS, encode) for w in writes for event in w.audit]
    params: dict[str, Any] = {"replaced": [encode(w.run.run_id) for w in writes if w.replace]}
    for prefix, rows, width in (
        ("r", runs, len(RUN_FIELDS)),
        ("s", steps, len(STEP_COLUMNS)),
        ("a", audit, len(AUDIT_FIELDS)),
    ):
        for i in range(width):
            params[f"{prefix}{i}"] = [row[i] for row in rows]
    return params


async def _insert_audit(conn: Conn, events: Sequence[AuditEvent]) -> None:
    """One multi-row INSERT per `AUDIT_ROWS_PER_STATEMENT` events, rows (and so ids) in order.

    Not `executemany`: a statement per event cost about 0.3 ms of CPU each, and an alert
    storm's duplicates append one `run_skipped` event apiece."""
    for start in range(0, len(events), AUDIT_ROWS_PER_STATEMENT):
        chunk = events[start : start + AUDIT_ROWS_PER_STATEMENT]
        params = [value for event in chunk for value in values(event, AUDIT_FIELDS, encode)]
        await conn.execute(_audit_insert(len(chunk)), params)


@functools.lru_cache(maxsize=32)
def _audit_insert(rows: int) -> str:
    """The audit INSERT with `rows` rows of placeholders."""
    rows_sql = ", ".join([f"({marks(AUDIT_FIELDS)})"] * rows)
    return f"INSERT INTO audit_events ({', '.join(AUDIT_FIELDS)}) VALUES {rows_sql}"  # noqa: S608


async def replace_run_if(conn: Conn, run: RunRecord, expected: RunState) -> bool:
    """Compare-and-set on the stored state; the row lock serialises concurrent callers."""
    params = _run_params(run)
    async with conn.transaction():
        cur = await conn.execute(RUN_CAS, [*params[1:], params[0], encode(expected)])
        if cur.rowcount != 1:
            return False
        await _replace_steps(conn, run)
    return True


_STEP_OBJECT = ", ".join(f"'{c}', s.{c}" for c in STEP_FIELDS)
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
            f"SELECT {select_list(RUN_FIELDS)}, {_STEPS_JSON} FROM runs "  # noqa: S608
            f"{where_clause} {order} {limit_clause}",
            [*params, *([limit] if limit is not None else [])],
        )
        rows = await cur.fetchall()
    return [
        RunRecord.model_validate(
            {**decode(r, ("steps",)), "steps": _STEPS.validate_json(r["steps"])}
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
            f"SELECT {select_list(AUDIT_FIELDS)} FROM audit_events "  # noqa: S608
            "WHERE run_id = %s ORDER BY at, id",
            (encode(run_id),),
        )
        return [AuditEvent.model_validate(decode(row)) for row in await cur.fetchall()]


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
