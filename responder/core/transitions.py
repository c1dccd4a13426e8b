"""Pure state transitions of runs and steps: which moves are legal, and the moved record."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from responder.models.runs import (
    TERMINAL_RUN_STATES,
    RunRecord,
    RunState,
    StepRecord,
    StepState,
)

STEP_MOVES: dict[StepState, frozenset[StepState]] = {
    StepState.PLANNED: frozenset(
        {StepState.RUNNING, StepState.SKIPPED, StepState.WAITING_APPROVAL, StepState.CANCELLED}
    ),
    StepState.WAITING_APPROVAL: frozenset(
        {StepState.RUNNING, StepState.SKIPPED, StepState.CANCELLED}
    ),
    # back to PLANNED: an interrupted diagnostic runs again after a takeover; OUTCOME_UNKNOWN:
    # an interrupted containment step may have acted (never CANCELLED: see core/takeovers)
    StepState.RUNNING: frozenset(
        {
            StepState.SUCCEEDED,
            StepState.FAILED,
            StepState.CANCELLED,
            StepState.PLANNED,
            StepState.OUTCOME_UNKNOWN,
        }
    ),
    # settled by the action's read-back: present -> SUCCEEDED, absent -> PLANNED again (same
    # lock) or SKIPPED (containment blocked meanwhile), unknown -> WAITING_APPROVAL
    StepState.OUTCOME_UNKNOWN: frozenset(
        {StepState.SUCCEEDED, StepState.PLANNED, StepState.SKIPPED, StepState.WAITING_APPROVAL}
    ),
    StepState.SKIPPED: frozenset(),
    StepState.SUCCEEDED: frozenset(),
    StepState.FAILED: frozenset(),
    StepState.CANCELLED: frozenset(),
}

RUN_MOVES: dict[RunState, frozenset[RunState]] = {
    RunState.PENDING: frozenset(
        {
            RunState.RUNNING,
            RunState.WAITING_APPROVAL,
            RunState.SKIPPED,
            RunState.CANCELLED,
            RunState.ABANDONED,
            RunState.PENDING,
        }
    ),
    RunState.WAITING_APPROVAL: frozenset(
        {
            RunState.RUNNING,
            RunState.SKIPPED,
            RunState.CANCELLED,
            RunState.ABANDONED,
            RunState.FAILED,
            RunState.SUCCEEDED,
        }
    ),
    RunState.RUNNING: frozenset(
        {
            RunState.WAITING_APPROVAL,
            RunState.SUCCEEDED,
            RunState.FAILED,
            RunState.SKIPPED,
            RunState.CANCELLED,
            RunState.ABANDONED,
        }
    ),
    **{state: frozenset() for state in TERMINAL_RUN_STATES},
}


class InvalidTransitionError(ValueError):
    """A move that the state machine does not allow (a bug, never user input)."""


def move_step(step: StepRecord, to: StepState, at: datetime, **changes: Any) -> StepRecord:
    """Return `step` in state `to`, stamping start/finish times; raise on an illegal move."""
    if to not in STEP_MOVES[step.state]:
        raise InvalidTransitionError(f"step {step.step_id}: {step.state} -> {to} is not allowed")
    update: dict[str, Any] = {"state": to, **changes}
    if to is StepState.RUNNING:
        update["started_at"] = at
        update["attempts"] = step.attempts + 1
    if to in (StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED, StepState.CANCELLED):
        update["finished_at"] = at
    return step.model_copy(update=update)


def move_run(run: RunRecord, to: RunState, at: datetime, reason: str | None = None) -> RunRecord:
    """Return `run` in state `to` (reason kept when given); raise on an illegal move."""
    if to not in RUN_MOVES[run.state]:
        raise InvalidTransitionError(f"run {run.run_id}: {run.state} -> {to} is not allowed")
    update: dict[str, Any] = {"state": to, "updated_at": at}
    if reason is not None:
        update["reason"] = reason
    return run.model_copy(update=update)


def replace_step(run: RunRecord, step: StepRecord, at: datetime) -> RunRecord:
    """Return `run` with the step of the same id replaced by `step`."""
    steps = tuple(step if s.step_id == step.step_id else s for s in run.steps)
    return run.model_copy(update={"steps": steps, "updated_at": at})


def cancel_open_steps(run: RunRecord, at: datetime, reason: str) -> RunRecord:
    """Cancel every step that has not finished (planned, waiting, running)."""
    steps = tuple(
        move_step(s, StepState.CANCELLED, at, reason=reason)
        if StepState.CANCELLED in STEP_MOVES[s.state]
        else s
        for s in run.steps
    )
    return run.model_copy(update={"steps": steps, "updated_at": at})


def skip_open_steps(run: RunRecord, at: datetime, reason: str) -> RunRecord:
    """Skip every step still planned or waiting (used when a whole run is skipped)."""
    steps = tuple(
        move_step(s, StepState.SKIPPED, at, reason=reason)
        if s.state in (StepState.PLANNED, StepState.WAITING_APPROVAL)
        else s
        for s in run.steps
    )
    return run.model_copy(update={"steps": steps, "updated_at": at})


def final_state(run: RunRecord, tolerated: Collection[str] = ()) -> RunState:
    """The terminal state a run reaches once no step is left to run.

    A failed step whose id is in `tolerated` (continue_on_failure) stays failed but does not
    fail the run.
    """
    states = {
        s.state for s in run.steps if not (s.state is StepState.FAILED and s.step_id in tolerated)
    }
    if StepState.FAILED in states or StepState.OUTCOME_UNKNOWN in states:
        return RunState.FAILED  # an unsettled step: whether it acted is not known
    if states and states <= {StepState.SKIPPED}:
        return RunState.SKIPPED
    return RunState.SUCCEEDED
