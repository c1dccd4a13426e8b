"""Conversion between the official client's models and responder's (models/kube.py).

Reading, only the fields actions read are kept; missing optional fields become defaults, so a
status the controller has not filled in yet reads as zero replicas and no conditions. Writing,
`new_event` builds the core/v1 Event that responder posts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes.client import (
    CoreV1Event,
    V1ConfigMap,
    V1ContainerStatus,
    V1Deployment,
    V1EventSource,
    V1ObjectMeta,
    V1ObjectReference,
    V1Pod,
    V1Scale,
)

from responder.models.kube import (
    ConfigMap,
    ContainerStateName,
    ContainerStatus,
    Deployment,
    KubeCondition,
    KubeEvent,
    NewEvent,
    ObjectRef,
    Pod,
    Scale,
)


def _meta(meta: V1ObjectMeta | None) -> V1ObjectMeta:
    return meta if meta is not None else V1ObjectMeta()


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def deployment(obj: V1Deployment) -> Deployment:
    """Our Deployment from an apps/v1 Deployment."""
    meta, spec, status = _meta(obj.metadata), obj.spec, obj.status
    selector = spec.selector if spec is not None else None
    template_meta = spec.template.metadata if spec is not None and spec.template else None
    conditions = (status.conditions or []) if status is not None else []
    return Deployment(
        name=meta.name or "",
        namespace=meta.namespace or "",
        uid=meta.uid or "",
        generation=meta.generation or 0,
        resource_version=meta.resource_version or "",
        paused=bool(spec.paused) if spec is not None else False,
        replicas=spec.replicas if spec is not None else None,
        selector=dict(selector.match_labels or {}) if selector is not None else {},
        selector_has_expressions=bool(selector is not None and selector.match_expressions),
        progress_deadline_seconds=spec.progress_deadline_seconds if spec is not None else None,
        template_annotations=dict(template_meta.annotations or {}) if template_meta else {},
        observed_generation=status.observed_generation if status is not None else None,
        status_replicas=(status.replicas or 0) if status is not None else 0,
        updated_replicas=(status.updated_replicas or 0) if status is not None else 0,
        ready_replicas=(status.ready_replicas or 0) if status is not None else 0,
        available_replicas=(status.available_replicas or 0) if status is not None else 0,
        unavailable_replicas=(status.unavailable_replicas or 0) if status is not None else 0,
        conditions=tuple(
            KubeCondition(type=c.type, status=c.status, reason=c.reason, message=c.message)
            for c in conditions
        ),
    )


def scale(obj: V1Scale) -> Scale:
    """Our Scale from an autoscaling/v1 Scale."""
    meta = _meta(obj.metadata)
    return Scale(
        name=meta.name or "",
        namespace=meta.namespace or "",
        uid=meta.uid or "",
        replicas=(obj.spec.replicas or 0) if obj.spec is not None else 0,
        status_replicas=obj.status.replicas if obj.status is not None else 0,
        selector=obj.status.selector if obj.status is not None else None,
        resource_version=meta.resource_version or "",
    )


def _container(status: V1ContainerStatus, *, init: bool) -> ContainerStatus:
    state: ContainerStateName = "unknown"
    reason: str | None = None
    current = status.state
    if current is not None and current.running is not None:
        state = "running"
    elif current is not None and current.waiting is not None:
        state, reason = "waiting", current.waiting.reason
    elif current is not None and current.terminated is not None:
        state, reason = "terminated", current.terminated.reason
    last = status.last_state.terminated if status.last_state is not None else None
    return ContainerStatus(
        name=status.name,
        init=init,
        image=status.image,
        ready=status.ready,
        restart_count=status.restart_count,
        state=state,
        state_reason=reason,
        last_reason=last.reason if last is not None else None,
        last_exit_code=last.exit_code if last is not None else None,
        last_finished_at=_utc(last.finished_at) if last is not None else None,
    )


def pod(obj: V1Pod) -> Pod:
    """Our Pod from a core/v1 Pod."""
    meta, status = _meta(obj.metadata), obj.status
    owner = next((o for o in meta.owner_references or [] if o.controller), None)
    conditions = (status.conditions or []) if status is not None else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    init = (status.init_container_statuses or []) if status is not None else []
    regular = (status.container_statuses or []) if status is not None else []
    containers = [
        *(_container(s, init=True) for s in init),
        *(_container(s, init=False) for s in regular),
    ]
    return Pod(
        name=meta.name or "",
        namespace=meta.namespace or "",
        uid=meta.uid or "",
        phase=status.phase if status is not None else None,
        ready=ready,
        deleting=meta.deletion_timestamp is not None,
        labels=dict(meta.labels or {}),
        node_name=obj.spec.node_name if obj.spec is not None else None,
        owner_kind=owner.kind if owner is not None else None,
        owner_name=owner.name if owner is not None else None,
        created_at=_utc(meta.creation_timestamp),
        reason=status.reason if status is not None else None,
        containers=tuple(containers),
    )


def _ref(ref: V1ObjectReference | None, namespace: str) -> ObjectRef | None:
    if ref is None or not ref.kind or not ref.name:
        return None
    return ObjectRef(
        api_version=ref.api_version or "",
        kind=ref.kind,
        name=ref.name,
        namespace=ref.namespace or namespace,
        uid=ref.uid,
    )


def event(obj: CoreV1Event) -> KubeEvent:
    """Our KubeEvent from a core/v1 Event."""
    meta = _meta(obj.metadata)
    namespace = meta.namespace or ""
    last = obj.last_timestamp or obj.event_time or meta.creation_timestamp
    component = obj.reporting_component or (obj.source.component if obj.source else None)
    return KubeEvent(
        name=meta.name or "",
        namespace=namespace,
        type=obj.type,
        reason=obj.reason,
        message=obj.message,
        regarding=_ref(obj.involved_object, namespace),
        count=obj.count or 1,
        first_at=_utc(obj.first_timestamp or obj.event_time or meta.creation_timestamp),
        last_at=_utc(last),
        component=component or None,
    )


def new_event(
    namespace: str, event: NewEvent, *, component: str, instance: str, now: datetime
) -> CoreV1Event:
    """The core/v1 Event to POST for `event`, reported by `component`/`instance` at `now`."""
    ref = event.regarding
    return CoreV1Event(
        metadata=V1ObjectMeta(generate_name=f"{ref.name[:200]}.", namespace=namespace),
        involved_object=V1ObjectReference(
            api_version=ref.api_version,
            kind=ref.kind,
            name=ref.name,
            namespace=ref.namespace,
            uid=ref.uid,
        ),
        reason=event.reason,
        message=event.message,
        type=event.type,
        action=event.action,
        source=V1EventSource(component=component),
        reporting_component=component,
        reporting_instance=instance,
        first_timestamp=now,
        last_timestamp=now,
        count=1,
    )


def config_map(obj: V1ConfigMap) -> ConfigMap:
    """Our ConfigMap from a core/v1 ConfigMap."""
    meta = _meta(obj.metadata)
    return ConfigMap(
        name=meta.name or "",
        namespace=meta.namespace or "",
        uid=meta.uid or "",
        resource_version=meta.resource_version or "",
        data=dict(obj.data or {}),
    )
