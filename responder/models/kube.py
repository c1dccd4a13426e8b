"""Typed Kubernetes objects passed across the KubeApi port: only the fields actions read."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal["Normal", "Warning"]
ContainerStateName = Literal["running", "waiting", "terminated", "unknown"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KubeCondition(_Frozen):
    """One entry of `status.conditions`."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str | None = None
    message: str | None = None


class Deployment(_Frozen):
    """An apps/v1 Deployment: what restart, scale and rollout status need."""

    name: str
    namespace: str
    uid: str
    generation: int = 0
    resource_version: str = ""
    paused: bool = False
    replicas: int | None = None  # spec.replicas
    selector: dict[str, str] = Field(default_factory=dict)  # spec.selector.matchLabels
    selector_has_expressions: bool = False  # spec.selector.matchExpressions is not empty
    progress_deadline_seconds: int | None = None
    template_annotations: dict[str, str] = Field(default_factory=dict)
    observed_generation: int | None = None
    status_replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    unavailable_replicas: int = 0
    conditions: tuple[KubeCondition, ...] = ()

    def condition(self, kind: str) -> KubeCondition | None:
        """The condition of type `kind`, if the controller reported one."""
        return next((c for c in self.conditions if c.type == kind), None)


class Scale(_Frozen):
    """The autoscaling/v1 Scale subresource of a Deployment."""

    name: str
    namespace: str
    uid: str = ""  # the Deployment's uid
    replicas: int  # spec.replicas
    status_replicas: int = 0
    selector: str | None = None  # status.selector, e.g. "app=web"
    resource_version: str = ""


class ContainerStatus(_Frozen):
    """One entry of `status.containerStatuses` (or `initContainerStatuses`)."""

    name: str
    init: bool = False
    image: str = ""
    ready: bool = False
    restart_count: int = 0
    state: ContainerStateName = "unknown"
    state_reason: str | None = None  # e.g. CrashLoopBackOff (waiting), Completed (terminated)
    last_reason: str | None = None  # lastState.terminated.reason, e.g. OOMKilled
    last_exit_code: int | None = None
    last_finished_at: datetime | None = None


class Pod(_Frozen):
    """A core/v1 Pod: identity, readiness and per-container restarts."""

    name: str
    namespace: str
    uid: str
    phase: str | None = None
    ready: bool = False  # the Ready condition is True
    deleting: bool = False  # metadata.deletionTimestamp is set
    labels: dict[str, str] = Field(default_factory=dict)
    node_name: str | None = None
    owner_kind: str | None = None  # the controller owner, e.g. ReplicaSet
    owner_name: str | None = None
    created_at: datetime | None = None
    reason: str | None = None  # status.reason, e.g. Evicted
    containers: tuple[ContainerStatus, ...] = ()

    @property
    def restarts(self) -> int:
        """Restarts summed over the containers."""
        return sum(c.restart_count for c in self.containers)


class ObjectRef(_Frozen):
    """A reference to one namespaced object (an Event's involvedObject)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str | None = None


class NewEvent(_Frozen):
    """A core/v1 Event to record on the object responder touched."""

    regarding: ObjectRef
    reason: str = Field(min_length=1, max_length=128)
    message: str = Field(max_length=1024)
    type: EventType = "Normal"
    action: str = Field(min_length=1, max_length=128)


class KubeEvent(_Frozen):
    """A core/v1 Event as read back (kubectl's `get events` columns)."""

    name: str
    namespace: str
    type: str | None = None
    reason: str | None = None
    message: str | None = None
    regarding: ObjectRef | None = None
    count: int = 1
    first_at: datetime | None = None
    last_at: datetime | None = None  # lastTimestamp, else eventTime, else creation
    component: str | None = None  # reportingComponent or source.component


class ConfigMap(_Frozen):
    """A core/v1 ConfigMap; `resource_version` makes a replace compare-and-swap."""

    name: str
    namespace: str
    uid: str = ""
    resource_version: str = ""
    data: dict[str, str] = Field(default_factory=dict)
