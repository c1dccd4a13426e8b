"""Pure planning: render a matched rule's guard key and step parameters for one alert."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

from responder.core.templating import build_context, referenced_roots, render_value
from responder.errors import ResponderError
from responder.models.alerts import Alert
from responder.models.plans import ActionClass, Plan, PlannedStep
from responder.models.rules import LoadedRule, StepSpec
from responder.models.runs import TERMINAL_STEP_STATES, RunRecord, StepRecord, StepState


class ActionCatalog(Protocol):
    """What planning needs to know about actions (the action registry provides it)."""

    def action_class(self, name: str) -> ActionClass:
        """Diagnostic or containment, before the params are known (the safe assumption)."""
        ...

    def classify(self, name: str, params: Mapping[str, Any]) -> ActionClass:
        """The class of one concrete call, once its params are known."""
        ...

    def default_timeout(self, name: str) -> timedelta:
        """The action's own deadline when the step sets none."""
        ...

    def best_effort(self, name: str) -> bool:
        """Whether a failure of this action is tolerated unless the step says otherwise."""
        ...

    def validate_params(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate rendered params (model + allowlists); return them normalised.

        Raises a ResponderError subclass whose message names the offending field.
        """
        ...


class PlanError(ResponderError):
    """A rule matched but could not be planned for this alert (bad render or policy)."""

    def __init__(self, rule_id: str, step_id: str | None, message: str) -> None:
        self.rule_id = rule_id
        self.step_id = step_id
        where = f"step {step_id}: " if step_id else ""
        super().__init__(f"rule {rule_id}: {where}{message}")


def idempotency_key(rule_id: str, alert_identity: str) -> str:
    """Key shared by every attempt to run `rule_id` for one alert occurrence."""
    digest = hashlib.sha256(f"{rule_id}\0{alert_identity}".encode()).hexdigest()
    return digest[:32]


def dedup_key(rule_id: str, alert_identity: str) -> str:
    """One claim per rule and alert occurrence, whatever the plan becomes."""
    return f"{rule_id}:{alert_identity}"


def plan_rule(
    loaded: LoadedRule, alert: Alert, catalog: ActionCatalog, *, global_dry_run: bool
) -> Plan:
    """Plan `loaded` for `alert`: render and validate everything that can be rendered now.

    Steps whose templates read `steps.*` keep `params=None` and are rendered just before
    they run. Raises PlanError when a template or parameter is invalid for this alert.
    """
    rule = loaded.rule
    context = build_context(alert, {})
    guard_suffix = alert.fingerprint
    if rule.guards.key:
        try:
            guard_suffix = str(render_value(rule.guards.key, context))
        except ResponderError as exc:
            raise PlanError(rule.id, None, f"guards.key: {exc}") from exc
    steps = tuple(_plan_step(rule.id, spec, context, catalog) for spec in rule.steps)
    key = idempotency_key(rule.id, alert.identity)
    return Plan(
        rule_id=rule.id,
        alert_identity=alert.identity,
        guard_key=f"{rule.id}:{guard_suffix}",
        dedup_key=dedup_key(rule.id, alert.identity),
        idempotency_key=key,
        for_=rule.guards.for_,
        cooldown=rule.guards.cooldown,
        budgets=rule.guards.budget,
        dry_run=global_dry_run or rule.dry_run,
        steps=steps,
    )


def _plan_step(
    rule_id: str, spec: StepSpec, context: Mapping[str, Any], catalog: ActionCatalog
) -> PlannedStep:
    try:
        action_class = catalog.action_class(spec.action)
        timeout = spec.timeout or catalog.default_timeout(spec.action)
    except ResponderError as exc:
        raise PlanError(rule_id, spec.id, str(exc)) from exc
    params: dict[str, Any] | None = None
    if "steps" not in referenced_roots(spec.with_):
        params = render_step_params(rule_id, spec.id, spec.action, spec.with_, context, catalog)
        action_class = catalog.classify(spec.action, params)
    return PlannedStep(
        step_id=spec.id,
        action=spec.action,
        action_class=action_class,
        params=params,
        template=spec.with_,
        condition=spec.if_,
        approval_required=spec.needs_approval,
        approval_ttl=spec.approval.ttl if spec.approval else None,
        approvers=spec.approval.approvers if spec.approval else (),
        timeout=timeout,
        continue_on_failure=(
            catalog.best_effort(spec.action)
            if spec.continue_on_failure is None
            else spec.continue_on_failure
        ),
    )


def render_step_params(
    rule_id: str,
    step_id: str,
    action: str,
    template: Mapping[str, Any],
    context: Mapping[str, Any],
    catalog: ActionCatalog,
) -> dict[str, Any]:
    """Render a step's `with:` over `context` and validate it for its action."""
    try:
        rendered = render_value(dict(template), context)
        return catalog.validate_params(action, rendered)
    except ResponderError as exc:
        raise PlanError(rule_id, step_id, str(exc)) from exc


def step_view(
    state: str, ok: bool | None, summary: str, output: Mapping[str, Any]
) -> dict[str, Any]:
    """How one finished step looks to later templates as `steps.<id>`."""
    return {
        "state": state,
        "ok": bool(ok),
        "succeeded": state == "succeeded",
        "failed": state == "failed",
        "skipped": state == "skipped",
        "summary": summary,
        "output": dict(output),
    }


def finished_step_view(step: StepRecord) -> dict[str, Any]:
    """How a recorded step looks to later templates (`steps.<id>`)."""
    return step_view(
        step.state.value, step.state is StepState.SUCCEEDED, step.error or "", step.output or {}
    )


def params_now(
    run: RunRecord, planned: PlannedStep, alert: Alert, catalog: ActionCatalog
) -> dict[str, Any]:
    """The params `planned` runs with now: as planned, or, when its `with:` reads earlier
    steps, rendered over the run's finished steps (as the executor renders it)."""
    if planned.params is not None:
        return planned.params
    done = {s.step_id: finished_step_view(s) for s in run.steps if s.state in TERMINAL_STEP_STATES}
    return render_step_params(
        run.rule_id,
        planned.step_id,
        planned.action,
        planned.template,
        build_context(alert, done),
        catalog,
    )
