"""The Store on PostgreSQL (`RESPONDER_DATABASE_URL=postgresql://...`): psycopg 3 and a pool.

`await PostgresStore.open(dsn, timeout_seconds=..., pool_max=..., migrate=...)` migrates if
asked, refuses a database whose schema is not this code's (`migrating`), and opens the pool as
`connections` describes: its connections checked with a round trip only when they may be
broken.

Every call takes a connection from the pool and runs under `asyncio.timeout(timeout_seconds)`
(waiting for a free connection included); the server also cancels statements and lock waits
after the same time. Any psycopg or pool error, or the timeout, becomes StoreUnavailableError
saying what to check, never with the password. Each call is its own transaction: one statement
where possible, an explicit transaction where it writes more (runs with their steps,
compare-and-set, pruning). Concurrency comes from the pool, except for the calls made for
every alert, which join concurrent calls into one statement (`batching`):
`record_delivery` (the alerts of every delivery waiting meanwhile, in one INSERT ...
RETURNING; at most `batch_max` deliveries and `ALERTS_PER_STATEMENT` alerts),
`mark_alert_processed` (one UPDATE) and `append_audit` (one multi-row INSERT; a storm's
duplicates each append a `run_skipped` event). Under load this is one round trip, one commit
and one statement's client-side work for many calls, where it was one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from responder.adapters.connecting.postgres import describe
from responder.adapters.store import filters
from responder.adapters.store.postgres import approvals, batching, connections, migrating, queries
from responder.adapters.store.postgres.queries import DIALECT, DeliveryRows
from responder.errors import StoreUnavailableError
from responder.models.alerts import Alert, Delivery, Source
from responder.models.approvals import Approval, ApprovalState
from responder.models.runs import AuditEvent, RunQuery, RunRecord, RunState, StoredAlert
from responder.ports.store import check_limit

T = TypeVar("T")
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
ALERTS_PER_STATEMENT = 2_000  # a bigger delivery is still written alone, in one statement


class PostgresStore:
    """`Store` on a PostgreSQL database; build it with `await PostgresStore.open(...)`."""

    def __init__(
        self,
        pool: AsyncConnectionPool[connections.Conn],
        dsn: str,
        *,
        timeout_seconds: float,
        batch_max: int = 256,
        checker: connections.ConnectionCheck | None = None,
    ) -> None:
        self._pool = pool
        self._checker = checker
        self._dsn = dsn
        self._timeout = timeout_seconds
        self._closed = False
        self._deliveries: batching.Batcher[DeliveryRows, list[int]] = batching.Batcher(
            self._insert_deliveries,
            name="responder-pg-deliveries",
            batch_max=batch_max,
            fails_alone=_data_problem,
            weight=lambda rows: len(rows.delivery.alerts),
            weight_max=ALERTS_PER_STATEMENT,
            timeout=timeout_seconds,
        )
        self._marks: batching.Batcher[tuple[int, datetime], None] = batching.Batcher(
            self._write_marks,
            name="responder-pg-marks",
            batch_max=batch_max,
            fails_alone=_data_problem,
            timeout=timeout_seconds,
        )
        self._steps: batching.Batcher[queries.StepWrite, None] = batching.Batcher(
            self._write_steps,
            name="responder-pg-steps",
            batch_max=batch_max,
            fails_alone=_data_problem,
            timeout=timeout_seconds,
        )
        self._audits: batching.Batcher[list[AuditEvent], None] = batching.Batcher(
            self._append_audits,
            name="responder-pg-audit",
            batch_max=batch_max,
            fails_alone=_data_problem,
            weight=len,
            weight_max=queries.AUDIT_ROWS_PER_STATEMENT,
            timeout=timeout_seconds,
        )

    @property
    def statements(self) -> int:
        """Delivery, processed-mark, step and audit writes started so far (for tests)."""
        batchers = (self._deliveries, self._marks, self._steps, self._audits)
        return sum(batcher.statements for batcher in batchers)

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        timeout_seconds: float,
        pool_min: int = 1,
        pool_max: int = 10,
        batch_max: int = 256,
        migrate: bool = False,
    ) -> PostgresStore:
        """Migrate if asked, check the schema version, open the pool; StoreUnavailableError
        saying what to check (never with the password)."""
        if timeout_seconds <= 0 or pool_min < 1 or pool_max < pool_min or batch_max < 1:
            raise ValueError(
                "timeout_seconds must be > 0, 1 <= pool_min <= pool_max and batch_max >= 1"
            )
        if migrate:
            await migrating.migrate(dsn, timeout_seconds=timeout_seconds)
        await migrating.check_schema(dsn, timeout_seconds)
        pool, checker = await connections.open_pool(
            dsn, timeout_seconds=timeout_seconds, pool_min=pool_min, pool_max=pool_max
        )
        return cls(pool, dsn, timeout_seconds=timeout_seconds, batch_max=batch_max, checker=checker)

    async def close(self) -> None:
        """Close the pool and its connections (in-flight calls finish first). Idempotent."""
        if self._closed:
            return
        with contextlib.suppress(TimeoutError):  # let queued writes commit first
            async with asyncio.timeout(self._timeout):
                await self._deliveries.idle()
                await self._marks.idle()
                await self._steps.idle()
                await self._audits.idle()
        self._closed = True
        await self._pool.close(timeout=self._timeout)

    async def _run(self, work: Callable[[connections.Conn], Awaitable[T]]) -> T:
        if self._closed:
            raise connections.unavailable(self._dsn, "the store is closed (shutting down?)")
        try:
            async with asyncio.timeout(self._timeout), self._pool.connection() as conn:
                try:
                    return await work(conn)
                finally:
                    if self._checker is not None:
                        self._checker.used(conn)
        except TimeoutError as exc:
            cause = f"no answer within {self._timeout}s"
            raise connections.unavailable(self._dsn, cause) from exc
        except connections.ERRORS as exc:
            raise connections.unavailable(self._dsn, exc) from exc

    # -- the Store port ---------------------------------------------------------------------

    async def record_delivery(
        self, delivery: Delivery, received_at: datetime, *, settled: Sequence[bool] = ()
    ) -> list[StoredAlert]:
        """Write every alert of a delivery in one statement (one commit, shared with the
        deliveries written concurrently); in delivery order."""
        queries.encode(received_at)  # refuse a naive time before any IO
        done = [i < len(settled) and settled[i] for i in range(len(delivery.alerts))]
        rows = DeliveryRows(delivery, received_at, done)
        ids = await self._batched(self._deliveries, rows)
        return StoredAlert.from_delivery(delivery, ids, received_at.astimezone(UTC))

    async def _insert_deliveries(self, batch: list[DeliveryRows]) -> list[list[int]]:
        return await self._run(lambda conn: queries.insert_alerts(conn, batch))

    async def _batched(self, batcher: batching.Batcher[ItemT, ResultT], item: ItemT) -> ResultT:
        """`batcher.submit(item)` within the store's timeout (a caller that gives up before
        its batch starts is left out of it)."""
        if self._closed:
            raise connections.unavailable(self._dsn, "the store is closed (shutting down?)")
        try:
            return await batcher.submit(item)  # the batcher enforces the timeout
        except TimeoutError as exc:
            cause = f"no answer within {self._timeout}s"
            raise connections.unavailable(self._dsn, cause) from exc

    async def unprocessed_alerts(self, limit: int) -> list[StoredAlert]:
        """Alerts not yet marked processed, oldest (lowest id) first."""
        check_limit(limit)
        where = "WHERE processed_at IS NULL ORDER BY id LIMIT %s"
        return await self._run(lambda conn: queries.select_alerts(conn, where, [limit]))

    async def mark_alert_processed(self, alert_id: int, at: datetime) -> None:
        """Mark an alert processed; the first time is kept, unknown ids are ignored.

        Every worker calls this once per alert. Calls made while another call's UPDATE is in
        flight are queued and then written together by ONE UPDATE (one round trip, one
        commit), so N busy workers cost about one statement per N alerts instead of one
        each. No call returns before the statement holding its alert has committed; each
        waits at most `timeout_seconds`, then raises StoreUnavailableError.
        """
        queries.encode(at)  # refuse a naive time before any IO
        await self._batched(self._marks, (alert_id, at))

    async def _write_marks(self, batch: list[tuple[int, datetime]]) -> list[None]:
        first: dict[int, datetime] = {}
        for alert_id, at in batch:
            first.setdefault(alert_id, at)  # the earlier call wins, as one by one
        params = (list(first), [queries.encode(at) for at in first.values()])
        await self._run(functools.partial(queries.mark_processed, params=params))
        return [None] * len(batch)

    async def get_alert(self, alert_id: int) -> StoredAlert | None:
        """One stored alert by id, or None."""
        found = await self._run(
            lambda conn: queries.select_alerts(conn, "WHERE id = %s", [alert_id])
        )
        return found[0] if found else None

    async def save_run(self, run: RunRecord, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert or replace a run (its steps are replaced by `run.steps`) and append `audit`,
        in one transaction, shared with the `save_run` and `save_steps` calls made meanwhile
        (see `save_steps`)."""
        write = queries.StepWrite(run, frozenset(s.step_id for s in run.steps), tuple(audit), True)
        await self._batched(self._steps, write)

    async def save_steps(
        self, run: RunRecord, step_ids: Collection[str], audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert or update the run's row and only its steps `step_ids`, append `audit`, in one
        transaction. Calls made while another's write is in flight are written together by
        the next one: one statement for their runs, one for their steps, one for their
        audit events, one commit; a batch refused for its data is redone call by call."""
        await self._batched(self._steps, queries.step_write(run, step_ids, audit))

    async def _write_steps(self, batch: list[queries.StepWrite]) -> list[None]:
        await self._run(lambda conn: queries.upsert_steps(conn, batch))
        return [None] * len(batch)

    async def replace_run_if(self, run: RunRecord, expected: RunState) -> bool:
        """Save `run` only if the stored run is still in state `expected` (never creates one).

        `UPDATE ... WHERE run_id = %s AND state = %s`: of concurrent callers expecting the same
        state, the row lock lets one update and the others re-check the state and find 0 rows.
        """
        return await self._run(lambda conn: queries.replace_run_if(conn, run, expected))

    async def due_runs(self, now: datetime, limit: int) -> list[RunRecord]:
        """Pending runs whose `not_before` is at or before `now`, earliest first."""
        check_limit(limit)
        where, params = filters.due_runs_filter(DIALECT, now)
        return await self._runs(where, params, filters.RUNS_DUE_FIRST, limit)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """One run with its steps, or None."""
        where, params = DIALECT.where(("run_id = ?", run_id))
        runs = await self._runs(where, params, "", 1)
        return runs[0] if runs else None

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Newest first by (created_at, run_id); `before` pages to strictly older runs.

        An unknown `before` run id yields an empty page.
        """
        where, params = filters.runs_filter(DIALECT, query)
        return await self._runs(where, params, filters.RUNS_NEWEST_FIRST, query.limit)

    async def has_run(self, rule_id: str, alert: Alert) -> bool:
        """Whether a run of `rule_id` exists for this occurrence of `alert` (indexed)."""
        keys = (alert.source, alert.fingerprint, rule_id, alert.identity)
        params = [queries.encode(v) for v in keys]
        return await self._run(lambda conn: queries.run_exists(conn, params))

    async def open_runs(
        self, source: Source | None = None, fingerprint: str | None = None
    ) -> list[RunRecord]:
        """Runs not in a terminal state (optionally of one alert), oldest first."""
        where, params = filters.open_runs_filter(DIALECT, source, fingerprint)
        return await self._runs(where, params, filters.RUNS_OLDEST_FIRST, None)

    async def _runs(
        self, where: str, params: Sequence[Any], order: str, limit: int | None
    ) -> list[RunRecord]:
        return await self._run(
            lambda conn: queries.select_runs(conn, where, params, order=order, limit=limit)
        )

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append audit events in order, all or none (the table refuses UPDATE and DELETE).

        Appends made while another is in flight are written together by the next statement
        (a storm's duplicates each append a `run_skipped` event); a batch the database
        refuses for its data is redone append by append, so each stays all or none.
        """
        if events:
            await self._batched(self._audits, list(events))

    async def _append_audits(self, batch: list[list[AuditEvent]]) -> list[None]:
        events = [event for appended in batch for event in appended]
        await self._run(lambda conn: queries.append_audit(conn, events))
        return [None] * len(batch)

    async def audit_for_run(self, run_id: str) -> list[AuditEvent]:
        """The audit trail of one run, oldest first (ties in insertion order)."""
        return await self._run(lambda conn: queries.select_audit(conn, run_id))

    async def prune_audit(self, older_than: datetime, actor: str) -> int:
        """Delete audit events older than `older_than` and append `audit_pruned` (one
        transaction, the only one allowed to delete audit rows); the number deleted."""
        queries.encode(older_than)  # refuse a naive time before any IO
        now = datetime.now(UTC)
        try:
            return await self._run(lambda conn: queries.prune_audit(conn, older_than, actor, now))
        except StoreUnavailableError as exc:
            if isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
                raise StoreUnavailableError(
                    f"{describe(self._dsn)}: this role may not delete audit events (the runtime "
                    "role of serve never may); run `responder audit prune` as the role that owns "
                    "the tables, the one `responder migrate` runs as (docs/deployment.md)"
                ) from exc
            raise

    async def save_approval(self, approval: Approval) -> None:
        """Insert an approval request, or replace the stored one with the same id."""
        params = approvals.approval_params(approval)  # refuse a naive time before any IO
        await self._run(lambda conn: approvals.upsert(conn, params))

    async def get_approval(self, approval_id: str) -> Approval | None:
        """One approval request, or None."""
        where, params = DIALECT.where(("approval_id = ?", approval_id))
        found = await self._approvals(where, params, "", 1)
        return found[0] if found else None

    async def replace_approval_if(self, approval: Approval, expected: ApprovalState) -> bool:
        """Save `approval` only if the stored one is in state `expected` (never creates one).

        One conditional UPDATE: the row lock lets exactly one of concurrent deciders win.
        """
        params = approvals.approval_params(approval)
        return await self._run(lambda conn: approvals.replace_if(conn, params, expected))

    async def list_approvals(
        self, state: ApprovalState | None = None, *, run_id: str | None = None, limit: int = 100
    ) -> list[Approval]:
        """Approvals filtered by state and/or run, newest `requested_at` first (ties by id)."""
        check_limit(limit)
        where, params = filters.approvals_filter(DIALECT, state, run_id)
        return await self._approvals(where, params, filters.APPROVALS_NEWEST_FIRST, limit)

    async def expired_approvals(self, now: datetime, limit: int) -> list[Approval]:
        """Pending approvals whose `expires_at` is at or before `now`, oldest expiry first."""
        check_limit(limit)
        where, params = filters.expired_approvals_filter(DIALECT, now)
        return await self._approvals(where, params, filters.APPROVALS_EXPIRING_FIRST, limit)

    async def _approvals(
        self, where: str, params: Sequence[Any], order: str, limit: int
    ) -> list[Approval]:
        return await self._run(
            lambda conn: approvals.select(conn, where, params, order=order, limit=limit)
        )

    async def check_writable(self) -> None:
        """Upsert the probe row: fails on a read-only replica, a full disk, a lost server."""

        async def probe(conn: connections.Conn) -> None:
            await conn.execute(queries.PROBE_UPSERT)

        await self._run(probe)


def _data_problem(error: Exception) -> bool:
    """Whether a failed batch may have failed for one of its items (redo each alone), not
    for the connection, the pool or the timeout (fail them all at once)."""
    if isinstance(error, StoreUnavailableError):
        cause = error.__cause__
        return isinstance(cause, psycopg.DatabaseError) and not isinstance(
            cause, psycopg.OperationalError
        )
    return True  # raised before the statement left (a value the driver cannot send)
