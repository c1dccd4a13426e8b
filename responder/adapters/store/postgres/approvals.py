"""The approvals table of the PostgreSQL store: its SQL.

Each function takes an open autocommit connection and runs one statement (so one implicit
transaction). Rows are mapped as the other tables' are (`queries.encode`, `queries.decode`):
times are timestamptz and read back aware UTC; `approvers` and `params` are `json`, written as
pydantic JSON text and read back `::text` with the codecs both stores share. Scalar text has a
NUL, which PostgreSQL text cannot hold, replaced by U+FFFD.

Compare-and-set is one `UPDATE ... WHERE approval_id = %s AND state = %s`: of concurrent
deciders, the row lock lets one update; the others re-check the state after it commits and
find no row, so exactly one decision wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row

from responder.adapters.store.codecs import APPROVAL_FIELDS, values
from responder.adapters.store.postgres.connections import Conn
from responder.adapters.store.postgres.queries import (
    cas_sql,
    decode,
    encode,
    select_list,
    upsert_sql,
)
from responder.models.approvals import Approval, ApprovalState

UPSERT = upsert_sql("approvals", APPROVAL_FIELDS)
CAS = cas_sql("approvals", APPROVAL_FIELDS)


def approval_params(approval: Approval) -> list[Any]:
    """Parameters for UPSERT, in field order; refuses naive datetimes (ValueError)."""
    return values(approval, APPROVAL_FIELDS, encode)


async def upsert(conn: Conn, params: Sequence[Any]) -> None:
    """Insert `approval_params`, or replace the stored approval with the same id."""
    await conn.execute(UPSERT, params)


async def replace_if(conn: Conn, params: Sequence[Any], expected: ApprovalState) -> bool:
    """Update to `params` only if the stored approval is in state `expected`."""
    cur = await conn.execute(CAS, [*params[1:], params[0], encode(expected)])
    return cur.rowcount == 1


async def select(
    conn: Conn, where: str, params: Sequence[Any], *, order: str, limit: int
) -> list[Approval]:
    """Approvals matching `where`, in `order` (constant clauses; values are bound)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {select_list(APPROVAL_FIELDS)} FROM approvals "  # noqa: S608
            f"{where} {order} LIMIT %s",
            [*params, limit],
        )
        return [Approval.model_validate(decode(row)) for row in await cur.fetchall()]
