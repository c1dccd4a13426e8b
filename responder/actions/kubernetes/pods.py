"""`k8s.pods`: the pods of a workload, with readiness, restarts and the last termination.

Give one of `pod` (that pod), `deployment` (the pods its matchLabels select) or `selector`
(equality labels). Pods come back least healthy first (not ready, then most restarts), at most
`limit`, each with per-container `state` (running/waiting/terminated and its reason, e.g.
CrashLoopBackOff), `restarts` and the last termination (`last_reason` such as OOMKilled, exit
code, when). `worst` is the first pod, so `{{ steps.pods.output.worst.name }}` names the pod a
later `k8s.logs` or `k8s.delete_pod` step should look at.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, model_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.calls import fitted
from responder.actions.kubernetes.targets import (
    Labels,
    NamespacedParams,
    check_params_namespace,
    deployment_path,
    only_one,
    pods_path,
    workload_selector,
)
from responder.actions.kubernetes_access import ObjectName, kube_for
from responder.core.kube_names import equality_selector
from responder.models.kube import Pod
from responder.models.plans import ActionClass
from responder.ports.kubernetes import KubeApi


class PodsParams(NamespacedParams):
    """Parameters of `k8s.pods`."""

    pod: ObjectName | None = None
    deployment: ObjectName | None = None
    selector: Labels | None = None
    limit: int = Field(default=20, ge=1, le=100)

    @model_validator(mode="after")
    def _one_target(self) -> PodsParams:
        only_one(self, "pod", "deployment", "selector")
        return self


def least_healthy_first(pods: list[Pod]) -> list[Pod]:
    """Not ready before ready, then more restarts first, then by name."""
    return sorted(pods, key=lambda p: (p.ready and not p.deleting, -p.restarts, p.name))


def pod_view(pod: Pod) -> dict[str, Any]:
    """One pod as step output."""
    return {
        "name": pod.name,
        "phase": pod.phase,
        "ready": pod.ready,
        "terminating": pod.deleting,
        "restarts": pod.restarts,
        "node": pod.node_name,
        "reason": pod.reason,
        "created_at": pod.created_at.isoformat() if pod.created_at else None,
        "containers": [
            {
                "name": c.name,
                "init": c.init,
                "ready": c.ready,
                "restarts": c.restart_count,
                "state": c.state,
                "state_reason": c.state_reason,
                "last_reason": c.last_reason,
                "last_exit_code": c.last_exit_code,
                "last_finished_at": c.last_finished_at.isoformat() if c.last_finished_at else None,
            }
            for c in pod.containers
        ],
    }


async def select_pods(
    kube: KubeApi,
    namespace: str,
    pod: str | None,
    deployment: str | None,
    selector: dict[str, str] | None,
) -> tuple[list[Pod], str]:
    """(pods, what was selected) for one of pod / deployment / selector."""
    if pod is not None:
        return [await kube.read_pod(namespace, pod)], f"pod {namespace}/{pod}"
    labels, what = await workload_selector(kube, namespace, deployment, selector)
    return await kube.list_pods(namespace, equality_selector(labels)), what


def _headline(pod: Pod) -> str:
    worst = next((c for c in pod.containers if not c.ready), None)
    if worst is None:
        return f"{pod.name} ready"
    detail = worst.state_reason or worst.state
    if worst.last_reason:
        detail += f", last {worst.last_reason}"
        detail += f" (exit {worst.last_exit_code})" if worst.last_exit_code is not None else ""
    return f"{pod.name}: {worst.name} {detail}"


async def _run(params: PodsParams, ctx: ActionContext) -> StepResult:
    kube = kube_for(ctx, params.namespace)
    found, what = await select_pods(
        kube, params.namespace, params.pod, params.deployment, params.selector
    )
    ordered = least_healthy_first(found)
    shown = [pod_view(p) for p in ordered[: params.limit]]
    ready = sum(1 for p in found if p.ready)
    restarts = sum(p.restarts for p in found)
    output: dict[str, Any] = {
        "namespace": params.namespace,
        "selected": what,
        "count": len(found),
        "ready": ready,
        "restarts": restarts,
        "worst": shown[0] if shown else None,
        "pods": shown,
    }
    summary = f"{what}: {len(found)} pod(s), {ready} ready, {restarts} restart(s)"
    if ordered:
        summary += f"; {_headline(ordered[0])}"
    return fitted(ctx, True, summary, output)


def _describe(params: PodsParams) -> dict[str, Any]:
    if params.pod is not None:
        return {"method": "GET", "path": pods_path(params.namespace, params.pod)}
    if params.selector is not None:
        query = f"labelSelector={equality_selector(params.selector)}"
        return {"method": "GET", "path": f"{pods_path(params.namespace)}?{query}"}
    deployment = deployment_path(params.namespace, params.deployment or "")
    return {
        "method": "GET",
        "path": f"{pods_path(params.namespace)}?labelSelector=<matchLabels of the deployment>",
        "before": {"method": "GET", "path": deployment},
    }


K8S_PODS: ActionSpec[PodsParams] = ActionSpec(
    name="k8s.pods",
    params_model=PodsParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=30),
    blast_radius="reads pods of one workload in an allowlisted namespace",
    description="List a workload's pods least healthy first: readiness, restarts, container "
    "states and the last termination reason (OOMKilled, Error...).",
    run=_run,
    describe=_describe,
    check_namespaces=check_params_namespace,
)
