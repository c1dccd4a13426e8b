"""`k8s.rollout_restart`: restart a Deployment as `kubectl rollout restart` does, and verify it.

One run: GET the Deployment and refuse a paused one (a paused Deployment does not roll out);
strategic-merge PATCH `spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]`
= now (RFC 3339 seconds, UTC) with fieldManager=responder; record a `ResponderRolloutRestart`
Event; poll the Deployment every `poll_seconds` until `kubectl rollout status` would say it
is done (core/rollouts.py), failing on ProgressDeadlineExceeded, for at most `wait_seconds`.

Retries are safe: when the PATCH times out, the Deployment is read back, and a restartedAt equal
to the one sent means it was applied (no second restart). A PATCH that leaves the generation
unchanged (a restart within the same second) is retried with a new timestamp. Read errors
while polling are counted and polling goes on; only the wait deadline ends it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from responder.actions.base import ActionContext, ActionSpec, Observation, StepResult
from responder.actions.calls import fitted
from responder.actions.kubernetes.targets import (
    NamespacedParams,
    check_params_namespace,
    deployment_path,
)
from responder.actions.kubernetes_access import ObjectName, describe_event, kube_for, record_event
from responder.core.rollouts import RESTARTED_AT, RolloutStatus, restart_stamp, rollout_status
from responder.errors import PermanentError, TemporaryError
from responder.models.kube import Deployment, ObjectRef
from responder.models.plans import ActionClass
from responder.models.runs import StepRecord
from responder.ports.kubernetes import KubeApi

REASON = "ResponderRolloutRestart"


class RolloutRestartParams(NamespacedParams):
    """Parameters of `k8s.rollout_restart`."""

    deployment: ObjectName
    wait_seconds: float = Field(default=600.0, ge=0, le=1800)  # 0: do not wait (not verified)
    poll_seconds: float = Field(default=2.0, ge=0.1, le=30)


def _counts(deployment: Deployment) -> dict[str, Any]:
    return {
        "generation": deployment.generation,
        "observed_generation": deployment.observed_generation,
        "replicas": deployment.replicas,
        "updated": deployment.updated_replicas,
        "ready": deployment.ready_replicas,
        "available": deployment.available_replicas,
    }


async def _patch(kube: KubeApi, params: RolloutRestartParams, at: datetime) -> Deployment:
    """The PATCH, with an ambiguous outcome (timeout, 5xx) resolved by reading back."""
    try:
        return await kube.restart_deployment(params.namespace, params.deployment, at)
    except TemporaryError:
        try:
            now = await kube.read_deployment(params.namespace, params.deployment)
        except TemporaryError:
            now = None
        if now is not None and now.template_annotations.get(RESTARTED_AT) == restart_stamp(at):
            return now  # it was applied; the answer was lost
        raise


async def _wait(
    kube: KubeApi, params: RolloutRestartParams, generation: int
) -> tuple[RolloutStatus, Deployment | None, int]:
    """Poll until done or failed, or `wait_seconds` pass: (last status, last read, errors)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + params.wait_seconds
    status = RolloutStatus(False, False, "Waiting for deployment spec update to be observed...")
    last: Deployment | None = None
    errors = 0
    while True:
        remaining = deadline - loop.time()
        try:
            last = await kube.read_deployment(
                params.namespace, params.deployment, timeout_seconds=max(remaining, 0.5)
            )
            status = rollout_status(last, generation)
            if status.done or status.failed:
                return status, last, errors
        except TemporaryError:
            errors += 1
        if loop.time() + params.poll_seconds > deadline:
            return status, last, errors
        await asyncio.sleep(params.poll_seconds)


async def _run(params: RolloutRestartParams, ctx: ActionContext) -> StepResult:
    kube = kube_for(ctx, params.namespace)
    where = f"deployment {params.namespace}/{params.deployment}"
    before = await kube.read_deployment(params.namespace, params.deployment)
    if before.paused:
        raise PermanentError(
            f"{where} is paused: can't restart a paused deployment (run `kubectl rollout resume "
            f"deployment/{params.deployment} -n {params.namespace}` first)"
        )
    at = datetime.now(UTC).replace(microsecond=0)
    patched = await _patch(kube, params, at)
    if patched.generation == before.generation:
        raise TemporaryError(
            f"{where}: restart already triggered within the past second (generation "
            f"{before.generation} unchanged); retrying with a new timestamp",
            delay=1.1,
        )
    stamp = restart_stamp(at)
    sent = {"json": {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}}
    regarding = ObjectRef(
        api_version="apps/v1",
        kind="Deployment",
        name=params.deployment,
        namespace=params.namespace,
        uid=patched.uid or None,
    )
    event = await record_event(
        kube, ctx, regarding, REASON, "RolloutRestart", f"rollout restart (restartedAt={stamp})"
    )
    output: dict[str, Any] = {
        "namespace": params.namespace,
        "deployment": params.deployment,
        "restarted_at": stamp,
        "generation": patched.generation,
        "before": _counts(before),
        "event": event,
    }
    if params.wait_seconds == 0:
        output["rollout"] = {"done": False, "failed": False, "message": "not waited for"}
        return fitted(ctx, True, f"{where}: restart requested (not waiting)", output, None, sent)
    status, last, errors = await _wait(kube, params, patched.generation)
    output["rollout"] = {"done": status.done, "failed": status.failed, "message": status.message}
    output["after"] = _counts(last) if last is not None else None
    output["poll_errors"] = errors
    if status.done:
        return fitted(ctx, True, f"{where} restarted: {status.message}", output, True, sent)
    if status.failed:
        return fitted(ctx, False, f"{where}: {status.message}", output, False, sent)
    summary = f"{where}: not rolled out after {params.wait_seconds:g} s: {status.message}"
    return fitted(ctx, False, summary, output, False, sent)


async def _observe(
    params: RolloutRestartParams, ctx: ActionContext, step: StepRecord
) -> Observation:
    """The pod template's restartedAt now: at or after the second the step was recorded
    running (before its PATCH; the PATCH stamps the time of the call) -> present (that restart,
    or a later one, happened); older or none -> absent; no recorded start -> unknown."""
    if step.started_at is None:
        return Observation.UNKNOWN
    kube = kube_for(ctx, params.namespace)
    now = await kube.read_deployment(params.namespace, params.deployment)
    stamp = now.template_annotations.get(RESTARTED_AT)
    if stamp is not None and stamp >= restart_stamp(step.started_at):
        return Observation.PRESENT
    return Observation.ABSENT


def _describe(params: RolloutRestartParams) -> dict[str, Any]:
    path = deployment_path(params.namespace, params.deployment)
    annotation = {RESTARTED_AT: "<time of the run, RFC 3339 UTC, e.g. 2026-11-23T10:41:52Z>"}
    regarding = ObjectRef(
        api_version="apps/v1", kind="Deployment", name=params.deployment, namespace=params.namespace
    )
    return {
        "method": "PATCH",
        "path": f"{path}?fieldManager=responder",
        "headers": {"Content-Type": "application/strategic-merge-patch+json"},
        "json": {"spec": {"template": {"metadata": {"annotations": annotation}}}},
        "before": {"method": "GET", "path": path, "refuse_if": "spec.paused"},
        "verify": {
            "method": "GET",
            "path": path,
            "every_seconds": params.poll_seconds,
            "for_seconds": params.wait_seconds,
            "until": "kubectl rollout status: observedGeneration caught up, updated = available "
            "= spec.replicas, no old replicas; fails on ProgressDeadlineExceeded",
        },
        "event": describe_event(regarding, REASON),
    }


K8S_ROLLOUT_RESTART: ActionSpec[RolloutRestartParams] = ActionSpec(
    name="k8s.rollout_restart",
    params_model=RolloutRestartParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=630),
    blast_radius="every pod of one Deployment in an allowlisted namespace is replaced, "
    "surge/unavailability as its rollout strategy allows; a paused Deployment is refused",
    description="Restart a Deployment like `kubectl rollout restart` and wait until its "
    "rollout completes (verified the way `kubectl rollout status` decides).",
    run=_run,
    describe=_describe,
    check_namespaces=check_params_namespace,
    observe=_observe,  # not idempotent: an absent restart is parked for approval
)
