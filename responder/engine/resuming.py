"""The one resume path: a run parked for a `for:` delay or an approval continues through here.

Both the delay poller (via `Pipeline.fire_due`) and the approval desk call `Resumer.resume`;
neither re-implements it. Every resume re-checks, before anything acts (decisions pure, in
`core.resumes`):

- the rule still exists and is enabled (else the run is skipped `rule_disabled`);
- the plan is still valid for the alert and still has the run's steps (else `plan_invalid`);
- the alert may still be contained (a resolution that arrived while the run waited already
  cancelled it, so the claim below fails; a resolved alert only contains for `status: resolved`);
- an approved step still renders to the request the approver saw (same digest); otherwise the
  step is not run, the run parks again with the new request and `approval_stale` is audited,
  and the caller (the desk) asks for a new approval.

The claim is a compare-and-set from the parked state, so exactly one replica resumes a run.

A run whose replica died (its lease expired) is continued through here too (`take_over`, from
the lease sweep): the same re-checks, then its interrupted steps are treated as
`core.takeovers` decides (completed ones kept, an interrupted diagnostic planned again, an
interrupted containment step `outcome_unknown` and settled by its action's read-back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from responder.actions.catalog import PolicyCatalog
from responder.core.planning import PlanError, params_now, plan_rule
from responder.core.redaction import redact
from responder.core.resumes import (
    Blocked,
    Staleness,
    approval_staleness,
    may_contain,
    plan_mismatch,
    resume_block,
)
from responder.core.takeovers import Treatment, interrupted, treatments
from responder.core.transitions import move_run, move_step, replace_step
from responder.engine.executor import Executor
from responder.engine.gating import Gate, Verdict
from responder.engine.recording import RunRecorder
from responder.engine.rulebook import RuleBook
from responder.models.alerts import Alert
from responder.models.approvals import Approval, ApprovalState
from responder.models.plans import Plan, PlannedStep
from responder.models.rules import LoadedRule
from responder.models.runs import (
    AuditKind,
    RunRecord,
    RunState,
    SkipReason,
    StepState,
)
from responder.ports.clock import Clock
from responder.ports.store import AlertLog, RunStore

log = structlog.get_logger("responder.engine")


@dataclass(frozen=True)
class Claimed:
    """A resumed run this replica claimed, re-planned and checked: ready to execute."""

    run: RunRecord
    plan: Plan
    alert: Alert
    block: SkipReason | None
    approved: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stale:
    """An approved step that re-planned to another request: parked again, needs a new approval."""

    run: RunRecord
    planned: PlannedStep
    params: dict[str, Any]
    reason: str
    staleness: Staleness


class Resumer:
    """Re-checks and claims parked runs; executes the ones that may go on."""

    def __init__(
        self,
        *,
        run_store: RunStore,
        alert_log: AlertLog,
        rulebook: RuleBook,
        catalog: PolicyCatalog,
        gate: Gate,
        executor: Executor,
        recorder: RunRecorder,
        clock: Clock,
        instance_id: str,
        dry_run: bool,
    ) -> None:
        self._run_store = run_store
        self._alert_log = alert_log
        self._rulebook = rulebook
        self._catalog = catalog
        self._gate = gate
        self._executor = executor
        self._recorder = recorder
        self._clock = clock
        self._instance_id = instance_id
        self._dry_run = dry_run

    async def resume(
        self, run: RunRecord, approval: Approval | None = None
    ) -> Claimed | Stale | None:
        """Resume `run` as read from the store, parked (`pending` or `waiting_approval`).

        With `approval`, the run waited for it: a rejected or expired one skips its step, an
        approved one lets its step run if it is still the step approved. Returns what to
        execute (`Claimed`), an approved step gone stale (`Stale`, parked again), or None
        (another replica claimed it, a resolution cancelled it, or it was skipped here).
        """
        parked = run.state
        if parked not in (RunState.PENDING, RunState.WAITING_APPROVAL):
            return None
        now = self._clock.now()
        approved = approval is not None and approval.state is ApprovalState.APPROVED
        if approval is not None and not approved:
            run = _skip_refused(run, approval, now)
        loaded, alert, plan, blocked = await self._recheck(run)
        if blocked is None and approved and approval is not None and plan is not None:
            assert alert is not None
            try:
                stale = self._staleness(run, plan, alert, approval)
            except PlanError as exc:
                blocked, stale = Blocked(SkipReason.PLAN_INVALID, str(exc)), None
            if stale is not None:
                return await self._park_again(run, stale, approval)
        running = move_run(run, RunState.RUNNING, self._clock.now()).model_copy(
            update={"owner": self._instance_id}
        )
        if not await self._run_store.replace_run_if(running, parked):
            return None  # another replica resumed it, or a resolution cancelled it meanwhile
        if blocked is not None or plan is None or loaded is None or alert is None:
            await self._skip_blocked(running, blocked, "resume_blocked")
            return None
        block: SkipReason | None = None
        if approval is None:  # a `for:` delay ended: the guards were not applied yet
            decision = await self._gate.guards(plan, self._clock.now())
            if decision.verdict is Verdict.SKIP:
                reason = decision.reason or SkipReason.NOT_ALLOWED
                await self._executor.skip_run(running, reason, decision.detail)
                return None
            block = decision.blocked
        if not may_contain(loaded, alert):
            block = SkipReason.ALERT_RESOLVED
        steps = (approval.step_id,) if approved and approval is not None else ()
        return Claimed(running, plan, alert, block, steps)

    async def take_over(self, run: RunRecord) -> Claimed | None:
        """Continue `run`, running (or saved to start) on a replica whose lease expired.

        The caller holds the exclusive takeover claim of this run and its previous owner. The
        run is re-checked like any resume (rule enabled, plan valid, alert may still contain);
        its owner becomes this replica by a compare-and-set from the state read (audited
        `run_taken_over` with both owners and what happens to each interrupted step); every
        `outcome_unknown` step is settled by its read-back. Returns what to execute, or None
        (another replica changed it first, or it ended here: blocked, skipped).
        """
        found = run.state
        if found not in (RunState.RUNNING, RunState.PENDING):
            return None
        previous = run.owner
        loaded, alert, plan, blocked = await self._recheck(run)
        planned = {p.step_id: p for p in plan.steps} if plan is not None and blocked is None else {}
        classes = {
            s.step_id: planned[s.step_id].action_class
            if s.step_id in planned
            else self._catalog.spec(s.action).action_class
            for s in run.steps
        }
        now = self._clock.now()
        taken = interrupted(run, classes, now)
        if taken.state is RunState.PENDING:
            taken = move_run(taken, RunState.RUNNING, now)
        taken = taken.model_copy(update={"owner": self._instance_id})
        if not await self._run_store.replace_run_if(taken, found):
            return None  # another replica took it over, or it ended meanwhile
        plan_of = treatments(run, classes)
        moved = {k: v.value for k, v in plan_of.items() if v is not Treatment.KEEP}
        await self._recorder.audit(
            AuditKind.RUN_TAKEN_OVER,
            taken,
            reason="the replica running it stopped (its lease expired); continued here",
            details={
                "previous_owner": previous or "",
                "instance": self._instance_id,
                "steps": moved,
            },
        )
        for step_id, how in plan_of.items():
            if how is Treatment.OUTCOME_UNKNOWN:
                await self._recorder.audit(
                    AuditKind.STEP_OUTCOME_UNKNOWN,
                    taken,
                    step_id=step_id,
                    reason=taken.step(step_id).reason,
                    details={
                        "action": taken.step(step_id).action,
                        "instance": previous or "",
                        "params": taken.step(step_id).params,
                    },
                )
        block: SkipReason | None = None
        if blocked is None and loaded is not None and alert is not None:
            if not may_contain(loaded, alert):
                block = SkipReason.ALERT_RESOLVED
        else:
            block = blocked.reason if blocked is not None else SkipReason.PLAN_INVALID
        for step_id, how in plan_of.items():
            if how is Treatment.OUTCOME_UNKNOWN:
                taken = await self._executor.settle(
                    taken, planned.get(step_id), step_id, alert, block
                )
        if blocked is not None or plan is None or alert is None:
            await self._skip_blocked(taken, blocked, "takeover_blocked")
            return None
        return Claimed(taken, plan, alert, block)

    async def execute(self, claimed: Claimed) -> RunRecord:
        """Run the open steps of a claimed run (the approved one, if any, without asking)."""
        return await self._executor.execute(
            claimed.run,
            claimed.plan,
            claimed.alert,
            containment_block=claimed.block,
            approved=claimed.approved,
        )

    async def _skip_blocked(self, run: RunRecord, blocked: Blocked | None, event: str) -> None:
        """End a claimed run that may not go on, with why (logged and audited)."""
        blocked = blocked or Blocked(SkipReason.PLAN_INVALID, "no plan")
        log.info(
            event,
            run_id=run.run_id,
            rule=run.rule_id,
            reason=blocked.reason.value,
            detail=blocked.detail,
        )
        await self._executor.skip_run(run, blocked.reason, blocked.detail)

    async def _recheck(
        self, run: RunRecord
    ) -> tuple[LoadedRule | None, Alert | None, Plan | None, Blocked | None]:
        """What every resume checks first: the rule (exists, enabled), the run's alert, and the
        plan re-made for it (valid, still the run's steps). `blocked` says why not."""
        stored = await self._alert_log.get_alert(run.alert_id)
        alert = stored.alert if stored is not None else None
        loaded = self._rulebook.current.rule(run.rule_id)
        blocked = resume_block(run.rule_id, loaded, alert)
        plan: Plan | None = None
        if blocked is None and loaded is not None and alert is not None:
            try:
                plan = plan_rule(loaded, alert, self._catalog, global_dry_run=self._dry_run)
                blocked = plan_mismatch(run, plan)
            except PlanError as exc:
                blocked = Blocked(SkipReason.PLAN_INVALID, str(exc))
        return loaded, alert, plan, blocked

    def _staleness(
        self, run: RunRecord, plan: Plan, alert: Alert, approval: Approval
    ) -> Stale | None:
        """The approved step as it would run now, compared with what the approver saw."""
        planned = next(p for p in plan.steps if p.step_id == approval.step_id)
        params = params_now(run, planned, alert, self._catalog)
        shown = redact(self._catalog.describe(planned.action, params))
        staleness = approval_staleness(approval.action, approval.params, planned.action, shown)
        if staleness is None:
            return None
        return Stale(run, planned, shown, approval.reason, staleness)

    async def _park_again(self, run: RunRecord, stale: Stale, approval: Approval) -> Stale | None:
        """Keep the run waiting, its step showing the new request, and audit `approval_stale`:
        which approval, both digests, what changed, both requests."""
        now = self._clock.now()
        step = run.step(stale.planned.step_id).model_copy(update={"params": stale.params})
        parked = replace_step(run, step, now)
        if not await self._run_store.replace_run_if(parked, RunState.WAITING_APPROVAL):
            return None  # a resolution cancelled it meanwhile
        await self._recorder.audit(
            AuditKind.APPROVAL_STALE,
            parked,
            step_id=approval.step_id,
            reason="the step changed after it was approved",
            details={
                "approval_id": approval.approval_id,
                "approved_digest": stale.staleness.approved_digest,
                "current_digest": stale.staleness.current_digest,
                "changed": list(stale.staleness.changed),
                "approved": {"action": approval.action, "params": approval.params},
                "current": {"action": stale.planned.action, "params": stale.params},
            },
        )
        log.warning(
            "approval_stale",
            run_id=run.run_id,
            rule=run.rule_id,
            step=approval.step_id,
            approval_id=approval.approval_id,
            changed=",".join(stale.staleness.changed),
        )
        return Stale(parked, stale.planned, stale.params, stale.reason, stale.staleness)


def _skip_refused(run: RunRecord, approval: Approval, now: datetime) -> RunRecord:
    """The step of a rejected or expired approval is skipped with that reason."""
    step = run.step(approval.step_id)
    if step.state is not StepState.WAITING_APPROVAL:
        return run
    reason = (
        SkipReason.APPROVAL_REJECTED
        if approval.state is ApprovalState.REJECTED
        else SkipReason.APPROVAL_EXPIRED
    )
    return replace_step(run, move_step(step, StepState.SKIPPED, now, reason=reason.value), now)
