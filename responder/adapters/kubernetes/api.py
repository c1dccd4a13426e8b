"""The KubeApi port over the official `kubernetes` client (synchronous, run on own threads).

Configuration: a kubeconfig file (RESPONDER_KUBECONFIG, optional RESPONDER_K8S_CONTEXT) or the
pod's ServiceAccount (RESPONDER_K8S_IN_CLUSTER=true). Nothing touches the client's global
default configuration. Every call:

- is refused with NotAllowedError unless its namespace is in RESPONDER_K8S_ALLOWED_NAMESPACES;
- passes `_request_timeout` (RESPONDER_K8S_REQUEST_TIMEOUT_SECONDS, or the caller's smaller
  value) and runs on this adapter's small thread pool, so a hung API server cannot starve the
  event loop's default executor; an outer asyncio timeout backs it up;
- is not retried by urllib3 on a read (the engine retries TemporaryError with backoff);
- translates errors: 5xx, 429, timeouts, unreachable -> TemporaryError; 409 -> TemporaryError
  (changed since read); 403 -> PermanentError naming the RBAC verb and resource to grant;
  401, 404, 400, 422 -> PermanentError.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pydantic
import urllib3
from kubernetes.client import (
    ApiClient,
    ApiException,
    AppsV1Api,
    CoreV1Api,
    V1ConfigMap,
    V1DeleteOptions,
    V1ObjectMeta,
    V1Preconditions,
)
from kubernetes.config.incluster_config import SERVICE_CERT_FILENAME, SERVICE_TOKEN_FILENAME

from responder.adapters.kubernetes import clients, objects
from responder.adapters.kubernetes.errors import Op, translate, unreachable
from responder.core.kube_names import check_namespace
from responder.core.rollouts import RESTARTED_AT, restart_stamp
from responder.errors import PermanentError, TemporaryError
from responder.models.kube import ConfigMap, Deployment, KubeEvent, NewEvent, Pod, Scale

T = TypeVar("T")
COMPONENT = "responder"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
_SELECTOR_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$")


class KubernetesApi:
    """`KubeApi` over one cluster; create with `from_kubeconfig` or `in_cluster`."""

    def __init__(
        self,
        client: ApiClient,
        *,
        allowed_namespaces: tuple[str, ...],
        request_timeout_seconds: float,
        instance_id: str = COMPONENT,
        threads: int = 4,
    ) -> None:
        if request_timeout_seconds <= 0:
            raise ValueError("request_timeout_seconds must be positive")
        self._client = client
        self._client.user_agent = f"{COMPONENT}/kubernetes-client"
        self._apps = AppsV1Api(client)
        self._core = CoreV1Api(client)
        self._allowed = allowed_namespaces
        self._timeout = request_timeout_seconds
        self._instance = instance_id[:128]
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="responder-kube")

    @classmethod
    def from_kubeconfig(
        cls,
        path: Path,
        *,
        context: str | None = None,
        allowed_namespaces: tuple[str, ...],
        request_timeout_seconds: float,
        instance_id: str = COMPONENT,
    ) -> KubernetesApi:
        """From a kubeconfig file (ValueError naming the file when it does not load)."""
        return cls(
            clients.from_kubeconfig(path, context),
            allowed_namespaces=allowed_namespaces,
            request_timeout_seconds=request_timeout_seconds,
            instance_id=instance_id,
        )

    @classmethod
    def in_cluster(
        cls,
        *,
        allowed_namespaces: tuple[str, ...],
        request_timeout_seconds: float,
        instance_id: str = COMPONENT,
        token_file: str = SERVICE_TOKEN_FILENAME,
        cert_file: str = SERVICE_CERT_FILENAME,
        environ: Mapping[str, str] | None = None,
    ) -> KubernetesApi:
        """From the pod's ServiceAccount (ValueError when none is mounted)."""
        return cls(
            clients.in_cluster(token_file, cert_file, environ),
            allowed_namespaces=allowed_namespaces,
            request_timeout_seconds=request_timeout_seconds,
            instance_id=instance_id,
        )

    async def close(self) -> None:
        """Stop the threads (a call still blocked ends at its request timeout) and the pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()  # type: ignore[no-untyped-call]

    async def _call(self, op: Op, call: Callable[[float], T], cap: float | None) -> T:
        check_namespace(op.namespace, self._allowed)
        seconds = min(cap, self._timeout) if cap is not None else self._timeout
        seconds = max(seconds, 0.1)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds + 1.0):
                return await loop.run_in_executor(self._pool, call, seconds)
        except ApiException as exc:
            raise translate(op, exc) from exc
        except urllib3.exceptions.MaxRetryError as exc:
            raise unreachable(op, exc.reason or exc, seconds) from exc
        except (TimeoutError, urllib3.exceptions.HTTPError) as exc:
            raise unreachable(op, exc, seconds) from exc
        except (pydantic.ValidationError, ValueError) as exc:
            raise PermanentError(
                f"Kubernetes API: {op}: request or answer did not validate: {str(exc)[:300]}"
            ) from exc

    async def read_deployment(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> Deployment:
        """GET an apps/v1 Deployment."""
        op = Op("get", "deployments", namespace, name, "apps")
        obj = await self._call(
            op,
            lambda t: self._apps.read_namespaced_deployment(name, namespace, _request_timeout=t),
            timeout_seconds,
        )
        return objects.deployment(obj)

    async def restart_deployment(
        self,
        namespace: str,
        name: str,
        restarted_at: datetime,
        *,
        timeout_seconds: float | None = None,
    ) -> Deployment:
        """The strategic-merge PATCH `kubectl rollout restart` sends (fieldManager=responder)."""
        stamp = restart_stamp(restarted_at)
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        op = Op("patch", "deployments", namespace, name, "apps")
        obj = await self._call(
            op,
            lambda t: self._apps.patch_namespaced_deployment(
                name,
                namespace,
                body,
                field_manager=COMPONENT,
                _content_type=STRATEGIC_MERGE_PATCH,
                _request_timeout=t,
            ),
            timeout_seconds,
        )
        return objects.deployment(obj)

    async def read_scale(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> Scale:
        """GET deployments/{name}/scale."""
        op = Op("get", "deployments/scale", namespace, name, "apps")
        obj = await self._call(
            op,
            lambda t: self._apps.read_namespaced_deployment_scale(
                name, namespace, _request_timeout=t
            ),
            timeout_seconds,
        )
        return objects.scale(obj)

    async def patch_scale(
        self, namespace: str, name: str, replicas: int, *, timeout_seconds: float | None = None
    ) -> Scale:
        """Merge-PATCH `{"spec":{"replicas":n}}` on the scale subresource (as kubectl scale)."""
        body = {"spec": {"replicas": replicas}}
        op = Op("patch", "deployments/scale", namespace, name, "apps")
        obj = await self._call(
            op,
            lambda t: self._apps.patch_namespaced_deployment_scale(
                name,
                namespace,
                body,
                field_manager=COMPONENT,
                _content_type=MERGE_PATCH,
                _request_timeout=t,
            ),
            timeout_seconds,
        )
        return objects.scale(obj)

    async def list_pods(
        self,
        namespace: str,
        label_selector: str | None = None,
        *,
        limit: int = 500,
        timeout_seconds: float | None = None,
    ) -> list[Pod]:
        """Pods matching `label_selector`, at most `limit`."""
        op = Op("list", "pods", namespace)
        listed = await self._call(
            op,
            lambda t: self._core.list_namespaced_pod(
                namespace, label_selector=label_selector or None, limit=limit, _request_timeout=t
            ),
            timeout_seconds,
        )
        return [objects.pod(item) for item in listed.items[:limit]]

    async def read_pod(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> Pod:
        """GET one Pod."""
        op = Op("get", "pods", namespace, name)
        obj = await self._call(
            op,
            lambda t: self._core.read_namespaced_pod(name, namespace, _request_timeout=t),
            timeout_seconds,
        )
        return objects.pod(obj)

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
        """`tailLines`/`limitBytes`-bounded log text of one container."""
        op = Op("get", "pods/log", namespace, name)
        text = await self._call(
            op,
            lambda t: self._core.read_namespaced_pod_log(
                name,
                namespace,
                container=container,
                tail_lines=tail_lines,
                limit_bytes=limit_bytes,
                previous=True if previous else None,
                _request_timeout=t,
            ),
            timeout_seconds,
        )
        return text[: limit_bytes * 2]  # the server's limit is approximate

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
        """core/v1 Events of a namespace or one object (involvedObject field selectors)."""
        terms = {
            "involvedObject.kind": kind,
            "involvedObject.name": name,
            "involvedObject.uid": uid,
        }
        selector = ",".join(f"{k}={_selector_value(v)}" for k, v in terms.items() if v)
        op = Op("list", "events", namespace)
        listed = await self._call(
            op,
            lambda t: self._core.list_namespaced_event(
                namespace, field_selector=selector or None, limit=limit, _request_timeout=t
            ),
            timeout_seconds,
        )
        return [objects.event(item) for item in listed.items[:limit]]

    async def delete_pod(
        self,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        grace_period_seconds: int | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        """DELETE one Pod, only the instance with `uid` when given."""
        options = V1DeleteOptions(
            grace_period_seconds=grace_period_seconds,
            preconditions=V1Preconditions(uid=uid) if uid else None,
        )
        op = Op("delete", "pods", namespace, name)
        await self._call(
            op,
            lambda t: self._core.delete_namespaced_pod(
                name, namespace, body=options, _request_timeout=t
            ),
            timeout_seconds,
        )

    async def create_event(
        self, namespace: str, event: NewEvent, *, timeout_seconds: float | None = None
    ) -> KubeEvent:
        """POST a core/v1 Event on `event.regarding` (source and reportingComponent responder)."""
        now = datetime.now(UTC).replace(microsecond=0)
        body = objects.new_event(
            namespace, event, component=COMPONENT, instance=self._instance, now=now
        )
        op = Op("create", "events", namespace)
        created = await self._call(
            op,
            lambda t: self._core.create_namespaced_event(namespace, body, _request_timeout=t),
            timeout_seconds,
        )
        return objects.event(created)

    async def get_config_map(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> ConfigMap:
        """GET one ConfigMap."""
        obj = await self._read_config_map(namespace, name, timeout_seconds)
        return objects.config_map(obj)

    async def replace_config_map(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        resource_version: str,
        *,
        timeout_seconds: float | None = None,
    ) -> ConfigMap:
        """PUT new `data` if the ConfigMap is still at `resource_version` (labels, annotations
        and binaryData are kept: the PUT carries the object as read).
        """
        current = await self._read_config_map(namespace, name, timeout_seconds)
        meta = current.metadata or V1ObjectMeta()
        if meta.resource_version != resource_version:
            raise TemporaryError(
                f"Kubernetes API: ConfigMap {namespace}/{name} changed since it was read "
                f"(resourceVersion {meta.resource_version}, expected {resource_version}); "
                "read it again and retry",
                delay=0.5,
            )
        body = current.model_copy(update={"data": dict(data)})
        op = Op("update", "configmaps", namespace, name)
        obj = await self._call(
            op,
            lambda t: self._core.replace_namespaced_config_map(
                name, namespace, body, field_manager=COMPONENT, _request_timeout=t
            ),
            timeout_seconds,
        )
        return objects.config_map(obj)

    async def _read_config_map(
        self, namespace: str, name: str, timeout_seconds: float | None
    ) -> V1ConfigMap:
        op = Op("get", "configmaps", namespace, name)
        return await self._call(
            op,
            lambda t: self._core.read_namespaced_config_map(name, namespace, _request_timeout=t),
            timeout_seconds,
        )


def _selector_value(value: str) -> str:
    if not _SELECTOR_VALUE.match(value):
        raise PermanentError(f"{value[:80]!r} cannot be used in a field selector")
    return value
