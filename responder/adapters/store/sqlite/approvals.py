"""The approvals table of the SQLite store: its SQL, run on the writer thread.

Functions that take a connection run on the writer thread, inside the transaction it opened
(`writer`). Rows are mapped as the other tables' are (`queries.encode`, `queries.decode`):
times are fixed-width ISO-8601 UTC text, so text order is time order; `approvers` and
`params` are JSON text in `<field>_json` columns, with the codecs both stores share.

Compare-and-set is one `UPDATE ... WHERE approval_id = ? AND state = ?` inside the writer's
`BEGIN IMMEDIATE`, which holds the file's write lock: of concurrent deciders, in this process
or another, exactly one finds the expected state.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from responder.adapters.store.codecs import APPROVAL_FIELDS, values
from responder.adapters.store.sqlite.queries import cas_sql, decode, encode, upsert_sql
from responder.models.approvals import Approval

UPSERT = upsert_sql("approvals", APPROVAL_FIELDS)
CAS = cas_sql("approvals", APPROVAL_FIELDS)


def approval_row(approval: Approval) -> tuple[Any, ...]:
    """Parameters for UPSERT, in field order; refuses naive datetimes (ValueError)."""
    return tuple(values(approval, APPROVAL_FIELDS, encode))


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
    return [Approval.model_validate(decode(row)) for row in conn.execute(sql, [*params, limit])]
