"""Execution of a run's steps in order: conditions, dry-run, approvals, retries, deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import structlog
from pydantic import ValidationError

from responder.actions.base import ActionContext, StepResult
from responder.actions.catalog import PolicyCatalog
from responder.core.planning import PlanError, finished_step_view, params_now, render_step_params
from responder.core.redaction import redact, truncate
from responder.core.takeovers import VERIFIED_NOTE, Observation, Settlement, settlement
from responder.core.templating import build_context, evaluate_condition
from responder.core.transitions import (
    final_state,
    move_run,
    move_step,
    replace_step,
    skip_open_steps,
)
from responder.engine.containment_guard import ContainmentGuard, Entry, GuardDecision
from responder.engine.recording import RunRecorder
from responder.errors import ResponderError, TemporaryError
from responder.models.alerts import Alert
from responder.models.plans import ActionClass, Plan, PlannedStep
from responder.models.runs import (
    TERMINAL_STEP_STATES,
    AuditEvent,
    AuditKind,
    RunRecord,
    RunState,
    SkipReason,
    StepRecord,
    StepState,
)
from responder.ports.clock import Clock

log = structlog.get_logger("responder.engine")

ContextFactory = Callable[[str, str, str], ActionContext]
"""(run_id, rule_id, step_id) -> the ports and limits an action may use."""

ParkHook = Callable[[RunRecord, PlannedStep, "dict[str, Any] | None", str], Awaitable[Any]]
"""(run, step, rendered params, reason) -> records the approval request for a parked step."""


class Executor:
    """Runs the steps of one run, recording every transition as it happens."""

    def __init__(
        self,
        catalog: PolicyCatalog,
        contexts: ContextFactory,
        recorder: RunRecorder,
        clock: Clock,
        guard: ContainmentGuard,
        *,
        max_attempts: int,
        output_max_bytes: int,
        instance_id: str,
    ) -> None:
        self._catalog = catalog
        self._instance = instance_id  # stamped on every step this replica moves
        self.catalog = catalog
        self.on_park: ParkHook | None = None
        self._guard = guard
        self._contexts = contexts
        self._recorder = recorder
        self._clock = clock
        self._max_attempts = max_attempts
        self._output_max_bytes = output_max_bytes

    async def execute(
        self,
        run: RunRecord,
        plan: Plan,
        alert: Alert,
        *,
        containment_block: SkipReason | None = None,
        approved: Collection[str] = (),
    ) -> RunRecord:
        """Run every step that is still open; park the run if a step needs an approval.

        With `containment_block` set, containment steps are skipped with that reason
        (resolved alert, coordination unavailable) while diagnostics still run.
        """
        if run.state is not RunState.RUNNING:
            # saved with the first step's change, before any action is called: one durable
            # write less between the alert and its first step
            run = move_run(run, RunState.RUNNING, self._clock.now())
        results: dict[str, dict[str, Any]] = {}
        failed = False
        for planned in plan.steps:
            step = run.step(planned.step_id)
            if step.state in TERMINAL_STEP_STATES:
                results[step.step_id] = finished_step_view(step)
                failed = failed or (
                    step.state is StepState.FAILED and not planned.continue_on_failure
                )
                continue
            try:
                step = await self._one(
                    run, plan, planned, step, alert, results, failed, containment_block, approved
                )
            except asyncio.CancelledError:
                self._interrupted(run, planned.step_id)
                raise
            run = replace_step(run, step, self._clock.now())
            if step.state is StepState.WAITING_APPROVAL:
                run = move_run(run, RunState.WAITING_APPROVAL, self._clock.now())
                await self._recorder.save(run)
                if self.on_park is not None:
                    await self.on_park(run, planned, step.params, step.reason or "rule")
                return run
            results[step.step_id] = finished_step_view(step)
            failed = failed or (step.state is StepState.FAILED and not planned.continue_on_failure)
        tolerated = {p.step_id for p in plan.steps if p.continue_on_failure}
        run = move_run(run, final_state(run, tolerated), self._clock.now())
        details = {"state": run.state.value, "dry_run": run.dry_run}
        finished = self._recorder.event(AuditKind.RUN_FINISHED, run, details=details)
        await self._recorder.save(run, finished)
        self._recorder.run_finished(run)
        return run

    async def _one(
        self,
        run: RunRecord,
        plan: Plan,
        planned: PlannedStep,
        step: StepRecord,
        alert: Alert,
        results: dict[str, dict[str, Any]],
        failed: bool,
        containment_block: SkipReason | None,
        approved: Collection[str],
    ) -> StepRecord:
        if step.state is StepState.WAITING_APPROVAL and planned.step_id not in approved:
            return step  # parked by a takeover (`settle`): it waits for its approval
        context = build_context(alert, results)
        if planned.condition is not None:
            try:
                holds = evaluate_condition(planned.condition, context)
            except ResponderError as exc:
                return await self._finish(run, step, StepState.FAILED, error=f"if: {exc}")
            if not holds:
                return await self._skip(run, step, SkipReason.CONDITION_FALSE)
        elif failed:
            return await self._skip(run, step, SkipReason.PREVIOUS_STEP_FAILED)
        containment = planned.action_class is ActionClass.CONTAINMENT
        if containment and containment_block is not None:
            return await self._skip(run, step, containment_block)
        if plan.dry_run and planned.params is None:
            # Reads outputs of steps that did not run; show the template instead.
            shown_template = {"rendered_at_run_time": redact(planned.template)}
            return await self._skip(run, step, SkipReason.DRY_RUN, params=shown_template)
        try:
            params = planned.params
            if params is None:
                params = render_step_params(
                    run.rule_id,
                    planned.step_id,
                    planned.action,
                    planned.template,
                    context,
                    self._catalog,
                )
        except PlanError as exc:
            return await self._finish(run, step, StepState.FAILED, error=str(exc))
        shown = redact(self._catalog.describe(planned.action, params))
        if plan.dry_run:
            return await self._skip(run, step, SkipReason.DRY_RUN, params=shown)
        if planned.approval_required and planned.step_id not in approved:
            return await self._park(run, step, shown)
        entry = GuardDecision(Entry.PROCEED)
        if containment:
            entry = await self._guard.enter(
                run, planned, self._clock.now(), approved=planned.step_id in approved
            )
            if entry.entry is Entry.SKIP and entry.reason is not None:
                return await self._skip(run, step, entry.reason, params=shown)
            if entry.entry is Entry.WAIT_APPROVAL:
                return await self._park(run, step, shown, reason=entry.reason)
        step = move_step(
            step, StepState.RUNNING, self._clock.now(), params=shown, instance=self._instance
        )
        run = replace_step(run, step, self._clock.now())
        await self._recorder.step(run, step)
        started = time.monotonic()
        try:
            result, attempts, error = await self._attempts(run, planned, params)
        finally:
            await self._guard.leave(entry)
        duration = time.monotonic() - started
        output = truncate(redact(result.output), self._output_max_bytes) if result else None
        state = StepState.SUCCEEDED if result is not None and result.ok else StepState.FAILED
        if result is not None and not result.ok and error is None:
            error = result.summary
        # what went out: the description with the run-time values the action reported (an
        # action that raised reported nothing; `params` still shows what it was to send)
        sent = None
        if result is not None:
            sent = truncate(redact(_filled(shown, result.sent)), self._output_max_bytes)
        done = move_step(
            step,
            state,
            self._clock.now(),
            output=output,
            error=error,
            attempts=attempts,
            sent=sent,
        )
        await self._recorder.step(
            replace_step(run, done, self._clock.now()),
            done,
            duration=duration,
            summary=result.summary if result else "",
            verified=result.verified if result else None,
        )
        return done

    async def skip_run(
        self, run: RunRecord, reason: SkipReason, detail: str, *before: AuditEvent
    ) -> RunRecord:
        """End `run` skipped as a whole: the one transition for a run the gate refused (at
        intake or when a `for:` delay ends) or a resume or takeover found blocked (rule gone,
        plan invalid). Its open steps are skipped with `reason`; the `run_skipped` audit event
        carries `reason` and `detail`, saved with the run and `before` (events not yet
        stored); each step skipped here and the run are counted."""
        now = self._clock.now()
        ended = skip_open_steps(run, now, reason.value)
        ended = move_run(ended, RunState.SKIPPED, now, reason.value)
        skipped = self._recorder.event(
            AuditKind.RUN_SKIPPED, ended, reason=reason.value, details={"detail": detail}
        )
        await self._recorder.save(ended, *before, skipped)
        self._recorder.steps_skipped(
            step for was, step in zip(run.steps, ended.steps, strict=True) if step != was
        )
        self._recorder.run_finished(ended)
        return ended

    async def _attempts(
        self, run: RunRecord, planned: PlannedStep, params: dict[str, Any]
    ) -> tuple[StepResult | None, int, str | None]:
        """Call the action until it answers, retrying temporary errors within the deadline."""
        spec = self._catalog.spec(planned.action)
        model = spec.params_model.model_validate(params)
        context = self._contexts(run.run_id, run.rule_id, planned.step_id)
        attempts = 0
        deadline = time.monotonic() + planned.timeout.total_seconds()
        while True:
            attempts += 1
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(remaining):
                    return await spec.run(model, context), attempts, None
            except TimeoutError:
                return None, attempts, f"timed out after {planned.timeout.total_seconds():g}s"
            except TemporaryError as exc:
                delay = min(max(exc.delay, 0.05) * (2 ** (attempts - 1)), 10.0)
                if attempts >= self._max_attempts or time.monotonic() + delay >= deadline:
                    return None, attempts, f"{exc} (gave up after {attempts} attempts)"
                await asyncio.sleep(delay)
            except ResponderError as exc:
                return None, attempts, str(exc)

    async def _park(
        self,
        run: RunRecord,
        step: StepRecord,
        shown: dict[str, Any],
        reason: SkipReason | None = None,
    ) -> StepRecord:
        """Leave the step waiting for an approval (the rule asks, or the storm brake is on)."""
        if step.state is StepState.WAITING_APPROVAL:
            return step
        changes: dict[str, Any] = {"params": shown, "instance": self._instance}
        if reason is not None:
            changes["reason"] = reason.value
        moved = move_step(step, StepState.WAITING_APPROVAL, self._clock.now(), **changes)
        await self._recorder.save(replace_step(run, moved, self._clock.now()))
        return moved

    async def _skip(
        self,
        run: RunRecord,
        step: StepRecord,
        reason: SkipReason,
        params: dict[str, Any] | None = None,
    ) -> StepRecord:
        changes: dict[str, Any] = {"reason": reason.value, "instance": self._instance}
        if params is not None:
            changes["params"] = params
        done = move_step(step, StepState.SKIPPED, self._clock.now(), **changes)
        await self._recorder.step(replace_step(run, done, self._clock.now()), done)
        return done

    async def _finish(
        self, run: RunRecord, step: StepRecord, state: StepState, *, error: str
    ) -> StepRecord:
        if step.state is StepState.PLANNED and state is StepState.FAILED:
            step = move_step(step, StepState.RUNNING, self._clock.now())
        done = move_step(step, state, self._clock.now(), error=error, instance=self._instance)
        await self._recorder.step(replace_step(run, done, self._clock.now()), done)
        return done

    def _interrupted(self, run: RunRecord, step_id: str) -> None:
        """A run cut off by shutdown is left as last saved, owned by this replica: once its
        lease expires it is taken over (by another replica, or by this one's restart) and
        continued at the step boundary; a containment step cut off mid-call becomes
        `outcome_unknown` there and is settled by its read-back, never called `cancelled`."""
        log.warning(
            "run_interrupted",
            run_id=run.run_id,
            rule=run.rule_id,
            step=step_id,
            detail="shutdown while running; taken over after the lease expires",
        )

    async def settle(
        self,
        run: RunRecord,
        planned: PlannedStep | None,
        step_id: str,
        alert: Alert | None,
        blocked: SkipReason | None,
    ) -> RunRecord:
        """Settle an `outcome_unknown` step (its replica died mid-call) by the action's read-back:
        present -> succeeded (verified after recovery); absent -> planned again if the action is
        idempotent (it then runs under the containment guard like any step), skipped if
        containment is `blocked` now, else waiting for approval; no read-back or an unclear one
        -> waiting for approval (or left `outcome_unknown` when `blocked`). Audited as
        `step_settled` (what was observed, what was decided). Returns the run as saved."""
        step = run.step(step_id)
        spec = self._catalog.spec(step.action)
        observed: Observation | None = None
        error = ""
        if spec.observe is not None and planned is not None:
            try:
                if planned.params is None and alert is None:
                    raise PlanError(
                        run.rule_id, step_id, "the alert is gone: params not renderable"
                    )
                params = planned.params
                if params is None and alert is not None:
                    params = params_now(run, planned, alert, self._catalog)
                model = spec.params_model.model_validate(params)
                context = self._contexts(run.run_id, run.rule_id, step_id)
                async with asyncio.timeout(planned.timeout.total_seconds()):
                    observed = await spec.observe(model, context, step)
            except (ResponderError, TimeoutError, ValidationError) as exc:
                observed, error = Observation.UNKNOWN, str(exc) or type(exc).__name__
        decision = settlement(observed, idempotent=spec.idempotent, blocked=blocked is not None)
        details: dict[str, Any] = {
            "action": step.action,
            "instance": self._instance,
            "observed": observed.value if observed is not None else "no read-back",
            "settlement": decision.value,
        }
        if error:
            details["error"] = error
        settled = self._recorder.event(
            AuditKind.STEP_SETTLED, run, step_id=step_id, reason=decision.value, details=details
        )
        now = self._clock.now()
        changes: dict[str, Any] = {"instance": self._instance}
        match decision:
            case Settlement.VERIFIED:
                output = {"verified": True, "note": VERIFIED_NOTE, "observed": "present"}
                moved = move_step(step, StepState.SUCCEEDED, now, output=output, **changes)
            case Settlement.RUN_AGAIN:
                reason = "its effect read absent after recovery; runs again (idempotent)"
                moved = move_step(step, StepState.PLANNED, now, reason=reason, **changes)
            case Settlement.SKIP:
                assert blocked is not None
                moved = move_step(step, StepState.SKIPPED, now, reason=blocked.value, **changes)
            case Settlement.APPROVAL:
                moved = move_step(
                    step, StepState.WAITING_APPROVAL, now, reason="outcome_unknown", **changes
                )
            case Settlement.STAYS_UNKNOWN:
                moved = step
        run = replace_step(run, moved, now)
        await self._recorder.save(run, settled)
        if moved.state in (StepState.SUCCEEDED, StepState.SKIPPED):
            verified = True if decision is Settlement.VERIFIED else None
            summary = VERIFIED_NOTE if verified else ""
            await self._recorder.step(run, moved, summary=summary, verified=verified)
        log.warning(
            "step_settled",
            run_id=run.run_id,
            rule=run.rule_id,
            step=step_id,
            action=step.action,
            observed=details["observed"],
            settlement=decision.value,
        )
        return run


def _filled(described: dict[str, Any], values: dict[str, Any] | None) -> dict[str, Any]:
    """`described` with `values` (shaped like it) put in place of what it could only
    describe: nested mappings merge, any other value replaces the described one."""
    if not values:
        return described
    filled = dict(described)
    for key, value in values.items():
        here = filled.get(key)
        if isinstance(here, dict) and isinstance(value, dict):
            filled[key] = _filled(here, value)
        else:
            filled[key] = value
    return filled
