"""The store's roles: alert log, runs, audit log, approvals and the open store's lifecycle.

Components take only the roles they use; `Store` is all of them at once, for the composition
root that opens, hands out and closes a backend. `check_limit` is the contract every `limit`
argument of these roles keeps.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from responder.models.alerts import Alert, Delivery, Source
from responder.models.approvals import Approval, ApprovalState
from responder.models.runs import AuditEvent, RunQuery, RunRecord, RunState, StoredAlert


def check_limit(limit: int) -> int:
    """The port contract for every `limit`: at least 1 (ValueError otherwise)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return limit


class AlertLog(Protocol):
    """Received alerts, written before the 202 and marked processed once handed to the engine."""

    async def record_delivery(
        self, delivery: Delivery, received_at: datetime, *, settled: Sequence[bool] = ()
    ) -> list[StoredAlert]:
        """Durably write every alert of a delivery (one commit, shared by concurrent callers).

        `settled[i]` True: alert i needs no processing (no rule can act on it); it is written
        already marked processed at `received_at`, so recovery never picks it up. Missing
        entries mean False. Returns the stored alerts in delivery order. Raises
        StoreUnavailableError if the write did not happen; nothing is acknowledged then.
        """
        ...

    async def unprocessed_alerts(self, limit: int) -> list[StoredAlert]:
        """Alerts received but not yet marked processed, oldest first (start-up recovery).

        `limit` must be at least 1 (ValueError otherwise).
        """
        ...

    async def mark_alert_processed(self, alert_id: int, at: datetime) -> None:
        """Mark an alert as fully handed to the engine (its runs are recorded).

        Idempotent: the first time is kept; an unknown id is ignored.
        """
        ...

    async def get_alert(self, alert_id: int) -> StoredAlert | None:
        """One stored alert by id, or None."""
        ...


class RunStore(Protocol):
    """Runs and their steps: saved with the audit events that explain them, changed by
    compare-and-set where replicas could race."""

    async def save_run(self, run: RunRecord, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert or replace a run and its steps, and append `audit` events, in one
        transaction: a run's state and the audit record of how it got there land together."""
        ...

    async def save_steps(
        self, run: RunRecord, step_ids: Collection[str], audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Save what a step transition changed: insert or update the run's row, insert or
        update only the steps named in `step_ids` (as they are in `run`, at their positions
        there), and append `audit`, in one transaction. Steps not named stay as stored, so a
        run saved for the first time names every step; an unknown step id is a ValueError.

        Concurrent callers may share one transaction (one commit for many runs); each call is
        still all or none, and a call that fails for its data fails alone.
        """
        ...

    async def replace_run_if(self, run: RunRecord, expected: RunState) -> bool:
        """Compare-and-set: save `run` only if the stored run is still in state `expected`.

        Atomic across processes sharing the store; True when saved. A run that does not
        exist is not created (False).
        """
        ...

    async def due_runs(self, now: datetime, limit: int) -> list[RunRecord]:
        """Pending runs whose `not_before` is at or before `now`, earliest first."""
        ...

    async def get_run(self, run_id: str) -> RunRecord | None:
        """One run with its steps, or None."""
        ...

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs matching the filters, newest first by (created_at, run_id).

        `query.before` is a run id: only runs strictly older than it are returned (keyset
        pagination); an unknown id gives an empty page.
        """
        ...

    async def has_run(self, rule_id: str, alert: Alert) -> bool:
        """Whether a run of `rule_id` exists for this occurrence of `alert` (its source,
        fingerprint and identity): one indexed lookup, no run is loaded."""
        ...

    async def open_runs(
        self, source: Source | None = None, fingerprint: str | None = None
    ) -> list[RunRecord]:
        """Runs not in a terminal state, optionally only those of one alert; oldest first."""
        ...


class AuditLog(Protocol):
    """The append-only audit log: appended to, read per run, pruned only by retention."""

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append audit events (never updated or deleted by the application)."""
        ...

    async def audit_for_run(self, run_id: str) -> list[AuditEvent]:
        """The audit trail of one run, oldest first by (at, insertion order)."""
        ...

    async def prune_audit(self, older_than: datetime, actor: str) -> int:
        """Delete audit events older than `older_than` (the one retention path), and append
        an `audit_pruned` event naming `actor`, the cut-off and the count. Returns the count.
        """
        ...


class ApprovalStore(Protocol):
    """Approval requests, decided exactly once by compare-and-set."""

    async def save_approval(self, approval: Approval) -> None:
        """Insert an approval request (insert or replace by `approval_id`)."""
        ...

    async def get_approval(self, approval_id: str) -> Approval | None:
        """One approval request, or None."""
        ...

    async def replace_approval_if(self, approval: Approval, expected: ApprovalState) -> bool:
        """Compare-and-set: save `approval` only if the stored one is in state `expected`.

        Atomic across processes; True when saved (so exactly one decision wins).
        """
        ...

    async def list_approvals(
        self, state: ApprovalState | None = None, *, run_id: str | None = None, limit: int = 100
    ) -> list[Approval]:
        """Approvals filtered by state and/or run, newest `requested_at` first."""
        ...

    async def expired_approvals(self, now: datetime, limit: int) -> list[Approval]:
        """Pending approvals whose `expires_at` is at or before `now`, oldest expiry first."""
        ...


class StoreLifecycle(Protocol):
    """What the owner of an open store asks of it: is it writable now, and closing it."""

    async def check_writable(self) -> None:
        """Raise StoreUnavailableError unless a write would succeed now."""
        ...

    async def close(self) -> None:
        """Flush pending writes and release the connection."""
        ...


class Store(AlertLog, RunStore, AuditLog, ApprovalStore, StoreLifecycle, Protocol):
    """A whole store as a backend opens it: every role at once, for the composition root that
    opens, hands out and closes it. Components take only the roles they use."""
