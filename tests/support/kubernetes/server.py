"""An in-process fake Kubernetes API server (aiohttp on 127.0.0.1) for the real client and kubectl.

Per target-apis §3.9: legacy discovery, a per-resource object store (Deployments with the scale
subresource, Pods with logs, core/v1 and events.k8s.io/v1 Events, ConfigMaps, an empty
ReplicaSet list), get/list/watch/create/patch/put/delete, equality label and field selectors,
resourceVersion conflicts (409), uid preconditions, a controller that rolls Deployments out
after a spec change (or gets stuck: ProgressDeadlineExceeded), faults injected per verb and path
(a status such as 500/409/403, or a hang), and a record of every request. Tests reach it
through a generated kubeconfig (`write_kubeconfig`), so the official client and kubectl run
unmodified.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import ssl
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.kubernetes import objects
from tests.support.kubernetes.discovery import discovery
from tests.support.kubernetes.handlers import KINDS, handle, status
from tests.support.kubernetes.objects import Obj
from tests.support.loopback import free_port

TOKEN = "test-token"
_VERBS = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    accept: str | None
    user_agent: str | None
    authorization: str | None
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class Fault:
    """The next `times` requests `method path` answer `status` after `hang` seconds; with
    `after`, the request is carried out first and only its answer is delayed (a lost reply)."""

    method: str
    path: str
    status: int | None = None
    hang: float = 0.0
    after: bool = False
    times: int = 1
    message: str | None = None


@dataclass
class Where:
    """A parsed resource path."""

    group: str
    version: str
    resource: str
    namespace: str | None
    name: str | None
    sub: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.resource)


@dataclass
class FakeKube:
    """The fake server: its objects, the requests it saw and the switches tests flip."""

    rollout_delay: float = 0.2
    stuck: bool = False  # rollouts stop short and report ProgressDeadlineExceeded
    pod_termination_seconds: float = 0.0  # >0: deleted pods linger with deletionTimestamp
    store: dict[tuple[str, str], dict[tuple[str, str], Obj]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    requests: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    logs: dict[tuple[str, str, str | None, bool], str] = field(default_factory=dict)
    port: int = 0
    scheme: str = "http"
    _rv: int = 100
    _history: list[tuple[int, tuple[str, str], str, Obj]] = field(default_factory=list)
    _tick: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _handlers: set[asyncio.Task[object]] = field(default_factory=set)  # requests in flight
    _runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    async def start(self, *, tls: ssl.SSLContext | None = None) -> None:
        """Serve on a free 127.0.0.1 port; with `tls`, HTTPS (for the in-cluster loader)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=tls).start()
        self.scheme = "https" if tls is not None else "http"

    async def close(self) -> None:
        self._closing = True
        self._notify()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # aiohttp lets a handler run on after its client gave up: end the hangs first, so
        # neither the shutdown waits for them nor do they outlive the server
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def write_kubeconfig(self, path: Path, *, token: str = TOKEN) -> Path:
        """A kubeconfig file pointing at this server (context `fake`, namespace default)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "responder", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "responder", "namespace": "default"},
                }
            ],
        }
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    # -- seeding and inspection ------------------------------------------------------------

    def add_deployment(self, namespace: str, name: str, **options: Any) -> Obj:
        """A Deployment, already rolled out: ready pods and a complete status."""
        created = self._create(
            ("apps", "deployments"), namespace, objects.deployment(namespace, name, **options)
        )
        for pod in objects.pods_of(created, created["spec"]["replicas"]):
            self._create(("", "pods"), namespace, pod)
        self._set_status(created, complete=True)
        return self.get("apps", "deployments", namespace, name) or {}

    def add_pod(self, pod: Obj) -> Obj:
        return self._create(("", "pods"), pod["metadata"]["namespace"], pod)

    def add_config_map(self, namespace: str, name: str, data: dict[str, str]) -> Obj:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": dict(data),
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "flags"}},
        }
        return self._create(("", "configmaps"), namespace, body)

    def set_log(
        self,
        namespace: str,
        pod: str,
        text: str,
        *,
        container: str | None = None,
        previous: bool = False,
    ) -> None:
        self.logs[(namespace, pod, container, previous)] = text

    def fail(
        self, method: str, path: str, status: int, *, times: int = 1, message: str | None = None
    ) -> None:
        self.faults.append(Fault(method, path, status=status, times=times, message=message))

    def hang(
        self, method: str, path: str, seconds: float, *, times: int = 1, after: bool = False
    ) -> None:
        self.faults.append(Fault(method, path, hang=seconds, times=times, after=after))

    def get(self, group: str, resource: str, namespace: str, name: str) -> Obj | None:
        return self.store[(group, resource)].get((namespace, name))

    def must(self, group: str, resource: str, namespace: str, name: str) -> Obj:
        """The stored object (the test fails when there is none)."""
        found = self.get(group, resource, namespace, name)
        assert found is not None, f"no {resource} {namespace}/{name}"
        return found

    def listed(self, group: str, resource: str, namespace: str) -> list[Obj]:
        return [o for (ns, _), o in self.store[(group, resource)].items() if ns == namespace]

    def pods_of(self, namespace: str, labels: dict[str, str]) -> list[Obj]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        return [p for p in self.listed("", "pods", namespace) if objects.labels_match(selector, p)]

    def seen(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # -- storage ---------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def _write(self, key: tuple[str, str], obj: Obj, kind: str) -> Obj:
        meta = obj["metadata"]
        meta["resourceVersion"] = self._next_rv()
        where = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            self.store[key].pop(where, None)
        else:
            self.store[key][where] = obj
        self._history.append((int(meta["resourceVersion"]), key, kind, copy.deepcopy(obj)))
        self._notify()
        return obj

    def _create(self, key: tuple[str, str], namespace: str, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            meta["name"] = f"{meta.get('generateName', 'obj-')}{secrets.token_hex(3)[:5]}"
        meta.update(
            namespace=namespace, uid=secrets.token_hex(16), creationTimestamp=objects.now_text()
        )
        if key == ("apps", "deployments"):
            meta["generation"] = 1
            obj.setdefault("status", {})
            self._schedule(namespace, meta["name"])
        return self._write(key, obj, "ADDED")

    def _set_status(self, dep: Obj, *, complete: bool) -> None:
        spec, meta = dep["spec"], dep["metadata"]
        replicas = spec.get("replicas", 1)
        available = {
            "type": "Available",
            "status": "True",
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
        }
        if complete:
            progressing = {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": "ReplicaSet has successfully progressed.",
            }
            counts = dict.fromkeys(
                ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"), replicas
            )
        else:
            progressing = {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": f'ReplicaSet "{meta["name"]}-7c9d" has timed out progressing.',
            }
            old = replicas
            counts = {
                "replicas": old + 1,
                "updatedReplicas": max(replicas - 1, 0),
                "readyReplicas": old,
                "availableReplicas": old,
                "unavailableReplicas": 1,
            }
        dep["status"] = {
            "observedGeneration": meta["generation"],
            **counts,
            "conditions": [available, progressing],
        }
        self._write(("apps", "deployments"), dep, "MODIFIED")

    # -- the controller --------------------------------------------------------------------

    def _schedule(self, namespace: str, name: str) -> None:
        if self._closing:  # a write that hung past close() starts no rollout nobody stops
            return
        task = asyncio.get_running_loop().create_task(
            self._reconcile(namespace, name), name=f"fake-kube-rollout-{namespace}-{name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconcile(self, namespace: str, name: str) -> None:
        await asyncio.sleep(self.rollout_delay)
        dep = self.get("apps", "deployments", namespace, name)
        if dep is None or dep["spec"].get("paused"):
            return
        if self.stuck:
            self._set_status(dep, complete=False)
            return
        wanted = dep["spec"].get("replicas", 1)
        current = objects.template_hash(dep["spec"]["template"])
        mine = self.pods_of(namespace, dep["spec"]["selector"]["matchLabels"])
        live = [p for p in mine if not p["metadata"].get("deletionTimestamp")]  # leave those
        keep = [p for p in live if p["metadata"]["labels"].get("pod-template-hash") == current]
        for pod in [p for p in live if p not in keep[:wanted]]:
            self._write(("", "pods"), pod, "DELETED")
        for pod in objects.pods_of(dep, max(wanted - len(keep), 0)):
            self._create(("", "pods"), namespace, pod)
        self._set_status(dep, complete=True)

    def _owner_of(self, pod: Obj) -> Obj | None:
        namespace = pod["metadata"]["namespace"]
        for dep in self.listed("apps", "deployments", namespace):
            labels = dep["spec"]["selector"]["matchLabels"]
            if objects.labels_match(",".join(f"{k}={v}" for k, v in labels.items()), pod):
                return dep
        return None

    # -- HTTP ------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            return await self._dispatch_one(request)
        finally:
            self._handlers.discard(handler)

    async def _dispatch_one(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = Seen(
            request.method,
            request.path,
            dict(request.query),
            request.headers.get("Content-Type"),
            request.headers.get("Accept"),
            request.headers.get("User-Agent"),
            request.headers.get("Authorization"),
            body,
        )
        self.requests.append(seen)
        where = _parse(request.path)
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and fault.path == request.path:
                fault.times -= 1
                if fault.after:
                    answer = await self._answer(request, seen, where, body)
                    await asyncio.sleep(fault.hang)
                    return answer
                if fault.hang:
                    await asyncio.sleep(fault.hang)
                if fault.status is not None:
                    return _injected(fault, request, where)
                break
        return await self._answer(request, seen, where, body)

    async def _answer(
        self, request: web.Request, seen: Seen, where: Where | None, body: bytes
    ) -> web.StreamResponse:
        if seen.authorization and seen.authorization.lower() != f"bearer {TOKEN}":
            # kubectl sends no token over plain HTTP: anonymous is let in, a wrong token not
            return status(401, "Unauthorized", "Unauthorized")
        if "protobuf" in (seen.content_type or ""):
            return status(415, "UnsupportedMediaType", "this fake speaks JSON only")
        found = discovery(request.path, self.port)
        if found is not None:
            return web.json_response(found)
        if where is None or where.key not in KINDS:
            return status(404, "NotFound", f"the server could not find {request.path}")
        return await handle(self, request, where, body)


def _parse(path: str) -> Where | None:
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    return Where(group, version, rest[0], namespace, *[*rest[1:], None, None][:2])


def _injected(fault: Fault, request: web.Request, where: Where | None) -> web.Response:
    code = fault.status or 500
    if code == 403 and where is not None:
        verb = "list" if request.method == "GET" and not where.name else _VERBS[request.method]
        resource = where.resource + (f"/{where.sub}" if where.sub else "")
        qualified = where.resource + (f".{where.group}" if where.group else "")
        message = fault.message or (
            f'{qualified} "{where.name or ""}" is forbidden: User "system:serviceaccount:ops:'
            f'responder" cannot {verb} resource "{resource}" in API group "{where.group}" in '
            f'the namespace "{where.namespace}"'
        )
        details = {"name": where.name or "", "group": where.group, "kind": where.resource}
        return status(403, "Forbidden", message, details)
    reasons = {
        409: "Conflict",
        404: "NotFound",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
    }
    return status(code, reasons.get(code, "Unknown"), fault.message or f"injected {code}")
