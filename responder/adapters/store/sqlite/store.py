"""The embedded-default Store: one SQLite file in WAL mode, served by one dedicated thread.

The thread, its batching (concurrent writes share one transaction and one fsync) and the
timeouts are in `writer`; the tables and migrations in `schema`; the SQL in `queries`
(approvals: `approvals`), the filters in `store.filters`. This module maps the Store port onto
them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from responder.adapters.store import filters
from responder.adapters.store.sqlite import approvals, queries
from responder.adapters.store.sqlite.queries import DIALECT
from responder.adapters.store.sqlite.schema import from_text, to_text
from responder.adapters.store.sqlite.writer import THREAD_NAME, SqliteWriter
from responder.models.alerts import Alert, Delivery, Source
from responder.models.approvals import Approval, ApprovalState
from responder.models.runs import AuditEvent, RunQuery, RunRecord, RunState, StoredAlert
from responder.ports.store import check_limit

__all__ = ["THREAD_NAME", "SqliteStore"]


class SqliteStore:
    """`Store` on one SQLite file; build it with `await SqliteStore.open(...)`."""

    def __init__(self, path: Path, *, timeout_seconds: float, batch_max: int) -> None:
        self.path = path
        self._writer = SqliteWriter(path, timeout_seconds=timeout_seconds, batch_max=batch_max)
        self._call = self._writer.call

    @property
    def commits(self) -> int:
        """Write transactions committed so far (for tests and metrics)."""
        return self._writer.commits

    @classmethod
    async def open(cls, path: Path, *, timeout_seconds: float, batch_max: int) -> SqliteStore:
        """Create the file and its directory if needed, migrate it, start the thread."""
        store = cls(path, timeout_seconds=timeout_seconds, batch_max=batch_max)
        await store._writer.start()
        return store

    async def close(self) -> None:
        """Flush queued writes, stop the thread, close the connection. Idempotent."""
        await self._writer.close()

    async def record_delivery(
        self, delivery: Delivery, received_at: datetime, *, settled: Sequence[bool] = ()
    ) -> list[StoredAlert]:
        """Durably write every alert of a delivery; the commit is shared with concurrent calls."""
        at = to_text(received_at)
        done = [i < len(settled) and settled[i] for i in range(len(delivery.alerts))]
        rows = [
            queries.alert_row(delivery.delivery_id, a, at, processed_at=at if d else None)
            for a, d in zip(delivery.alerts, done, strict=True)
        ]
        ids = await self._call(partial(queries.insert_alerts, rows=rows), write=True)
        return StoredAlert.from_delivery(delivery, ids, from_text(at))

    async def unprocessed_alerts(self, limit: int) -> list[StoredAlert]:
        """Alerts not yet marked processed, oldest (lowest id) first."""
        check_limit(limit)
        return await self._call(partial(queries.select_unprocessed, limit=limit), write=False)

    async def mark_alert_processed(self, alert_id: int, at: datetime) -> None:
        """Mark an alert processed; the first time is kept, unknown ids are ignored."""
        rows = [(to_text(at), alert_id)]
        await self._call(partial(_execute, queries.MARK_PROCESSED, rows), write=True)

    async def get_alert(self, alert_id: int) -> StoredAlert | None:
        """One stored alert by id, or None."""
        return await self._call(partial(queries.select_alert, alert_id=alert_id), write=False)

    async def save_run(self, run: RunRecord, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert or replace a run (its steps are replaced by `run.steps`) and append `audit`,
        in one transaction."""
        row, steps = queries.run_row(run), queries.step_rows(run)
        events = [queries.audit_row(e) for e in audit]
        save = partial(queries.upsert_run, row=row, steps=steps, audit=events)
        await self._call(save, write=True)

    async def save_steps(
        self, run: RunRecord, step_ids: Collection[str], audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert or update the run's row and only its steps `step_ids`, append `audit`, in
        one transaction (the writer commits concurrent callers' writes together)."""
        row, steps = queries.run_row(run), queries.step_rows(run, frozenset(step_ids))
        events = [queries.audit_row(e) for e in audit]
        save = partial(queries.upsert_steps, row=row, steps=steps, audit=events)
        await self._call(save, write=True)

    async def replace_run_if(self, run: RunRecord, expected: RunState) -> bool:
        """Save `run` only if the stored run is still in state `expected` (never creates one)."""
        row, steps = queries.run_row(run), queries.step_rows(run)
        cas = partial(queries.replace_run_if, row=row, steps=steps, expected=expected.value)
        return await self._call(cas, write=True)

    async def due_runs(self, now: datetime, limit: int) -> list[RunRecord]:
        """Pending runs whose `not_before` is at or before `now`, earliest first."""
        check_limit(limit)
        where, params = filters.due_runs_filter(DIALECT, now)
        return await self._runs(where, params, order=filters.RUNS_DUE_FIRST, limit=limit)

    async def get_run(self, run_id: str) -> RunRecord | None:
        """One run with its steps, or None."""
        where, params = DIALECT.where(("run_id = ?", run_id))
        runs = await self._runs(where, params, order="", limit=1)
        return runs[0] if runs else None

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Newest first by (created_at, run_id); `before` pages to strictly older runs.

        An unknown `before` run id yields an empty page.
        """
        where, params = filters.runs_filter(DIALECT, query)
        return await self._runs(where, params, order=filters.RUNS_NEWEST_FIRST, limit=query.limit)

    async def has_run(self, rule_id: str, alert: Alert) -> bool:
        """Whether a run of `rule_id` exists for this occurrence of `alert` (indexed)."""
        params = (alert.source.value, alert.fingerprint, rule_id, alert.identity)
        return await self._call(partial(queries.run_exists, params=params), write=False)

    async def open_runs(
        self, source: Source | None = None, fingerprint: str | None = None
    ) -> list[RunRecord]:
        """Runs not in a terminal state (optionally of one alert), oldest first."""
        where, params = filters.open_runs_filter(DIALECT, source, fingerprint)
        return await self._runs(where, params, order=filters.RUNS_OLDEST_FIRST, limit=-1)

    async def _runs(
        self, where: str, params: list[Any], *, order: str, limit: int
    ) -> list[RunRecord]:
        select = partial(queries.select_runs, where=where, params=params, limit=limit)
        return await self._call(partial(select, order=order), write=False)

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append audit events in order (the table refuses UPDATE and DELETE)."""
        rows = [queries.audit_row(e) for e in events]
        await self._call(partial(_execute, queries.AUDIT_INSERT, rows), write=True)

    async def audit_for_run(self, run_id: str) -> list[AuditEvent]:
        """The audit trail of one run, oldest first (ties in insertion order)."""
        return await self._call(partial(queries.select_audit, run_id=run_id), write=False)

    async def save_approval(self, approval: Approval) -> None:
        """Insert an approval request, or replace the stored one with the same id."""
        row = approvals.approval_row(approval)
        await self._call(partial(approvals.upsert, row=row), write=True)

    async def get_approval(self, approval_id: str) -> Approval | None:
        """One approval request, or None."""
        where, params = DIALECT.where(("approval_id = ?", approval_id))
        found = await self._approvals(where, params, order="", limit=1)
        return found[0] if found else None

    async def replace_approval_if(self, approval: Approval, expected: ApprovalState) -> bool:
        """Save `approval` only if the stored one is in state `expected` (never creates one).

        One conditional UPDATE under the file's write lock: exactly one decision wins.
        """
        row = approvals.approval_row(approval)
        cas = partial(approvals.replace_if, row=row, expected=expected.value)
        return await self._call(cas, write=True)

    async def list_approvals(
        self, state: ApprovalState | None = None, *, run_id: str | None = None, limit: int = 100
    ) -> list[Approval]:
        """Approvals filtered by state and/or run, newest `requested_at` first (ties by id)."""
        check_limit(limit)
        where, params = filters.approvals_filter(DIALECT, state, run_id)
        order = filters.APPROVALS_NEWEST_FIRST
        return await self._approvals(where, params, order=order, limit=limit)

    async def expired_approvals(self, now: datetime, limit: int) -> list[Approval]:
        """Pending approvals whose `expires_at` is at or before `now`, oldest expiry first."""
        check_limit(limit)
        where, params = filters.expired_approvals_filter(DIALECT, now)
        order = filters.APPROVALS_EXPIRING_FIRST
        return await self._approvals(where, params, order=order, limit=limit)

    async def _approvals(
        self, where: str, params: list[Any], *, order: str, limit: int
    ) -> list[Approval]:
        select = partial(approvals.select, where=where, params=params, order=order)
        return await self._call(partial(select, limit=limit), write=False)

    async def prune_audit(self, older_than: datetime, actor: str) -> int:
        """Delete audit events older than `older_than` and append `audit_pruned` (one commit).

        The only deletion path of the audit log; returns the number of events deleted.
        """
        to_text(older_than)  # refuse a naive time before queueing anything
        prune = partial(queries.prune_audit, older_than=older_than, actor=actor)
        return await self._call(partial(prune, now=datetime.now(UTC)), write=True)

    async def check_writable(self) -> None:
        """Commit a one-row write through the writer; StoreUnavailableError if it fails."""
        rows = [(to_text(datetime.now(UTC)),)]
        await self._call(partial(_execute, queries.PROBE_UPSERT, rows), write=True)


def _execute(sql: str, rows: list[tuple[Any, ...]], conn: sqlite3.Connection) -> None:
    conn.executemany(sql, rows)
