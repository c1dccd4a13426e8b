"""Recording of runs: the store row, the audit trail, the metrics and one log line per step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

import structlog

from responder.metrics import Metrics
from responder.models.runs import (
    AuditEvent,
    AuditKind,
    RunRecord,
    RunState,
    StepRecord,
    StepState,
)
from responder.ports.clock import Clock
from responder.ports.store import AuditLog, RunStore

log = structlog.get_logger("responder.engine")

_SAVED_MAX = 10_000  # runs remembered as last written, for diffing (see RunRecorder._save)

_STEP_KIND = {
    StepState.RUNNING: AuditKind.STEP_STARTED,
    StepState.SUCCEEDED: AuditKind.STEP_SUCCEEDED,
    StepState.FAILED: AuditKind.STEP_FAILED,
    StepState.SKIPPED: AuditKind.STEP_SKIPPED,
}
_APPROVAL_EVENT = {
    AuditKind.APPROVAL_REQUESTED: "requested",
    AuditKind.APPROVAL_GRANTED: "granted",
    AuditKind.APPROVAL_REJECTED: "rejected",
    AuditKind.APPROVAL_EXPIRED: "expired",
    AuditKind.APPROVAL_STALE: "stale",
}


class EventFields(TypedDict, total=False):
    """What an audit event may say besides its kind and run (`actor` is `responder` unless
    given; `rule_id` and `alert_id` only for an event without a run)."""

    step_id: str | None
    reason: str | None
    actor: str
    details: Mapping[str, Any] | None
    rule_id: str | None
    alert_id: int | None


class RunRecorder:
    """Writes every decision about a run to the store, the audit log, metrics and logs."""

    def __init__(
        self, *, run_store: RunStore, audit_log: AuditLog, metrics: Metrics, clock: Clock
    ) -> None:
        self._run_store = run_store
        self._audit_log = audit_log
        self._metrics = metrics
        self._clock = clock
        self._deferred: dict[str, list[AuditEvent]] = {}  # by run id, see `defer`
        self._saved: dict[str, RunRecord] = {}  # by run id: as this recorder last wrote it

    async def save(self, run: RunRecord, *events: AuditEvent) -> None:
        """Persist the run and its steps as they are now, with the audit `events` (from
        `event`) that explain the change, in one store call."""
        await self._save(run, events)
        for event in events:
            self._announce(event)

    def defer(self, event: AuditEvent) -> None:
        """Write `event` with its run's next save instead of on its own.

        A run about to execute is first saved with its first step's change: one durable write
        between a matching alert and its first action instead of two. Nothing acts before
        that write, and a run that is never written (the process died) leaves only its dedup
        claim, which a restart already handles. `forget` drops what was never written.
        """
        if event.run_id is None:
            raise ValueError("only an event about a run can wait for the run's save")
        self._deferred.setdefault(event.run_id, []).append(event)

    def forget(self, run_id: str) -> None:
        """Drop events still waiting for a save of `run_id` (it was never saved)."""
        self._deferred.pop(run_id, None)

    async def _save(self, run: RunRecord, events: Sequence[AuditEvent]) -> None:
        """`save_run` with the run's deferred events first (announced once written)."""
        earlier = self._deferred.pop(run.run_id, [])
        previous = self._saved.pop(run.run_id, None)
        try:
            changed = _changed_steps(previous, run)
            if changed is None:
                await self._run_store.save_run(run, [*earlier, *events])
            else:
                await self._run_store.save_steps(run, changed, [*earlier, *events])
        except BaseException:
            if earlier:  # not written: they wait for the next save
                self._deferred[run.run_id] = earlier + self._deferred.get(run.run_id, [])
            raise  # and the next save writes the run whole: what is stored is unknown
        if run.state is RunState.RUNNING:
            self._remember(run)
        for event in earlier:
            self._announce(event)

    def _remember(self, run: RunRecord) -> None:
        """Keep `run` as written, for the next save to diff against: only while it runs here
        (a parked or finished run is next written, if ever, by whoever resumes it)."""
        if len(self._saved) >= _SAVED_MAX:  # a run that stopped without a final save
            del self._saved[next(iter(self._saved))]
        self._saved[run.run_id] = run

    async def latest(self, run: RunRecord) -> RunRecord:
        """The run as last saved (falls back to `run` if the store has none)."""
        return await self._run_store.get_run(run.run_id) or run

    async def audit(
        self, kind: AuditKind, run: RunRecord | None = None, **fields: Unpack[EventFields]
    ) -> None:
        """Append one audit event (and log it at the same time, with the same vocabulary)."""
        event = self.event(kind, run, **fields)
        earlier = self._deferred.pop(run.run_id, []) if run is not None else []
        await self._audit_log.append_audit([*earlier, event])
        for written in (*earlier, event):
            self._announce(written)

    def event(
        self, kind: AuditKind, run: RunRecord | None = None, **fields: Unpack[EventFields]
    ) -> AuditEvent:
        """An audit event about `run` (or the rule and alert in `fields`), to `save` with it."""
        return AuditEvent(
            kind=kind,
            at=self._clock.now(),
            actor=fields.get("actor", "responder"),
            run_id=run.run_id if run else None,
            rule_id=run.rule_id if run else fields.get("rule_id"),
            step_id=fields.get("step_id"),
            alert_id=run.alert_id if run else fields.get("alert_id"),
            reason=fields.get("reason"),
            details=dict(fields.get("details") or {}),
        )

    def _announce(self, event: AuditEvent) -> None:
        """Count and log an audit event once it is stored (step events log in `step`)."""
        self._count_approval(event.kind, event.reason)
        if event.step_id is None:
            log.info(
                event.kind.value,
                run_id=event.run_id,
                rule=event.rule_id,
                alert_id=event.alert_id,
                reason=event.reason,
                **_flat(event.details),
            )

    def _count_approval(self, kind: AuditKind, reason: str | None) -> None:
        """Count approval requests (why: the rule or the storm brake) and their endings."""
        event = _APPROVAL_EVENT.get(kind)
        if event is None:
            return
        why = ""
        if kind is AuditKind.APPROVAL_REQUESTED:
            why = "storm_brake" if reason == "storm_brake" else "rule"  # a bounded label
        self._metrics.approvals.labels(event=event, reason=why).inc()

    async def step(
        self,
        run: RunRecord,
        step: StepRecord,
        *,
        duration: float | None = None,
        summary: str = "",
        verified: bool | None = None,
    ) -> None:
        """Persist the run after a step changed state, with its audit event (one store call);
        count and log it once. The event names the replica that moved the step (`instance`)
        and the request (`params`; `sent` once the action reported what it sent)."""
        kind = (
            AuditKind.STEP_WOULD_RUN
            if step.state is StepState.SKIPPED and step.reason == "dry_run"
            else _STEP_KIND.get(step.state)
        )
        if kind is None:
            await self._save(run, ())
            return
        details: dict[str, Any] = {"action": step.action, "instance": step.instance}
        if step.params is not None:
            details["params"] = step.params  # the request as described before the call
        if step.sent is not None:
            details["sent"] = step.sent  # ... and as sent, run-time values filled in
        if step.error:
            details["error"] = step.error
        if summary:
            details["summary"] = summary
        if verified is not None:
            details["verified"] = verified
        await self._save(
            run,
            [
                AuditEvent(
                    kind=kind,
                    at=self._clock.now(),
                    run_id=run.run_id,
                    rule_id=run.rule_id,
                    step_id=step.step_id,
                    alert_id=run.alert_id,
                    reason=step.reason,
                    details=details,
                )
            ],
        )
        if step.state is StepState.RUNNING:
            return
        self._metrics.steps.labels(
            action=step.action,
            outcome=step.state.value,
            reason=step.reason if step.state is StepState.SKIPPED and step.reason else "",
        ).inc()
        if duration is not None:
            self._metrics.step_duration.labels(action=step.action).observe(duration)
        log.info(
            kind.value,
            run_id=run.run_id,
            rule=run.rule_id,
            step=step.step_id,
            action=step.action,
            state=step.state.value,
            reason=step.reason,
            attempts=step.attempts,
            duration_ms=round(duration * 1000, 1) if duration is not None else None,
            summary=summary or None,
            error=step.error,
            verified=verified,
            dry_run=run.dry_run,
            instance=step.instance,
        )

    def steps_skipped(self, steps: Iterable[StepRecord]) -> None:
        """Count steps skipped with their whole run (`Executor.skip_run`): they have no step
        event of their own, the run's `run_skipped` event stands for them."""
        for step in steps:
            self._metrics.steps.labels(
                action=step.action, outcome=StepState.SKIPPED.value, reason=step.reason or ""
            ).inc()

    def run_finished(self, run: RunRecord) -> None:
        """Count a run that reached its final state."""
        self._metrics.runs.labels(rule=run.rule_id, state=run.state.value).inc()


def _changed_steps(previous: RunRecord | None, run: RunRecord) -> list[str] | None:
    """The ids of the steps of `run` that differ from `previous` (as last written); None when
    the run must be written whole (never written here, or its steps are not the same list)."""
    if previous is None or len(previous.steps) != len(run.steps):
        return None
    changed = []
    for before, now in zip(previous.steps, run.steps, strict=True):
        if before.step_id != now.step_id:
            return None
        if before != now:
            changed.append(now.step_id)
    return changed


def _flat(details: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (details or {}).items() if isinstance(v, str | int | float | bool)}
