"""`k8s.scale`: set a Deployment's replicas through the scale subresource, within bounds.

The rule gives either `replicas` (absolute) or `change` (relative, e.g. +2 or -1) and the
bounds `min` (default 1) and `max` (required with `change`). An absolute value outside the
bounds is refused when the rule is planned; a relative change is clamped to the bounds and
never moves against its sign (a +2 on a Deployment already above `max` leaves it alone).
Zero replicas take `allow_zero: true` (and `min: 0`).

One run: GET deployments/{name}/scale; nothing to do when it already has the target; else
merge-PATCH `{"spec":{"replicas":n}}` exactly as `kubectl scale` does; GET the scale again and
verify spec.replicas; record a `ResponderScale` Event. Setting an absolute count is idempotent,
so a retried step never scales twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, model_validator

from responder.actions.base import ActionContext, ActionSpec, Observation, StepResult
from responder.actions.calls import fitted
from responder.actions.kubernetes.targets import (
    NamespacedParams,
    check_params_namespace,
    deployment_path,
    only_one,
)
from responder.actions.kubernetes_access import ObjectName, describe_event, kube_for, record_event
from responder.models.kube import ObjectRef
from responder.models.plans import ActionClass
from responder.models.runs import StepRecord

REASON = "ResponderScale"
MAX_REPLICAS = 1000


class ScaleParams(NamespacedParams):
    """Parameters of `k8s.scale`."""

    deployment: ObjectName
    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    change: int | None = Field(default=None, ge=-MAX_REPLICAS, le=MAX_REPLICAS)
    min: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    max: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    allow_zero: bool = False

    @model_validator(mode="after")
    def _bounded(self) -> ScaleParams:
        only_one(self, "replicas", "change")
        if self.change == 0:
            raise ValueError("change: 0 changes nothing; give a positive or negative change")
        if self.change is not None and self.max is None:
            raise ValueError("a relative change needs `max` (the most replicas it may reach)")
        upper = self.max if self.max is not None else MAX_REPLICAS
        if self.min > upper:
            raise ValueError(f"min ({self.min}) is above max ({upper})")
        if self.min == 0 and not self.allow_zero:
            raise ValueError("min: 0 allows scaling to zero replicas: also set allow_zero: true")
        if self.replicas == 0 and not self.allow_zero:
            raise ValueError(
                "replicas: 0 stops every pod of the deployment: set allow_zero: true (and min: 0)"
            )
        if self.replicas is not None and not self.min <= self.replicas <= upper:
            raise ValueError(f"replicas {self.replicas} is outside min {self.min} .. max {upper}")
        return self


def target_replicas(params: ScaleParams, current: int) -> int:
    """The replicas to set, given the current count (see the module docstring)."""
    if params.replicas is not None:
        return params.replicas
    change = params.change or 0
    upper = params.max if params.max is not None else MAX_REPLICAS
    bounded = min(max(current + change, params.min), upper)
    return max(bounded, current) if change > 0 else min(bounded, current)


async def _run(params: ScaleParams, ctx: ActionContext) -> StepResult:
    kube = kube_for(ctx, params.namespace)
    where = f"deployment {params.namespace}/{params.deployment}"
    before = await kube.read_scale(params.namespace, params.deployment)
    target = target_replicas(params, before.replicas)
    output: dict[str, Any] = {
        "namespace": params.namespace,
        "deployment": params.deployment,
        "before": before.replicas,
        "target": target,
        "after": before.replicas,
        "patched": False,
    }
    if target == before.replicas:
        note = f"already at {target} replicas (bounds {params.min}..{params.max}); not patched"
        output["note"] = note
        unsent = {"json": {"spec": {"replicas": target}}, "not_sent": note}
        return fitted(ctx, True, f"{where}: {note}", output, True, unsent)
    sent = {"json": {"spec": {"replicas": target}}}
    await kube.patch_scale(params.namespace, params.deployment, target)
    after = await kube.read_scale(params.namespace, params.deployment)
    output.update(patched=True, after=after.replicas, status_replicas=after.status_replicas)
    regarding = ObjectRef(
        api_version="apps/v1",
        kind="Deployment",
        name=params.deployment,
        namespace=params.namespace,
        uid=after.uid or None,
    )
    output["event"] = await record_event(
        kube,
        ctx,
        regarding,
        REASON,
        "Scale",
        f"scaled from {before.replicas} to {target} replicas",
    )
    if after.replicas != target:
        summary = f"{where}: scaled to {target} but spec.replicas reads {after.replicas}"
        return fitted(ctx, False, summary, output, False, sent)
    summary = f"{where}: {before.replicas} -> {target} replicas"
    return fitted(ctx, True, summary, output, True, sent)


async def _observe(params: ScaleParams, ctx: ActionContext, step: StepRecord) -> Observation:
    """spec.replicas now against an absolute `replicas`: equal -> present, else absent. A
    relative `change` is unknown (the count it aimed at was only known inside the call)."""
    if params.replicas is None:
        return Observation.UNKNOWN
    kube = kube_for(ctx, params.namespace)
    now = await kube.read_scale(params.namespace, params.deployment)
    return Observation.PRESENT if now.replicas == params.replicas else Observation.ABSENT


def _describe(params: ScaleParams) -> dict[str, Any]:
    path = f"{deployment_path(params.namespace, params.deployment)}/scale"
    if params.replicas is not None:
        replicas: int | str = params.replicas
    else:
        replicas = f"<current {params.change:+d}, within {params.min}..{params.max}>"
    regarding = ObjectRef(
        api_version="apps/v1", kind="Deployment", name=params.deployment, namespace=params.namespace
    )
    return {
        "method": "PATCH",
        "path": f"{path}?fieldManager=responder",
        "headers": {"Content-Type": "application/merge-patch+json"},
        "json": {"spec": {"replicas": replicas}},
        "before": {"method": "GET", "path": path},
        "verify": {"method": "GET", "path": path, "expect": "spec.replicas = the target"},
        "event": describe_event(regarding, REASON),
    }


K8S_SCALE: ActionSpec[ScaleParams] = ActionSpec(
    name="k8s.scale",
    params_model=ScaleParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=60),
    blast_radius="the replica count of one Deployment in an allowlisted namespace, within the "
    "rule's min/max; zero only with allow_zero (a HorizontalPodAutoscaler may scale it back)",
    description="Scale a Deployment through its scale subresource (as `kubectl scale`), within "
    "min/max bounds, and verify spec.replicas by reading it back.",
    run=_run,
    describe=_describe,
    check_namespaces=check_params_namespace,
    observe=_observe,  # an absolute count: setting it again changes nothing more
    idempotent=True,
)
