"""Post-incident timeline of one run: what was detected, checked, approved, done and how it ended.

Pure: built from the run record and its audit trail, no IO. Step classes: `log` and `GET`
`http.request` steps are diagnostics; every other action is treated as an action (containment),
whose entry says whether its effect was verified (the `verified` the action reported, kept in
the step's audit details; older records may have it in the output).
Steps with no audit event (pruned trail) and a finished run with no end event are filled in
from the run record, so the timeline never silently misses a step. A step entry names the
replica that ran it and, once it ran, the request it sent (values as sent, secrets redacted).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from responder.models.runs import (
    TERMINAL_RUN_STATES,
    TERMINAL_STEP_STATES,
    AuditEvent,
    AuditKind,
    RunRecord,
    StepRecord,
    StepState,
)

DIAGNOSTIC_ACTIONS = frozenset({"log"})
_TEXT_MAX = 160
_SENT_MAX = 600  # the request a step sent: long enough for a PATCH body with its values
_SENT_LINE = ("method", "url", "path")
_SENT_BODY = ("headers", "params", "json", "body", "data", "query", "command", "args")

_STEP_KINDS = {
    AuditKind.STEP_SUCCEEDED: StepState.SUCCEEDED,
    AuditKind.STEP_FAILED: StepState.FAILED,
    AuditKind.STEP_SKIPPED: StepState.SKIPPED,
    AuditKind.STEP_WOULD_RUN: StepState.SKIPPED,
    AuditKind.STEP_OUTCOME_UNKNOWN: StepState.OUTCOME_UNKNOWN,
}
_END_KINDS = frozenset(
    {
        AuditKind.RUN_FINISHED,
        AuditKind.RUN_CANCELLED,
        AuditKind.RUN_ABANDONED,
        AuditKind.RUN_SKIPPED,
    }
)


class TimelineKind(StrEnum):
    """What a timeline entry is about."""

    DETECTION = "detection"
    DIAGNOSTIC = "diagnostic"
    APPROVAL = "approval"
    ACTION = "action"
    RESOLUTION = "resolution"
    NOTE = "note"


class TimelineEntry(BaseModel):
    """One line of the timeline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    kind: TimelineKind
    text: str


def is_diagnostic(action: str, params: Mapping[str, Any] | None) -> bool:
    """`log` and GET `http.request` (GET is its default method) only look; all else acts."""
    if action in DIAGNOSTIC_ACTIONS:
        return True
    method = str((params or {}).get("method", "GET")).upper()
    return action == "http.request" and method == "GET"


def build_timeline(
    run: RunRecord, audit: Sequence[AuditEvent], alert_name: str | None
) -> list[TimelineEntry]:
    """The run's timeline, ordered by time (events at the same instant keep audit order)."""
    entries: list[TimelineEntry] = []
    seen_steps: set[str] = set()
    matched = False
    ended = False
    for event in audit:
        if event.run_id not in (None, run.run_id):
            continue
        if event.kind is AuditKind.RULE_MATCHED:
            matched = True
            name = alert_name or event.details.get("alert")
            entries.append(_detection(event.at, run, name))
        elif event.kind in _STEP_KINDS and event.step_id:
            seen_steps.add(event.step_id)
            entries.append(_step_entry(event.at, _step_for(run, event), event))
        elif event.kind.value.startswith("approval_"):
            entries.append(
                TimelineEntry(at=event.at, kind=TimelineKind.APPROVAL, text=_approval_text(event))
            )
        elif event.kind in _END_KINDS:
            ended = True
            entries.append(
                TimelineEntry(at=event.at, kind=TimelineKind.RESOLUTION, text=_end_text(event, run))
            )
        elif event.kind is AuditKind.RUN_TAKEN_OVER:
            text = (
                f"taken over by `{_clean(str(event.details.get('instance', '?')))}` from "
                f"`{_clean(str(event.details.get('previous_owner', '?')))}` (its replica stopped)"
            )
            entries.append(TimelineEntry(at=event.at, kind=TimelineKind.NOTE, text=text))
        elif event.kind is AuditKind.STEP_SETTLED:
            observed = event.details.get("observed", "?")
            text = (
                f"`{_clean(event.step_id or '?')}` settled after recovery: its read-back was "
                f"{_clean(str(observed))} -> {_clean(event.reason or '?')}"
            )
            entries.append(TimelineEntry(at=event.at, kind=TimelineKind.NOTE, text=text))
        elif event.kind is AuditKind.RUN_DELAYED:
            text = f"waiting for the rule's `for:` delay until {event.details.get('until', '?')}"
            entries.append(TimelineEntry(at=event.at, kind=TimelineKind.NOTE, text=text))
    if not matched:
        entries.append(_detection(run.created_at, run, alert_name))
    for step in run.steps:
        if step.step_id not in seen_steps and step.state in TERMINAL_STEP_STATES:
            entries.append(_step_entry(step.finished_at or run.updated_at, step, None))
    if not ended and run.state in TERMINAL_RUN_STATES:
        text = f"run {run.state.value}" + (f": {run.reason}" if run.reason else "")
        entries.append(TimelineEntry(at=run.updated_at, kind=TimelineKind.RESOLUTION, text=text))
    return sorted(entries, key=lambda e: _utc(e.at))


def render_markdown(entries: Sequence[TimelineEntry], run: RunRecord) -> str:
    """A `## Timeline` section (post-mortem template): one `- **HH:MM:SS UTC** — text` a line;
    an entry on another day than the run's start shows its date too."""
    first_day = _utc(entries[0].at if entries else run.created_at).date()
    header = (
        f"Rule `{run.rule_id}`, run `{run.run_id}` ({run.state.value}"
        f"{', dry run' if run.dry_run else ''}), {first_day.isoformat()}"
    )
    lines = ["## Timeline", "", header, ""]
    for entry in entries:
        at = _utc(entry.at)
        stamp = (
            at.strftime("%H:%M:%S") if at.date() == first_day else at.strftime("%Y-%m-%d %H:%M:%S")
        )
        lines.append(f"- **{stamp} UTC** — {entry.text}")
    return "\n".join(lines) + "\n"


def _detection(at: datetime, run: RunRecord, alert_name: str | None) -> TimelineEntry:
    alert = f"alert `{_clean(alert_name)}`" if alert_name else f"alert #{run.alert_id}"
    text = f"detection: {alert} ({run.source.value}) matched rule `{run.rule_id}`"
    return TimelineEntry(at=at, kind=TimelineKind.DETECTION, text=text)


def _step_for(run: RunRecord, event: AuditEvent) -> StepRecord:
    try:
        return run.step(event.step_id or "")
    except KeyError:
        action = str(event.details.get("action", "?"))
        return StepRecord(step_id=event.step_id or "?", action=action, state=StepState.PLANNED)


def _step_entry(at: datetime, step: StepRecord, event: AuditEvent | None) -> TimelineEntry:
    details = event.details if event else {}
    action = str(details.get("action", step.action))
    params = details.get("params", step.params)
    diagnostic = is_diagnostic(action, params if isinstance(params, Mapping) else None)
    kind = TimelineKind.DIAGNOSTIC if diagnostic else TimelineKind.ACTION
    state = _STEP_KINDS.get(event.kind, step.state) if event else step.state
    instance = details.get("instance") or step.instance
    on = f" — on `{_clean(str(instance))}`" if instance else ""
    label = f"{'diagnostic' if diagnostic else 'action'} `{step.step_id}` ({action})"
    if event is not None and event.kind is AuditKind.STEP_WOULD_RUN:
        return TimelineEntry(at=at, kind=kind, text=f"{label} would run (dry run){on}")
    if state is StepState.SKIPPED:
        reason = (event.reason if event else None) or step.reason or "no reason recorded"
        return TimelineEntry(at=at, kind=kind, text=f"{label} skipped: {reason}{on}")
    finding = _finding(
        step.output, str(details.get("error") or step.error or ""), details.get("summary")
    )
    if state is StepState.SUCCEEDED:
        text = f"{label} ok"
    elif state is StepState.FAILED:
        text = f"{label} failed"
    else:
        text = f"{label} {state.value}"
    if not diagnostic and state in (StepState.SUCCEEDED, StepState.FAILED):
        text += _verified(details.get("verified", (step.output or {}).get("verified")))
    text += f" — {finding}" if finding else ""
    sent = details.get("sent", step.sent)
    if isinstance(sent, Mapping) and sent and action not in DIAGNOSTIC_ACTIONS:  # `log` sends none
        text += f" — sent {sent_text(sent)}"
    return TimelineEntry(at=at, kind=kind, text=text + on)


def sent_text(sent: Mapping[str, Any]) -> str:
    """The request a step sent, on one bounded line in backticks: its method and target, then
    the parts that carry values (headers but Content-Type, body), or the whole record."""
    line = [_flat_value(sent[k]) for k in _SENT_LINE if sent.get(k) is not None]
    parts: dict[str, Any] = {}
    for key in (*_SENT_BODY, "not_sent"):
        value = sent.get(key)
        if key == "headers" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if str(k).lower() != "content-type"}
        if value not in (None, {}, [], ""):
            parts[key] = value
    if not line:
        parts = dict(sent)
    shown = [f"{k}={json.dumps(v, separators=(',', ':'), default=str)}" for k, v in parts.items()]
    one = " ".join(" ".join([*line, *shown]).replace("`", "'").split())
    one = one if len(one) <= _SENT_MAX else one[: _SENT_MAX - 1] + "…"
    return f"`{one}`"


def _flat_value(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _finding(output: Mapping[str, Any] | None, error: str, summary: object = None) -> str:
    parts: list[str] = []
    out = output or {}
    if isinstance(summary, str) and summary and summary != out.get("message"):
        parts.append(_clean(summary))
    if "status" in out:
        parts.append(f"status {out['status']}")
    if isinstance(out.get("message"), str):
        parts.append(f'"{_clean(out["message"])}"')
    if error:
        parts.append(f"error: {_clean(error)}")
    return "; ".join(parts)


def _verified(verified: object) -> str:
    """The step's own read-back verdict (recorded in the audit details of the step)."""
    if verified is True:
        return ", verified"
    if verified is False:
        return ", NOT verified"
    return ", verification not recorded"


def _approval_text(event: AuditEvent) -> str:
    step = f"step `{event.step_id}`" if event.step_id else "a step"
    comment = f': "{_clean(event.reason)}"' if event.reason else ""
    if event.kind is AuditKind.APPROVAL_REQUESTED:
        why = "storm brake" if event.reason == "storm_brake" else "the rule asks"
        expires = event.details.get("expires_at")
        until = f", expires {expires}" if expires else ""
        return f"approval requested for {step} ({event.details.get('action', '?')}; {why}{until})"
    if event.kind is AuditKind.APPROVAL_GRANTED:
        return f"{step} approved by {event.actor}{comment}"
    if event.kind is AuditKind.APPROVAL_REJECTED:
        return f"{step} rejected by {event.actor}{comment}"
    if event.kind is AuditKind.APPROVAL_STALE:
        changed = ", ".join(str(c) for c in event.details.get("changed") or ()) or "?"
        return f"approval for {step} is stale: the step changed ({_clean(changed)}); not run"
    return f"approval for {step} expired without a decision"


def _end_text(event: AuditEvent, run: RunRecord) -> str:
    reason = f": {_clean(event.reason)}" if event.reason else ""
    if event.kind is AuditKind.RUN_FINISHED:
        state = event.details.get("state", run.state.value)
        dry = " (dry run)" if event.details.get("dry_run") else ""
        return f"run finished: {state}{dry}"
    if event.kind is AuditKind.RUN_CANCELLED:
        return f"run cancelled{reason}"
    if event.kind is AuditKind.RUN_SKIPPED:
        return f"run skipped{reason}"
    owner = event.details.get("owner")
    return f"run abandoned{reason}" + (f" (owner {owner})" if owner else "")


def _clean(text: str) -> str:
    """One line, bounded: comments and messages are operator or alert input."""
    one = " ".join(text.split())
    return one if len(one) <= _TEXT_MAX else one[: _TEXT_MAX - 1] + "…"


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
