"""`k8s.delete_pod`: delete one pod of a workload, never below `min_healthy_replicas` ready.

The workload is named by `deployment` (its matchLabels) or `selector`. One run: GET the pod;
refuse when the workload does not select it; list the workload's pods and refuse when fewer
than `min_healthy_replicas` other pods are ready and not terminating (deleting would leave
too few); DELETE with a uid precondition (only the instance that was checked, never a
replacement of the same name); record a `ResponderDeletePod` Event on the pod; poll the
workload's pods until no pod has the old uid (gone, or replaced by a new instance).

A DELETE whose answer is lost is resolved by looking: when the old instance is gone or
terminating, it was applied. Output `replacements` lists the workload's pods that were not
there before.
"""

from __future__ import annotations

import asyncio
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
from responder.actions.kubernetes_access import ObjectName, describe_event, kube_for, record_event
from responder.core.kube_names import equality_selector, selector_matches
from responder.errors import NotAllowedError, TemporaryError
from responder.models.kube import ObjectRef, Pod
from responder.models.plans import ActionClass
from responder.ports.kubernetes import KubeApi

REASON = "ResponderDeletePod"


class DeletePodParams(NamespacedParams):
    """Parameters of `k8s.delete_pod`."""

    pod: ObjectName
    deployment: ObjectName | None = None
    selector: Labels | None = None
    min_healthy_replicas: int = Field(default=1, ge=0, le=1000)
    grace_period_seconds: int | None = Field(default=None, ge=0, le=3600)
    wait_seconds: float = Field(default=60.0, ge=0, le=600)
    poll_seconds: float = Field(default=1.0, ge=0.1, le=10)

    @model_validator(mode="after")
    def _one_workload(self) -> DeletePodParams:
        only_one(self, "deployment", "selector")
        return self


async def _delete(kube: KubeApi, params: DeletePodParams, uid: str, selector: str) -> None:
    try:
        await kube.delete_pod(
            params.namespace, params.pod, uid=uid, grace_period_seconds=params.grace_period_seconds
        )
    except TemporaryError as lost:
        try:
            pods = await kube.list_pods(params.namespace, selector)
        except TemporaryError:
            raise lost from None
        still = next((p for p in pods if p.uid == uid), None)
        if still is None or still.deleting:
            return  # applied; the answer was lost
        raise


async def _verify(
    kube: KubeApi, params: DeletePodParams, uid: str, selector: str
) -> tuple[bool, list[Pod]]:
    """(the old instance is gone, the workload's pods at the last look)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + params.wait_seconds
    pods: list[Pod] = []
    while True:
        try:
            pods = await kube.list_pods(params.namespace, selector)
            if all(p.uid != uid for p in pods):
                return True, pods
        except TemporaryError:
            pass
        if loop.time() + params.poll_seconds > deadline:
            return False, pods
        await asyncio.sleep(params.poll_seconds)


async def _run(params: DeletePodParams, ctx: ActionContext) -> StepResult:
    kube = kube_for(ctx, params.namespace)
    where = f"pod {params.namespace}/{params.pod}"
    target = await kube.read_pod(params.namespace, params.pod)
    labels, workload = await workload_selector(
        kube, params.namespace, params.deployment, params.selector
    )
    selector = equality_selector(labels)
    if not selector_matches(labels, target.labels):
        raise NotAllowedError(
            f"refused: {where} is not selected by {workload} ({selector}); not deleting a pod "
            "outside the workload named by the rule"
        )
    before = await kube.list_pods(params.namespace, selector)
    healthy = [p.name for p in before if p.ready and not p.deleting and p.uid != target.uid]
    if len(healthy) < params.min_healthy_replicas:
        raise NotAllowedError(
            f"refused: deleting {where} would leave {len(healthy)} ready pod(s) of {workload}, "
            f"fewer than min_healthy_replicas={params.min_healthy_replicas}; not deleting"
        )
    await _delete(kube, params, target.uid, selector)
    regarding = ObjectRef(
        api_version="v1", kind="Pod", name=params.pod, namespace=params.namespace, uid=target.uid
    )
    event = await record_event(
        kube,
        ctx,
        regarding,
        REASON,
        "DeletePod",
        f"deleted pod {params.pod} of {workload} ({len(healthy)} other ready pod(s) left)",
    )
    gone, after = await _verify(kube, params, target.uid, selector)
    known = {p.uid for p in before}
    output: dict[str, Any] = {
        "namespace": params.namespace,
        "pod": params.pod,
        "uid": target.uid,
        "workload": workload,
        "ready_before": target.ready,
        "restarts_before": target.restarts,
        "other_ready_pods": healthy,
        "gone": gone,
        "replacements": [p.name for p in after if p.uid not in known],
        "event": event,
    }
    sent = {"json": {"preconditions": {"uid": target.uid}}}
    if gone:
        return fitted(ctx, True, f"{where} deleted ({workload})", output, True, sent)
    summary = f"{where}: delete sent but it still exists after {params.wait_seconds:g} s"
    return fitted(ctx, False, summary, output, False, sent)


def _describe(params: DeletePodParams) -> dict[str, Any]:
    path = pods_path(params.namespace, params.pod)
    if params.selector is not None:
        workload: dict[str, Any] = {"selector": equality_selector(params.selector)}
    else:
        workload = {"deployment": deployment_path(params.namespace, params.deployment or "")}
    regarding = ObjectRef(api_version="v1", kind="Pod", name=params.pod, namespace=params.namespace)
    return {
        "method": "DELETE",
        "path": path,
        "json": {
            "preconditions": {"uid": "<uid read just before>"},
            "gracePeriodSeconds": params.grace_period_seconds,
        },
        "before": {
            "method": "GET",
            "path": path,
            "workload": workload,
            "refuse_if": f"fewer than {params.min_healthy_replicas} other ready pods",
        },
        "verify": {
            "method": "GET",
            "path": f"{pods_path(params.namespace)}?labelSelector=...",
            "until": "no pod has the old uid",
            "for_seconds": params.wait_seconds,
        },
        "event": describe_event(regarding, REASON),
    }


K8S_DELETE_POD: ActionSpec[DeletePodParams] = ActionSpec(
    name="k8s.delete_pod",
    params_model=DeletePodParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=120),
    blast_radius="one pod of a named workload in an allowlisted namespace; refused when fewer "
    "than min_healthy_replicas other pods of the workload are ready",
    description="Delete one pod (its controller replaces it) after a blast-radius check, and "
    "verify the old instance is gone.",
    run=_run,
    describe=_describe,
    check_namespaces=check_params_namespace,
)
