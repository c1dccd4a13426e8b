"""The per-alert pipeline: cancel what a resolution ends, match, plan, gate, run or park."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from responder.actions.catalog import PolicyCatalog
from responder.core.planning import PlanError, dedup_key, plan_rule
from responder.core.resumes import may_contain
from responder.core.transitions import cancel_open_steps, move_run
from responder.engine.executor import Executor
from responder.engine.gating import Gate, GateDecision, Verdict
from responder.engine.recording import RunRecorder
from responder.engine.resuming import Claimed, Resumer
from responder.engine.rulebook import RuleBook
from responder.metrics import Metrics
from responder.models.alerts import Alert, AlertStatus
from responder.models.plans import Plan
from responder.models.rules import LoadedRule
from responder.models.runs import (
    AuditKind,
    RunRecord,
    RunState,
    SkipReason,
    StepRecord,
    StoredAlert,
)
from responder.ports.clock import Clock
from responder.ports.store import AlertLog, RunStore

log = structlog.get_logger("responder.engine")

_WAITING = (RunState.PENDING, RunState.WAITING_APPROVAL)

__all__ = ["Claimed", "Pipeline"]  # `Claimed`: a resumed run ready to execute (DelayPoller)


class Pipeline:
    """Takes one stored alert through match -> plan -> gate -> execute, recording each step.

    Every state change that another replica could race (a `for:` delay ending, a resolution
    cancelling a waiting run) is a compare-and-set on the store, so exactly one wins.
    """

    def __init__(
        self,
        *,
        rulebook: RuleBook,
        catalog: PolicyCatalog,
        gate: Gate,
        executor: Executor,
        resumer: Resumer,
        recorder: RunRecorder,
        alert_log: AlertLog,
        run_store: RunStore,
        clock: Clock,
        metrics: Metrics,
        dry_run: bool,
        instance_id: str,
    ) -> None:
        self.rulebook = rulebook
        self._catalog = catalog
        self._gate = gate
        self._executor = executor
        self._resumer = resumer
        self._recorder = recorder
        self._alert_log = alert_log
        self._run_store = run_store
        self._clock = clock
        self._metrics = metrics
        self._dry_run = dry_run
        self.instance_id = instance_id
        self.on_cancel: Callable[[str], Awaitable[None]] | None = None  # pending approvals
        # Alerts a previous process acknowledged but did not finish: their runs may already be
        # in the store (cut off by a shutdown), and an in-process coordinator has forgotten
        # its dedup claims, so the store is asked before any new run is made for them.
        self.recovered: set[int] = set()
        # In-process claims die with the process while Alertmanager keeps re-sending its whole
        # group: without a shared coordinator the store is asked for every alert (one indexed
        # query), so an occurrence that already has a run never gets a second one.
        self.claims_are_durable = True
        self.orphan_grace = 2.0  # seconds another replica gets to save the run it claimed

    def needs_processing(self, alert: Alert) -> bool:
        """Whether `process` could do anything with `alert`: a rule of the active set matches
        it, or it is a resolution (which ends runs still waiting for it)."""
        return alert.status is AlertStatus.RESOLVED or bool(
            self.rulebook.current.index.match(alert)
        )

    async def process(self, stored: StoredAlert) -> None:
        """Handle one received alert completely, then mark it processed."""
        alert: Alert = stored.alert
        if alert.status is AlertStatus.RESOLVED:
            await self.cancel_waiting(alert)
        snapshot = self.rulebook.current
        for loaded in snapshot.index.match(alert):
            self._metrics.rule_matches.labels(rule=loaded.rule.id).inc()
            await self._handle(loaded, stored)
        await self._alert_log.mark_alert_processed(stored.alert_id, self._clock.now())
        self.recovered.discard(stored.alert_id)

    async def _orphaned_claim(self, rule_id: str, stored: StoredAlert) -> bool:
        """A recovered alert's claim with no run behind it: the process that claimed it died
        between the claim and saving the run. Another live replica gets `orphan_grace` to
        save a run it claimed; if none appears, the claim is an orphan."""
        if await self._run_store.has_run(rule_id, stored.alert):
            return False
        await asyncio.sleep(self.orphan_grace)
        if await self._run_store.has_run(rule_id, stored.alert):
            return False
        log.warning(
            "claim_orphaned",
            rule=rule_id,
            alert_id=stored.alert_id,
            detail="claimed before a crash but never run; running it now",
        )
        return True

    async def cancel_waiting(self, alert: Alert) -> None:
        """A resolved alert ends its runs still waiting for `for:` or for an approval."""
        for run in await self._run_store.open_runs(alert.source, alert.fingerprint):
            if run.state not in _WAITING:
                continue
            now = self._clock.now()
            reason = SkipReason.ALERT_RESOLVED.value
            done = move_run(cancel_open_steps(run, now, reason), RunState.CANCELLED, now, reason)
            if await self._run_store.replace_run_if(done, run.state):
                if self.on_cancel is not None:
                    await self.on_cancel(run.run_id)
                await self._recorder.audit(AuditKind.RUN_CANCELLED, done, reason=reason)
                self._recorder.run_finished(done)

    async def _handle(self, loaded: LoadedRule, stored: StoredAlert) -> None:
        rule, alert, now = loaded.rule, stored.alert, self._clock.now()
        claimed = await self._gate.claim(dedup_key(rule.id, alert.identity))
        recovered = stored.alert_id in self.recovered
        if claimed is not None and claimed.reason is SkipReason.DUPLICATE:
            if recovered and await self._orphaned_claim(rule.id, stored):
                claimed = None  # the crashed process claimed it and made no run: take over
        elif (recovered or not self.claims_are_durable) and await self._run_store.has_run(
            rule.id, alert
        ):
            claimed = GateDecision(
                Verdict.SKIP, SkipReason.DUPLICATE, detail="this occurrence already has a run"
            )
        if claimed is not None and claimed.reason is SkipReason.DUPLICATE:
            await self._recorder.audit(
                AuditKind.RUN_SKIPPED,
                rule_id=rule.id,
                alert_id=stored.alert_id,
                reason=SkipReason.DUPLICATE.value,
                details={"detail": claimed.detail},
            )
            for step in rule.steps:
                self._metrics.steps.labels(step.action, "skipped", "duplicate").inc()
            return
        try:
            plan = plan_rule(loaded, alert, self._catalog, global_dry_run=self._dry_run)
        except PlanError as exc:
            run = self._new_run(
                rule.id,
                stored,
                now,
                None,
                self._dry_run or rule.dry_run,
                [(s.id, s.action) for s in rule.steps],
            )
            await self._executor.skip_run(run, SkipReason.PLAN_INVALID, str(exc))
            return
        # without coordination (claimed is a degraded decision) containment stays blocked
        decision = claimed if claimed is not None else await self._gate.admit(plan, alert, now)
        run = self._new_run(
            rule.id, stored, now, plan, plan.dry_run, [(s.step_id, s.action) for s in plan.steps]
        )
        if decision.verdict is Verdict.DELAY:
            run = run.model_copy(update={"not_before": decision.until})
        details = {"alert": alert.name, "guard_key": plan.guard_key}
        matched = self._recorder.event(AuditKind.RULE_MATCHED, run, details=details)
        # each outcome is one store call: the run with its audit trail so far
        if decision.verdict is Verdict.SKIP:
            reason = decision.reason or SkipReason.NOT_ALLOWED
            await self._executor.skip_run(run, reason, decision.detail, matched)
        elif decision.verdict is Verdict.DELAY and decision.until is not None:
            until = {"until": decision.until.isoformat()}
            delayed = self._recorder.event(AuditKind.RUN_DELAYED, run, details=until)
            await self._recorder.save(run, matched, delayed)
        else:  # first written with the first step's change (RunRecorder.defer)
            self._recorder.defer(matched)
            block = decision.blocked if may_contain(loaded, alert) else SkipReason.ALERT_RESOLVED
            try:
                await self._executor.execute(run, plan, alert, containment_block=block)
            finally:
                self._recorder.forget(run.run_id)

    async def fire_due(self, limit: int = 50) -> list[Claimed]:
        """Resume runs whose `for:` delay has ended; return those this replica must execute.

        Each goes through the one resume path (`Resumer.resume`): re-checked (rule enabled,
        plan valid, alert still containable), claimed by a compare-and-set from pending to
        running (with this replica as owner), then the guards (cooldown, budget) applied.
        """
        claimed: list[Claimed] = []
        for run in await self._run_store.due_runs(self._clock.now(), limit):
            ready = await self._resumer.resume(run)
            if isinstance(ready, Claimed):
                claimed.append(ready)
        return claimed

    async def execute_claimed(self, claimed: Claimed) -> None:
        """Run a run claimed by `fire_due`."""
        await self._resumer.execute(claimed)

    def _new_run(
        self,
        rule_id: str,
        stored: StoredAlert,
        now: datetime,
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
            dry_run=dry_run,
            created_at=now,
            updated_at=now,
            owner=self.instance_id,
            steps=tuple(StepRecord(step_id=sid, action=action) for sid, action in steps),
        )
