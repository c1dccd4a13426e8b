"""The approvals table of the SQLite store: its SQL and the mapping between rows and `Approval`.

Functions that take a connection run on the writer thread, inside the transaction it opened
(`sqlite_writer`). Times are fixed-width ISO-8601 UTC text (`sqlite_schema.to_text`), so text
order is time order; `approvers` and `params` are JSON text in `<field>_json` columns. FIELDS
and the JSON codecs are shared with `postgres_approvals`, so both stores map alike.

Compare-and-set is one `UPDATE ... WHERE approval_id = ? AND state = ?` inside the writer's
`BEGIN IMMEDIATE`, which holds the file's write lock: of concurrent deciders, in this process
or another, exactly one finds the expected state.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import TypeAdapter

from responder.adapters.sqlite_schema import from_text, to_text
from responder.models.approvals import Approval, ApprovalState

# fmt: off
FIELDS = ("approval_id", "run_id", "step_id", "rule_id", "state", "reason", "requested_at",
          "expires_at", "approvers", "action", "params", "decided_by", "decided_at", "comment",
          "source_ip")
# fmt: on
JSON_FIELDS = frozenset(("approvers", "params"))
APPROVERS = TypeAdapter(tuple[str, ...])
PARAMS = TypeAdapter(dict[str, Any])
_TIMES = frozenset(("requested_at", "expires_at", "decided_at"))
_COLUMNS = tuple(f"{f}_json" if f in JSON_FIELDS else f for f in FIELDS)

UPSERT = (
    f"INSERT INTO approvals ({', '.join(_COLUMNS)}) "  # noqa: S608 - constant column names
    f"VALUES ({', '.join('?' * len(_COLUMNS))}) ON CONFLICT (approval_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
)
CAS = (
    "UPDATE approvals SET "  # noqa: S608 - column names are constants, values are bound
    + ", ".join(f"{c} = ?" for c in _COLUMNS[1:])
    + " WHERE approval_id = ? AND state = ?"
)
NEWEST_FIRST = "ORDER BY requested_at DESC, approval_id DESC"
EXPIRED_FILTER = "WHERE state = 'pending' AND expires_at <= ?"
EXPIRY_ORDER = "ORDER BY expires_at, approval_id"


def json_value(field: str, value: Any) -> str | None:
    """The JSON text of `approvers` or `params` (None stays NULL)."""
    if value is None:
        return None
    adapter: TypeAdapter[Any] = APPROVERS if field == "approvers" else PARAMS
    return adapter.dump_json(value).decode()


def from_json(field: str, text: str | None) -> Any:
    """`approvers` or `params` read back from JSON text (NULL stays None)."""
    if text is None:
        return None
    adapter: TypeAdapter[Any] = APPROVERS if field == "approvers" else PARAMS
    return adapter.validate_json(text)


def approval_row(approval: Approval) -> tuple[Any, ...]:
    """Parameters for UPSERT, in FIELDS order; refuses naive datetimes (ValueError)."""
    return tuple(_encode(f, getattr(approval, f)) for f in FIELDS)


def _encode(field: str, value: Any) -> Any:
    if field in JSON_FIELDS:
        return json_value(field, value)
    if isinstance(value, datetime):
        return to_text(value)
    if isinstance(value, Enum):
        return value.value
    return value


def approval(row: sqlite3.Row) -> Approval:
    """An Approval from an `approvals` row; times come back timezone-aware UTC."""
    fields: dict[str, Any] = {}
    for field, column in zip(FIELDS, _COLUMNS, strict=True):
        value = row[column]
        if field in JSON_FIELDS:
            value = from_json(field, value)
        elif field in _TIMES and value is not None:
            value = from_text(value)
        fields[field] = value
    return Approval.model_validate(fields)


def list_filter(state: ApprovalState | None, run_id: str | None) -> tuple[str, list[Any]]:
    """WHERE clause and parameters for `list_approvals`."""
    used = [(c, v) for c, v in (("state = ?", state), ("run_id = ?", run_id)) if v is not None]
    where = " AND ".join(clause for clause, _ in used)
    params = [v.value if isinstance(v, Enum) else v for _, v in used]
    return (f"WHERE {where}" if where else ""), params


def upsert(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    """Insert an `approval_row`, or replace the stored approval with the same id."""
    conn.execute(UPSERT, row)


def replace_if(conn: sqlite3.Connection, row: tuple[Any, ...], expected: str) -> bool:
    """Update to `row` only if the stored approval is in state `expected`; True when updated."""
    return conn.execute(CAS, (*row[1:], row[0], expected)).rowcount == 1


def select(
    conn: sqlite3.Connection, where: str, params: list[Any], *, order: str, limit: int
) -> list[Approval]:
    """Approvals matching `where`, in `order` (constant clauses; values are bound)."""
    sql = f"SELECT * FROM approvals {where} {order} LIMIT ?"  # noqa: S608 - values are bound
    return [approval(row) for row in conn.execute(sql, [*params, limit])]
