"""Pure: what a replica does with each step of a run whose owner died (its lease expired).

The run is continued at the step boundary, never restarted and never blindly repeated:

- a completed step (succeeded, failed, skipped, ...) and a step not started yet stay as they
  are: completed steps are never repeated, planned ones run in order as usual;
- an interrupted diagnostic (running, diagnostic class) reads only: it runs again;
- an interrupted containment step may have acted: it becomes `outcome_unknown` and is settled
  by the action's read-back (`settlement`), never recorded as `cancelled`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from responder.core.transitions import move_step
from responder.models.plans import ActionClass
from responder.models.runs import RunRecord, StepState

RERUN_REASON = "interrupted when its replica stopped; runs again (a diagnostic only reads)"
UNKNOWN_REASON = "interrupted when its replica stopped after it may have acted"
VERIFIED_NOTE = "verified after recovery"


class Observation(StrEnum):
    """A containment action's read-back of its own effect (`ActionSpec.observe`)."""

    PRESENT = "present"  # the target is in the state the step would have put it in
    ABSENT = "absent"  # it is not: the step did not act (or its effect was undone)
    UNKNOWN = "unknown"  # the read-back cannot tell (unreachable, unreadable, ambiguous)


class Treatment(StrEnum):
    """What a takeover does with one step."""

    KEEP = "keep"  # completed, waiting or not started: as it is
    RERUN = "rerun"  # an interrupted diagnostic: planned again
    OUTCOME_UNKNOWN = "outcome_unknown"  # an interrupted containment step: settle it


class Settlement(StrEnum):
    """How an `outcome_unknown` step is settled from its read-back."""

    VERIFIED = "verified"  # present: succeeded, verified after recovery
    RUN_AGAIN = "run_again"  # absent, idempotent, may contain: planned again (same lock)
    SKIP = "skip"  # absent, containment blocked meanwhile (alert resolved, ...): skipped
    APPROVAL = "approval"  # not idempotent, or no read-back: a human decides
    STAYS_UNKNOWN = "stays_unknown"  # cannot tell, and containment may not run any more


def treatment(state: StepState, action_class: ActionClass) -> Treatment:
    """The treatment of a step found in `state` in a run whose owner died."""
    if state is not StepState.RUNNING:
        return Treatment.KEEP
    if action_class is ActionClass.DIAGNOSTIC:
        return Treatment.RERUN
    return Treatment.OUTCOME_UNKNOWN


def treatments(run: RunRecord, classes: Mapping[str, ActionClass]) -> dict[str, Treatment]:
    """Each step's treatment; a step whose class is unknown counts as containment (it may act)."""
    return {
        s.step_id: treatment(s.state, classes.get(s.step_id, ActionClass.CONTAINMENT))
        for s in run.steps
    }


def interrupted(run: RunRecord, classes: Mapping[str, ActionClass], at: datetime) -> RunRecord:
    """`run` with its interrupted steps moved: diagnostics planned again, containment steps
    `outcome_unknown` (the run's own state and owner are the caller's)."""
    plan = treatments(run, classes)
    steps = []
    for step in run.steps:
        match plan[step.step_id]:
            case Treatment.RERUN:
                step = move_step(step, StepState.PLANNED, at, reason=RERUN_REASON)
            case Treatment.OUTCOME_UNKNOWN:
                step = move_step(step, StepState.OUTCOME_UNKNOWN, at, reason=UNKNOWN_REASON)
            case Treatment.KEEP:
                pass
        steps.append(step)
    return run.model_copy(update={"steps": tuple(steps), "updated_at": at})


def settlement(observed: Observation | None, *, idempotent: bool, blocked: bool) -> Settlement:
    """Settle an `outcome_unknown` step. `observed` is None when the action has no read-back;
    `blocked` when containment may not run now (alert resolved, rule disabled, no
    coordination)."""
    if observed is Observation.PRESENT:
        return Settlement.VERIFIED
    if observed is Observation.ABSENT:
        if blocked:
            return Settlement.SKIP
        return Settlement.RUN_AGAIN if idempotent else Settlement.APPROVAL
    return Settlement.STAYS_UNKNOWN if blocked else Settlement.APPROVAL
