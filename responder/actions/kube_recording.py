"""Recording a core/v1 Event on the object a containment step touched.

`kubectl describe deployment/web` (or `kubectl get events`) then shows who acted and why:
reason `ResponderRolloutRestart` / `ResponderScale` / `ResponderDeletePod` (and
`ResponderFeatureFlag` on a flagd ConfigMap), a message naming the rule, run and step, source
and reportingComponent `responder`. The Event is a record, not the action: failing to write it
(RBAC: create events) never fails the containment; the step output says `event.recorded: false`
with the error.
"""

from __future__ import annotations

from typing import Any

from responder.actions.registry import ActionContext
from responder.errors import ResponderError
from responder.models.kube import NewEvent, ObjectRef
from responder.ports import KubeApi

MAX_MESSAGE = 1024


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
