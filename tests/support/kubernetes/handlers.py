"""The verbs of the fake Kubernetes API server: get, list, watch, create, patch, put, delete,
plus the `scale` and `log` subresources (see server.py beside it)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.kubernetes import objects
from tests.support.kubernetes.objects import Obj, PatchError

if TYPE_CHECKING:
    from tests.support.kubernetes.server import FakeKube, Where

KINDS = {
    ("", "pods"): "Pod",
    ("", "events"): "Event",
    ("", "configmaps"): "ConfigMap",
    ("apps", "deployments"): "Deployment",
    ("apps", "replicasets"): "ReplicaSet",
    ("events.k8s.io", "events"): "Event",
}
_MERGE = ("application/merge-patch+json", "application/strategic-merge-patch+json")
_JSON_PATCH = "application/json-patch+json"
_WATCH_MAX_SECONDS = 30.0


def status(code: int, reason: str, message: str, details: Obj | None = None) -> web.Response:
    """A `Status` error body, as the API server sends."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }
    return web.json_response(body, status=code)


def _conflict(where: Where, what: str) -> web.Response:
    return status(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {where.resource} "{where.name}": {what}',
        {"name": where.name, "kind": where.resource},
    )


def _not_found(where: Where) -> web.Response:
    qualified = where.resource + (f".{where.group}" if where.group else "")
    return status(
        404,
        "NotFound",
        f'{qualified} "{where.name}" not found',
        {"name": where.name, "kind": where.resource},
    )


def _selected(obj: Obj, query: Any) -> bool:
    labels, fields = query.get("labelSelector"), query.get("fieldSelector")
    return (not labels or objects.labels_match(labels, obj)) and (
        not fields or objects.fields_match(fields, obj)
    )


async def handle(
    fake: FakeKube, request: web.Request, where: Where, body: bytes
) -> web.StreamResponse:
    """Answer one resource request."""
    method, query = request.method, request.query
    if where.sub == "log" and method == "GET":
        return _log(fake, where, query)
    if where.sub == "scale":
        return _scale(fake, where, method, request.content_type, body)
    if where.sub is not None:
        return status(404, "NotFound", f"no subresource {where.sub}")
    if method == "GET" and where.name is None:
        if query.get("watch") in ("true", "1"):
            return await _watch(fake, request, where)
        return _list(fake, where, query)
    if method == "POST" and where.name is None and where.namespace is not None:
        return _create(fake, where, json.loads(body or b"{}"))
    current = fake.store[where.key].get((where.namespace or "", where.name or ""))
    if current is None:
        return _not_found(where)
    if method == "GET":
        return web.json_response(current)
    if method == "PATCH":
        return _patch(fake, where, current, request.content_type, body)
    if method == "PUT":
        return _replace(fake, where, current, json.loads(body))
    if method == "DELETE":
        return _delete(fake, where, current, json.loads(body) if body else {})
    return status(405, "MethodNotAllowed", f"{method} is not supported here")


def _list(fake: FakeKube, where: Where, query: Any) -> web.Response:
    items = [
        o
        for (ns, _), o in sorted(fake.store[where.key].items())
        if (where.namespace is None or ns == where.namespace) and _selected(o, query)
    ]
    if query.get("limit", "").isdigit():
        items = items[: int(query["limit"])]
    version = f"{where.group}/{where.version}" if where.group else where.version
    return web.json_response(
        {
            "kind": f"{KINDS[where.key]}List",
            "apiVersion": version,
            "metadata": {"resourceVersion": str(fake._rv)},
            "items": items,
        }
    )


async def _watch(fake: FakeKube, request: web.Request, where: Where) -> web.StreamResponse:
    """Newline-delimited watch events after `resourceVersion`, until `timeoutSeconds`."""
    query = request.query
    since = int(query.get("resourceVersion") or 0)
    seconds = min(float(query.get("timeoutSeconds") or _WATCH_MAX_SECONDS), _WATCH_MAX_SECONDS)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        while not fake._closing and loop.time() < deadline:
            tick = fake._tick
            for version, key, kind, obj in list(fake._history):
                if version <= since or key != where.key:
                    continue
                since = version
                if where.namespace and obj["metadata"]["namespace"] != where.namespace:
                    continue
                if _selected(obj, query):
                    line = json.dumps({"type": kind, "object": obj}) + "\n"
                    await response.write(line.encode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tick.wait(), max(deadline - loop.time(), 0.01))
        await response.write_eof()
    return response


def _create(fake: FakeKube, where: Where, body: Obj) -> web.Response:
    namespace = where.namespace or ""
    meta = body.get("metadata") or {}
    if meta.get("namespace") not in (None, "", namespace):
        return status(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        )
    involved = body.get("involvedObject")
    if where.key == ("", "events") and (involved or {}).get("namespace") != namespace:
        return status(
            422,
            "Invalid",
            "Event is invalid: involvedObject.namespace: Invalid "
            "value: does not match event.namespace",
        )
    if meta.get("name") and (namespace, meta["name"]) in fake.store[where.key]:
        return status(409, "AlreadyExists", f'{where.resource} "{meta["name"]}" already exists')
    body.setdefault(
        "apiVersion", f"{where.group}/{where.version}" if where.group else where.version
    )
    body.setdefault("kind", KINDS[where.key])  # the server fills these in, as a real one does
    created = fake._create(where.key, namespace, body)
    return web.json_response(created, status=201)


def _apply_patch(current: Obj, content_type: str, body: bytes) -> Obj:
    document = json.loads(body)
    if content_type in _MERGE:
        merged: Obj = objects.merge_patch(current, document)
        return merged
    if content_type == _JSON_PATCH:
        return objects.json_patch(current, document)
    raise TypeError(content_type)


def _patch(
    fake: FakeKube, where: Where, current: Obj, content_type: str, body: bytes
) -> web.Response:
    if content_type not in (*_MERGE, _JSON_PATCH):
        return status(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown "
            f"format - accepted media types include: {', '.join(_MERGE)}",
        )
    document = json.loads(body)
    wanted_rv = (
        (document.get("metadata") or {}).get("resourceVersion")
        if isinstance(document, dict)
        else None
    )
    if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
        return _conflict(
            where,
            "the object has been modified; please apply your changes to "
            "the latest version and try again",
        )
    try:
        patched = _apply_patch(current, content_type, body)
    except PatchError as exc:
        return status(422, "Invalid", str(exc))
    return web.json_response(_store(fake, where, current, patched))


def _replace(fake: FakeKube, where: Where, current: Obj, body: Obj) -> web.Response:
    wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
    if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
        return _conflict(
            where,
            "the object has been modified; please apply your changes to "
            "the latest version and try again",
        )
    return web.json_response(_store(fake, where, current, body))


def _store(fake: FakeKube, where: Where, current: Obj, changed: Obj) -> Obj:
    """Write `changed` over `current`: identity kept, generation bumped on a spec change."""
    updated = copy.deepcopy(changed)
    meta = updated.setdefault("metadata", {})
    for kept in ("name", "namespace", "uid", "creationTimestamp", "generation"):
        if kept in current["metadata"]:
            meta[kept] = current["metadata"][kept]
    if where.key == ("apps", "deployments"):
        updated["status"] = current.get("status", {})
        if updated.get("spec") != current.get("spec"):
            meta["generation"] = current["metadata"]["generation"] + 1
            fake._schedule(meta["namespace"], meta["name"])
    return fake._write(where.key, updated, "MODIFIED")


def _delete(fake: FakeKube, where: Where, current: Obj, options: Obj) -> web.Response:
    uid = (options.get("preconditions") or {}).get("uid")
    if uid and uid != current["metadata"]["uid"]:
        return _conflict(
            where,
            f"Precondition failed: UID in precondition: {uid}, UID in "
            f"object meta: {current['metadata']['uid']}",
        )
    owner = fake._owner_of(current) if where.key == ("", "pods") else None
    if where.key == ("", "pods") and fake.pod_termination_seconds > 0:
        current["metadata"]["deletionTimestamp"] = objects.now_text()
        current["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        fake._write(where.key, current, "MODIFIED")
        loop = asyncio.get_running_loop()
        loop.call_later(fake.pod_termination_seconds, _finish_delete, fake, where.key, current)
    else:
        fake._write(where.key, current, "DELETED")
    if owner is not None:
        fake._schedule(owner["metadata"]["namespace"], owner["metadata"]["name"])
    return web.json_response(current)


def _finish_delete(fake: FakeKube, key: tuple[str, str], obj: Obj) -> None:
    meta = obj["metadata"]
    if (meta["namespace"], meta["name"]) in fake.store[key] and not fake._closing:
        fake._write(key, obj, "DELETED")


def scale_of(dep: Obj) -> Obj:
    """The autoscaling/v1 Scale of a Deployment."""
    meta = dep["metadata"]
    labels = dep["spec"]["selector"]["matchLabels"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": dep["spec"].get("replicas", 1)},
        "status": {
            "replicas": dep.get("status", {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in labels.items()),
        },
    }


def _scale(
    fake: FakeKube, where: Where, method: str, content_type: str, body: bytes
) -> web.Response:
    if where.key != ("apps", "deployments"):
        return status(404, "NotFound", f"{where.resource} has no scale subresource")
    dep = fake.store[where.key].get((where.namespace or "", where.name or ""))
    if dep is None:
        return _not_found(where)
    if method == "GET":
        return web.json_response(scale_of(dep))
    if method == "PATCH":
        if content_type not in (*_MERGE, _JSON_PATCH):
            return status(415, "UnsupportedMediaType", "unsupported patch type")
        try:
            wanted = _apply_patch(scale_of(dep), content_type, body)
        except PatchError as exc:
            return status(422, "Invalid", str(exc))
    elif method == "PUT":
        wanted = json.loads(body)
        rv = (wanted.get("metadata") or {}).get("resourceVersion")
        if rv and rv != dep["metadata"]["resourceVersion"]:
            return _conflict(where, "the object has been modified")
    else:
        return status(405, "MethodNotAllowed", f"{method} on scale")
    replicas = (wanted.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        return status(422, "Invalid", "Scale.spec.replicas: Invalid value: must be >= 0")
    changed = copy.deepcopy(dep)
    changed["spec"]["replicas"] = replicas
    return web.json_response(scale_of(_store(fake, where, dep, changed)))


def _log(fake: FakeKube, where: Where, query: Any) -> web.Response:
    namespace, name = where.namespace or "", where.name or ""
    pod = fake.store[("", "pods")].get((namespace, name))
    if pod is None:
        return _not_found(where)
    containers = [c["name"] for c in pod["spec"]["containers"]]
    container = query.get("container")
    if container is None and len(containers) > 1:
        return status(
            400,
            "BadRequest",
            f"a container name must be specified for pod {name}, "
            f"choose one of: [{' '.join(containers)}]",
        )
    if container is not None and container not in containers:
        return status(400, "BadRequest", f"container {container} is not valid for pod {name}")
    previous = query.get("previous") == "true"
    text = fake.logs.get((namespace, name, container, previous))
    if text is None:
        text = fake.logs.get((namespace, name, None, previous))
    if text is None and previous:
        shown = container or containers[0]
        message = f'previous terminated container "{shown}" in pod "{name}" not found'
        return status(400, "BadRequest", message)
    lines = (text or "").splitlines(keepends=True)
    if query.get("tailLines", "").isdigit():
        lines = lines[-int(query["tailLines"]) :] if int(query["tailLines"]) else []
    data = "".join(lines).encode()
    if query.get("limitBytes", "").isdigit():
        data = data[: int(query["limitBytes"])]
    return web.Response(body=data, content_type="text/plain", charset="utf-8")
