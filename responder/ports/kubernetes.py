"""The KubeApi port: the Kubernetes API calls actions make, with their RBAC and error contract."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from responder.models.kube import ConfigMap, Deployment, KubeEvent, NewEvent, Pod, Scale


class KubeApi(Protocol):
    """The Kubernetes API calls actions make, each bounded by a request timeout.

    `timeout_seconds=None` uses the adapter's configured request timeout
    (RESPONDER_K8S_REQUEST_TIMEOUT_SECONDS); a value caps this one call. Namespaces outside
    RESPONDER_K8S_ALLOWED_NAMESPACES are refused with NotAllowedError before any request.
    Errors: 5xx, 429, timeouts and unreachable servers -> TemporaryError; 409 -> TemporaryError
    (stale resourceVersion: re-read and retry); 403 -> PermanentError naming the missing RBAC
    verb and resource; 404, 401, 400/422 -> PermanentError.
    """

    async def read_deployment(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> Deployment:
        """GET an apps/v1 Deployment (RBAC: get deployments)."""
        ...

    async def restart_deployment(
        self,
        namespace: str,
        name: str,
        restarted_at: datetime,
        *,
        timeout_seconds: float | None = None,
    ) -> Deployment:
        """PATCH the pod template's `kubectl.kubernetes.io/restartedAt` annotation exactly as
        `kubectl rollout restart` does (strategic-merge patch, RFC 3339 seconds, UTC), with
        fieldManager=responder. Returns the patched Deployment (RBAC: patch deployments).
        """
        ...

    async def read_scale(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> Scale:
        """GET deployments/{name}/scale (RBAC: get deployments/scale)."""
        ...

    async def patch_scale(
        self, namespace: str, name: str, replicas: int, *, timeout_seconds: float | None = None
    ) -> Scale:
        """Merge-PATCH `{"spec":{"replicas":n}}` on the scale subresource, as `kubectl scale`
        (RBAC: patch deployments/scale).
        """
        ...

    async def list_pods(
        self,
        namespace: str,
        label_selector: str | None = None,
        *,
        limit: int = 500,
        timeout_seconds: float | None = None,
    ) -> list[Pod]:
        """Pods matching an equality label selector, at most `limit` (RBAC: list pods)."""
        ...

    async def read_pod(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> Pod:
        """GET one Pod (RBAC: get pods)."""
        ...

    async def read_pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        tail_lines: int,
        limit_bytes: int,
        previous: bool = False,
        timeout_seconds: float | None = None,
    ) -> str:
        """The last `tail_lines` lines (at most `limit_bytes`) of one container's log; with
        `previous`, of its terminated instance (RBAC: get pods/log).
        """
        ...

    async def list_events(
        self,
        namespace: str,
        *,
        kind: str | None = None,
        name: str | None = None,
        uid: str | None = None,
        limit: int = 500,
        timeout_seconds: float | None = None,
    ) -> list[KubeEvent]:
        """core/v1 Events of a namespace, or of one object (`involvedObject.*` field
        selectors), in server order, at most `limit` (RBAC: list events).
        """
        ...

    async def delete_pod(
        self,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        grace_period_seconds: int | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        """DELETE one Pod; with `uid`, only that instance (a precondition: a replacement with
        the same name answers 409). RBAC: delete pods.
        """
        ...

    async def create_event(
        self, namespace: str, event: NewEvent, *, timeout_seconds: float | None = None
    ) -> KubeEvent:
        """POST a core/v1 Event on `event.regarding` (source and reportingComponent
        `responder`), so `kubectl describe` shows it (RBAC: create events).
        """
        ...

    async def get_config_map(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> ConfigMap:
        """GET one ConfigMap with its resourceVersion (RBAC: get configmaps)."""
        ...

    async def replace_config_map(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        resource_version: str,
        *,
        timeout_seconds: float | None = None,
    ) -> ConfigMap:
        """PUT the ConfigMap's `data` only if it is still at `resource_version` (409 ->
        TemporaryError: someone else changed it; read again). RBAC: update configmaps.
        """
        ...
