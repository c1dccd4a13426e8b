"""`k8s.events`: the recent core/v1 Events of a namespace or of one object, newest first.

With `name` (and optionally `kind`) only that object's Events are listed, through
`involvedObject.*` field selectors as `kubectl describe` does; without, the namespace's.
`type: Warning` keeps warnings only. The API server does not sort Events, so the first 500 it
returns are sorted here by last seen (lastTimestamp, else eventTime) and the newest `limit`
kept; messages are redacted and the output capped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.calls import fitted
from responder.actions.kubernetes.targets import NamespacedParams, check_params_namespace
from responder.actions.kubernetes_access import ObjectName, kube_for
from responder.models.kube import KubeEvent
from responder.models.plans import ActionClass

LISTED = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Kind = Literal[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Pod",
    "Job",
    "CronJob",
    "Service",
    "ConfigMap",
    "HorizontalPodAutoscaler",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
]


class EventsParams(NamespacedParams):
    """Parameters of `k8s.events`."""

    kind: Kind | None = None
    name: ObjectName | None = None
    type: Literal["Normal", "Warning"] | None = None
    limit: int = Field(default=20, ge=1, le=100)

    @model_validator(mode="after")
    def _kind_needs_name(self) -> EventsParams:
        if self.kind is not None and self.name is None:
            raise ValueError("kind narrows the events of one object: give its name too")
        return self


def newest_first(events: list[KubeEvent]) -> list[KubeEvent]:
    """Events by last seen, newest first (undated ones last), then by name."""
    return sorted(events, key=lambda e: (-(e.last_at or _EPOCH).timestamp(), e.name))


def _view(event: KubeEvent) -> dict[str, Any]:
    ref = event.regarding
    return {
        "type": event.type,
        "reason": event.reason,
        "object": f"{ref.kind}/{ref.name}" if ref is not None else None,
        "message": event.message,
        "count": event.count,
        "first_seen": event.first_at.isoformat() if event.first_at else None,
        "last_seen": event.last_at.isoformat() if event.last_at else None,
        "source": event.component,
    }


async def _run(params: EventsParams, ctx: ActionContext) -> StepResult:
    kube = kube_for(ctx, params.namespace)
    listed = await kube.list_events(
        params.namespace, kind=params.kind, name=params.name, limit=LISTED
    )
    matching = [e for e in listed if params.type is None or e.type == params.type]
    shown = newest_first(matching)[: params.limit]
    warnings = sum(1 for e in matching if e.type == "Warning")
    subject = f"{params.kind or 'object'} {params.name}" if params.name else "namespace"
    output: dict[str, Any] = {
        "namespace": params.namespace,
        "subject": subject,
        "count": len(matching),
        "warnings": warnings,
        "events": [_view(e) for e in shown],
    }
    summary = f"{len(matching)} event(s) for {subject} in {params.namespace} ({warnings} Warning)"
    if shown:
        newest = shown[0]
        summary += f"; newest: {newest.type} {newest.reason}: {(newest.message or '')[:120]}"
    return fitted(ctx, True, summary, output)


def _describe(params: EventsParams) -> dict[str, Any]:
    terms = [
        f"involvedObject.kind={params.kind}" if params.kind else "",
        f"involvedObject.name={params.name}" if params.name else "",
    ]
    selector = ",".join(t for t in terms if t)
    query = f"?fieldSelector={selector}&limit={LISTED}" if selector else f"?limit={LISTED}"
    return {
        "method": "GET",
        "path": f"/api/v1/namespaces/{params.namespace}/events{query}",
        "then": f"newest {params.limit}" + (f" of type {params.type}" if params.type else ""),
    }


K8S_EVENTS: ActionSpec[EventsParams] = ActionSpec(
    name="k8s.events",
    params_model=EventsParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=30),
    blast_radius="reads Events of one object or namespace (allowlisted)",
    description="List recent Kubernetes Events of an object or a namespace, newest first.",
    run=_run,
    describe=_describe,
    check_namespaces=check_params_namespace,
)
