"""The per-alert pipeline: cancel what a resolution ends, match, plan, gate, run or park."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import structlog

from responder.actions.catalog import PolicyCatalog
from responder.core.planning import PlanError, plan_rule
from responder.core.transitions import cancel_open_steps, move_run, skip_open_steps
from responder.engine.executor import Executor
from responder.engine.gating import Gate, Verdict
from responder.engine.recording import RunRecorder
from responder.engine.rulebook import RuleBook
from responder.engine.timers import Timers
from responder.metrics import Metrics
from responder.models.alerts import Alert, AlertStatus
from responder.models.plans import Plan
from responder.models.rules import LoadedRule, StatusSelector
from responder.models.runs import (
    AuditKind,
    RunRecord,
    RunState,
    SkipReason,
    StepRecord,
    StoredAlert,
)
from responder.ports import Clock, Store

log = structlog.get_logger("responder.engine")

_WAITING = (RunState.PENDING, RunState.WAITING_APPROVAL)


class Pipeline:
    """Takes one stored alert through match -> plan -> gate -> execute, recording each step."""

    def __init__(
        self,
        *,
        rulebook: RuleBook,
        catalog: PolicyCatalog,
        gate: Gate,
        executor: Executor,
        recorder: RunRecorder,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        dry_run: bool,
    ) -> None:
        self.rulebook = rulebook
        self._catalog = catalog
        self._gate = gate
        self._executor = executor
        self._recorder = recorder
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._dry_run = dry_run
        self._transitions = asyncio.Lock()
        self.timers = Timers(self._fire)

    async def process(self, stored: StoredAlert) -> None:
        """Handle one received alert completely, then mark it processed."""
        alert: Alert = stored.alert
        if alert.status is AlertStatus.RESOLVED:
            await self.cancel_waiting(alert)
        snapshot = self.rulebook.current
        for loaded in snapshot.index.match(alert):
            self._metrics.rule_matches.labels(rule=loaded.rule.id).inc()
            await self._handle(loaded, stored)
        await self._store.mark_alert_processed(stored.alert_id, self._clock.now())

    async def cancel_waiting(self, alert: Alert) -> None:
        """A resolved alert ends its runs still waiting for `for:` or for an approval."""
        for run in await self._store.open_runs(alert.source, alert.fingerprint):
            if run.state not in _WAITING:
                continue
            async with self._transitions:
                current = await self._recorder.latest(run)
                if current.state not in _WAITING:
                    continue
                self.timers.cancel(run.run_id)
                now = self._clock.now()
                done = cancel_open_steps(current, now, SkipReason.ALERT_RESOLVED.value)
                done = move_run(done, RunState.CANCELLED, now, SkipReason.ALERT_RESOLVED.value)
                await self._recorder.save(done)
            await self._recorder.audit(AuditKind.RUN_CANCELLED, done, reason="alert_resolved")
            self._recorder.run_finished(done)

    async def _handle(self, loaded: LoadedRule, stored: StoredAlert) -> None:
        rule, alert, now = loaded.rule, stored.alert, self._clock.now()
        try:
            plan = plan_rule(loaded, alert, self._catalog, global_dry_run=self._dry_run)
        except PlanError as exc:
            run = _new_run(
                rule.id,
                stored,
                now,
                str(exc),
                None,
                self._dry_run or rule.dry_run,
                [(s.id, s.action) for s in rule.steps],
            )
            await self._skip(run, SkipReason.PLAN_INVALID, str(exc))
            return
        decision = await self._gate.admit(plan, alert, now)
        if decision.reason is SkipReason.DUPLICATE:
            await self._recorder.audit(
                AuditKind.RUN_SKIPPED,
                rule_id=rule.id,
                alert_id=stored.alert_id,
                reason=SkipReason.DUPLICATE.value,
                details={"detail": decision.detail},
            )
            for step in plan.steps:
                self._metrics.steps.labels(step.action, "skipped", "duplicate").inc()
            return
        run = _new_run(
            rule.id,
            stored,
            now,
            None,
            plan,
            plan.dry_run,
            [(s.step_id, s.action) for s in plan.steps],
        )
        await self._recorder.save(run)
        await self._recorder.audit(
            AuditKind.RULE_MATCHED, run, details={"alert": alert.name, "guard_key": plan.guard_key}
        )
        if decision.verdict is Verdict.SKIP:
            await self._skip(run, decision.reason or SkipReason.NOT_ALLOWED, decision.detail)
        elif decision.verdict is Verdict.DELAY and decision.until is not None:
            run = run.model_copy(update={"not_before": decision.until})
            await self._recorder.save(run)
            await self._recorder.audit(
                AuditKind.RUN_DELAYED, run, details={"until": decision.until.isoformat()}
            )
            self.timers.schedule(run.run_id, decision.until, now, (plan, stored))
        else:
            await self._executor.execute(
                run, plan, alert, containment_allowed=_may_contain(loaded, alert)
            )

    async def _fire(self, run_id: str, payload: tuple[Plan, StoredAlert]) -> None:
        """A `for:` delay ended: act only if the run is still pending, after the guards."""
        plan, stored = payload
        async with self._transitions:
            run = await self._store.get_run(run_id)
            if run is None or run.state is not RunState.PENDING:
                return
            decision = await self._gate.guards(plan, self._clock.now())
            if decision.verdict is Verdict.SKIP:
                await self._skip(run, decision.reason or SkipReason.NOT_ALLOWED, decision.detail)
                return
            run = move_run(run, RunState.RUNNING, self._clock.now())
            await self._recorder.save(run)
        loaded = self.rulebook.current.rule(plan.rule_id)
        allowed = loaded is not None and _may_contain(loaded, stored.alert)
        await self._executor.execute(run, plan, stored.alert, containment_allowed=allowed)

    async def _skip(self, run: RunRecord, reason: SkipReason, detail: str) -> None:
        now = self._clock.now()
        run = skip_open_steps(run, now, reason.value)
        run = move_run(run, RunState.SKIPPED, now, reason.value)
        await self._recorder.save(run)
        for step in run.steps:
            self._metrics.steps.labels(step.action, "skipped", reason.value).inc()
        await self._recorder.audit(
            AuditKind.RUN_SKIPPED, run, reason=reason.value, details={"detail": detail}
        )
        self._recorder.run_finished(run)


def _may_contain(loaded: LoadedRule, alert: Alert) -> bool:
    """Resolved alerts never trigger containment unless the rule asks for `status: resolved`."""
    return alert.status is AlertStatus.FIRING or loaded.rule.match.status is StatusSelector.RESOLVED


def _new_run(
    rule_id: str,
    stored: StoredAlert,
    now: datetime,
    reason: str | None,
    plan: Plan | None,
    dry_run: bool,
    steps: list[tuple[str, str]],
) -> RunRecord:
    alert: Alert = stored.alert
    return RunRecord(
        run_id=uuid.uuid4().hex,
        rule_id=rule_id,
        alert_id=stored.alert_id,
        source=alert.source,
        fingerprint=alert.fingerprint,
        alert_identity=alert.identity,
        guard_key=plan.guard_key if plan else "",
        idempotency_key=plan.idempotency_key if plan else "",
        state=RunState.PENDING,
        reason=reason,
        dry_run=dry_run,
        created_at=now,
        updated_at=now,
        steps=tuple(StepRecord(step_id=sid, action=action) for sid, action in steps),
    )
