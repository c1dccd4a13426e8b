"""What any action touching the Kubernetes API uses: name types, the checked port, Events.

Used by the `k8s.*` actions and by the flagd ConfigMap provider of the feature-flag actions.

Names rendered from alert labels are validated by type (namespaces and containers are DNS-1123
labels, object names DNS-1123 subdomains), so a label cannot add a path segment. The namespace
is checked against RESPONDER_K8S_ALLOWED_NAMESPACES at plan time and again when the step runs
(`kube_for`); the adapter refuses it a third time before any request.

A containment step records a core/v1 Event on the object it touched (`record_event`), so that
`kubectl describe deployment/web` (or `kubectl get events`) shows who acted and why: reason
`ResponderRolloutRestart` / `ResponderScale` / `ResponderDeletePod` (and `ResponderFeatureFlag`
on a flagd ConfigMap), a message naming the rule, run and step, source and reportingComponent
`responder`. The Event is a record, not the action: failing to write it (RBAC: create events)
never fails the containment; the step output says `event.recorded: false` with the error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

from responder.actions.base import ActionContext
from responder.core.kube_names import check_namespace, dns_label, dns_subdomain
from responder.errors import PermanentError, ResponderError
from responder.models.kube import NewEvent, ObjectRef
from responder.ports.kubernetes import KubeApi

NO_KUBE = (
    "no Kubernetes API configured: set RESPONDER_KUBECONFIG (a kubeconfig file, optionally "
    "RESPONDER_K8S_CONTEXT) or RESPONDER_K8S_IN_CLUSTER=true (the pod's ServiceAccount), and "
    "RESPONDER_K8S_ALLOWED_NAMESPACES"
)
MAX_MESSAGE = 1024

Namespace = Annotated[str, AfterValidator(dns_label)]
ContainerName = Annotated[str, AfterValidator(dns_label)]
ObjectName = Annotated[str, AfterValidator(dns_subdomain)]


def kube_for(ctx: ActionContext, namespace: str) -> KubeApi:
    """The KubeApi port for a run-time call in `namespace`, after the checks."""
    if ctx.kube is None:
        raise PermanentError(NO_KUBE)
    check_namespace(namespace, ctx.allowed_namespaces)
    return ctx.kube


def event_message(ctx: ActionContext, what: str) -> str:
    """`rule <id>, run <id>, step <id>: <what>`, within the Event message limit."""
    return f"rule {ctx.rule_id}, run {ctx.run_id}, step {ctx.step_id}: {what}"[:MAX_MESSAGE]


async def record_event(
    kube: KubeApi, ctx: ActionContext, regarding: ObjectRef, reason: str, action: str, what: str
) -> dict[str, Any]:
    """Write the Event; returns what to put in the step output under `event`."""
    message = event_message(ctx, what)
    outcome: dict[str, Any] = {"reason": reason, "message": message}
    event = NewEvent(regarding=regarding, reason=reason, message=message, action=action)
    try:
        created = await kube.create_event(regarding.namespace, event)
    except ResponderError as exc:
        return {**outcome, "recorded": False, "error": str(exc)}
    return {**outcome, "recorded": True, "name": created.name}


def describe_event(regarding: ObjectRef, reason: str) -> dict[str, Any]:
    """The Event request, for dry-run and explain."""
    return {
        "method": "POST",
        "path": f"/api/v1/namespaces/{regarding.namespace}/events",
        "json": {
            "involvedObject": {
                "apiVersion": regarding.api_version,
                "kind": regarding.kind,
                "name": regarding.name,
                "namespace": regarding.namespace,
            },
            "reason": reason,
            "type": "Normal",
            "message": "rule <rule id>, run <run id>, step <step id>: <what was done>",
            "source": {"component": "responder"},
            "reportingComponent": "responder",
        },
    }
