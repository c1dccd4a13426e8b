"""The approvals table of the PostgreSQL store: its SQL, the mapping to `Approval`, and the
store's approval methods (`ApprovalsOnPostgres`, which `PostgresStore` inherits).

Each function takes an open autocommit connection and runs one statement (so one implicit
transaction). Times are timestamptz and read back aware UTC; `approvers` and `params` are
`json`, written as pydantic JSON text and read back `::text` with the codecs of
`sqlite_approvals`, so both stores decode them the same way. Scalar text goes through
`postgres_queries.encode` (a NUL, which PostgreSQL text cannot hold, becomes U+FFFD).

Compare-and-set is one `UPDATE ... WHERE approval_id = %s AND state = %s`: of concurrent
deciders, the row lock lets one update; the others re-check the state after it commits and
find no row, so exactly one decision wins.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from psycopg.rows import dict_row

from responder.adapters.postgres_queries import Conn, encode, where
from responder.adapters.sqlite_approvals import FIELDS, JSON_FIELDS, from_json, json_value
from responder.models.approvals import Approval, ApprovalState
from responder.ports import check_limit

_MARKS = ", ".join("%s::json" if f in JSON_FIELDS else "%s" for f in FIELDS)
_SELECT = ", ".join(f"{f}::text AS {f}" if f in JSON_FIELDS else f for f in FIELDS)
UPSERT = (
    f"INSERT INTO approvals ({', '.join(FIELDS)}) VALUES ({_MARKS}) "  # noqa: S608
    "ON CONFLICT (approval_id) DO UPDATE SET "
    + ", ".join(f"{f} = EXCLUDED.{f}" for f in FIELDS[1:])
)
CAS = (
    "UPDATE approvals SET "  # noqa: S608 - column names are constants, values are bound
    + ", ".join(f"{f} = %s::json" if f in JSON_FIELDS else f"{f} = %s" for f in FIELDS[1:])
    + " WHERE approval_id = %s AND state = %s"
)
NEWEST_FIRST = "ORDER BY requested_at DESC, approval_id DESC"
EXPIRED_FILTER = "WHERE state = 'pending' AND expires_at <= %s"
EXPIRY_ORDER = "ORDER BY expires_at, approval_id"
T = TypeVar("T")


def approval_params(approval: Approval) -> list[Any]:
    """Parameters for UPSERT, in FIELDS order; refuses naive datetimes (ValueError)."""
    return [
        json_value(f, getattr(approval, f)) if f in JSON_FIELDS else encode(getattr(approval, f))
        for f in FIELDS
    ]


def _approval(row: dict[str, Any]) -> Approval:
    fields: dict[str, Any] = {}
    for field, value in row.items():
        if field in JSON_FIELDS:
            value = from_json(field, value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC)
        fields[field] = value
    return Approval.model_validate(fields)


def list_filter(state: ApprovalState | None, run_id: str | None) -> tuple[str, list[Any]]:
    """WHERE clause and parameters for `list_approvals`."""
    return where(("state = %s", state), ("run_id = %s", run_id))


async def upsert(conn: Conn, params: Sequence[Any]) -> None:
    """Insert `approval_params`, or replace the stored approval with the same id."""
    await conn.execute(UPSERT, params)


async def replace_if(conn: Conn, params: Sequence[Any], expected: ApprovalState) -> bool:
    """Update to `params` only if the stored approval is in state `expected`."""
    cur = await conn.execute(CAS, [*params[1:], params[0], encode(expected)])
    return cur.rowcount == 1


async def select(
    conn: Conn, where_clause: str, params: Sequence[Any], *, order: str, limit: int
) -> list[Approval]:
    """Approvals matching `where_clause`, in `order` (constant clauses; values are bound)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_SELECT} FROM approvals {where_clause} {order} LIMIT %s",  # noqa: S608
            [*params, limit],
        )
        return [_approval(row) for row in await cur.fetchall()]


class ApprovalsOnPostgres(abc.ABC):
    """The approval methods of the `Store` port, for `PostgresStore` (which provides `_run`:
    a connection from its pool, under its timeout, errors made StoreUnavailableError)."""

    @abc.abstractmethod
    async def _run(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `work` on a pooled connection."""

    async def save_approval(self, approval: Approval) -> None:
        """Insert an approval request, or replace the stored one with the same id."""
        params = approval_params(approval)  # refuse a naive time before any IO
        await self._run(lambda conn: upsert(conn, params))

    async def get_approval(self, approval_id: str) -> Approval | None:
        """One approval request, or None."""
        params = [encode(approval_id)]
        found = await self._approvals("WHERE approval_id = %s", params, "", 1)
        return found[0] if found else None

    async def replace_approval_if(self, approval: Approval, expected: ApprovalState) -> bool:
        """Save `approval` only if the stored one is in state `expected` (never creates one).

        One conditional UPDATE: the row lock lets exactly one of concurrent deciders win.
        """
        params = approval_params(approval)
        return await self._run(lambda conn: replace_if(conn, params, expected))

    async def list_approvals(
        self, state: ApprovalState | None = None, *, run_id: str | None = None, limit: int = 100
    ) -> list[Approval]:
        """Approvals filtered by state and/or run, newest `requested_at` first (ties by id)."""
        check_limit(limit)
        where, params = list_filter(state, run_id)
        return await self._approvals(where, params, NEWEST_FIRST, limit)

    async def expired_approvals(self, now: datetime, limit: int) -> list[Approval]:
        """Pending approvals whose `expires_at` is at or before `now`, oldest expiry first."""
        check_limit(limit)
        params = [encode(now)]
        return await self._approvals(EXPIRED_FILTER, params, EXPIRY_ORDER, limit)

    async def _approvals(
        self, where: str, params: Sequence[Any], order: str, limit: int
    ) -> list[Approval]:
        return await self._run(lambda conn: select(conn, where, params, order=order, limit=limit))
