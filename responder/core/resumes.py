"""Pure: whether a parked run may resume, and whether an approved step is still the one approved.

A run parks for a rule's `for:` delay or for an approval; while it waits, the rule may be
disabled, edited or removed. Every resume re-checks it here before anything acts: the rule
exists and is enabled, the plan still fits the run, the alert may still be contained, and an
approved step renders to exactly what the approver saw (its digest is unchanged).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from responder.models.alerts import Alert, AlertStatus
from responder.models.plans import Plan
from responder.models.rules import LoadedRule, StatusSelector
from responder.models.runs import RunRecord, SkipReason

DIGEST_PREFIX = "sha256:"


@dataclass(frozen=True)
class Blocked:
    """Why a resume must not go on: the bounded reason and a sentence for the audit."""

    reason: SkipReason
    detail: str


def approval_digest(action: str, params: Mapping[str, Any] | None) -> str:
    """A stable digest of a step's action and rendered (redacted) params: what an approver saw.

    Canonical JSON (sorted keys, no whitespace), so the same request always has the same
    digest whatever the key order; any change of the action or of a value changes it.
    """
    document = {"action": action, "params": dict(params) if params is not None else None}
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return DIGEST_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def changed_fields(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, prefix: str = "params"
) -> list[str]:
    """The dotted paths whose values differ between two rendered param documents, sorted."""
    if before == after:
        return []
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return [prefix]
    changed: list[str] = []
    for key in sorted(set(before) | set(after), key=str):
        path = f"{prefix}.{key}"
        old, new = before.get(key), after.get(key)
        if key not in before or key not in after:
            changed.append(path)
        elif isinstance(old, Mapping) and isinstance(new, Mapping):
            changed += changed_fields(old, new, path)
        elif old != new:
            changed.append(path)
    return changed


def may_contain(loaded: LoadedRule, alert: Alert) -> bool:
    """Resolved alerts never trigger containment unless the rule asks for `status: resolved`."""
    return alert.status is AlertStatus.FIRING or loaded.rule.match.status is StatusSelector.RESOLVED


def resume_block(rule_id: str, loaded: LoadedRule | None, alert: Alert | None) -> Blocked | None:
    """Whether a parked run of `rule_id` may resume now (None) or why not."""
    if loaded is None:
        return Blocked(SkipReason.RULE_DISABLED, f"rule {rule_id} was removed while the run waited")
    if not loaded.rule.enabled:
        return Blocked(
            SkipReason.RULE_DISABLED, f"rule {rule_id} was disabled while the run waited"
        )
    if alert is None:
        return Blocked(SkipReason.PLAN_INVALID, "the run's alert is no longer in the alert log")
    return None


def plan_mismatch(run: RunRecord, plan: Plan) -> Blocked | None:
    """Whether the re-planned rule still has the run's steps (same ids, same actions)."""
    recorded = [(s.step_id, s.action) for s in run.steps]
    planned = [(s.step_id, s.action) for s in plan.steps]
    if recorded == planned:
        return None
    return Blocked(
        SkipReason.PLAN_INVALID,
        "the rule's steps changed while the run waited: "
        f"{_steps(recorded)} became {_steps(planned)}",
    )


@dataclass(frozen=True)
class Staleness:
    """An approved step that no longer renders to what was approved."""

    approved_digest: str
    current_digest: str
    changed: list[str]


def approval_staleness(
    approved_action: str,
    approved_params: Mapping[str, Any] | None,
    action: str,
    params: Mapping[str, Any] | None,
) -> Staleness | None:
    """None when the step about to run is the one approved; otherwise both digests and what
    changed (`action` and/or the dotted param paths)."""
    before = approval_digest(approved_action, approved_params)
    now = approval_digest(action, params)
    if before == now:
        return None
    changed = ["action"] if approved_action != action else []
    changed += changed_fields(approved_params, params)
    return Staleness(before, now, changed)


def _steps(steps: list[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{step_id} ({action})" for step_id, action in steps) + "]"
