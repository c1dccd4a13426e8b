"""Objects, patches and selectors of the fake Kubernetes API server (server.py beside it).

Builders produce objects that pass the official client's (v37, pydantic) response validation:
pods carry `image`/`imageID`/`ready`/`restartCount` in every container status, Deployments a
selector and a template. Patches follow RFC 7386 (merge; strategic merge is treated as merge,
exact for the map-only patches responder and kubectl send here) and RFC 6902 (JSON patch).
"""

from __future__ import annotations

import copy
import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


class PatchError(Exception):
    """A JSON patch that cannot be applied (422), or a failed `test` op."""


def now_text() -> str:
    """The current time as the API server writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_hash(template: Obj) -> str:
    """A stable pod-template-hash for a pod template (like the ReplicaSet controller's)."""
    text = repr(sorted(_flatten(template)))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _flatten(v, f"{prefix}/{k}")]
    if isinstance(value, list):
        return [pair for i, v in enumerate(value) for pair in _flatten(v, f"{prefix}/{i}")]
    return [(prefix, repr(value))]


def deployment(
    namespace: str,
    name: str,
    *,
    replicas: int = 2,
    labels: dict[str, str] | None = None,
    paused: bool = False,
    progress_deadline_seconds: int = 600,
    image: str = "shop/web:1.4",
) -> Obj:
    """A Deployment manifest (the server fills metadata and status)."""
    selector = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(selector)},
        "spec": {
            "replicas": replicas,
            "paused": paused,
            "progressDeadlineSeconds": progress_deadline_seconds,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": {"labels": dict(selector)},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def container_status(
    name: str,
    image: str,
    *,
    ready: bool = True,
    restarts: int = 0,
    waiting: str | None = None,
    last_reason: str | None = None,
    last_exit_code: int = 137,
) -> Obj:
    """One schema-valid `containerStatuses[]` entry."""
    state: Obj = (
        {"waiting": {"reason": waiting, "message": f"back-off restarting {name}"}}
        if waiting
        else {"running": {"startedAt": now_text()}}
    )
    status: Obj = {
        "name": name,
        "image": image,
        "imageID": f"docker-pullable://{image.split(':')[0]}@sha256:{'0' * 64}",
        "ready": ready,
        "restartCount": restarts,
        "started": ready,
        "state": state,
        "lastState": {},
    }
    if last_reason:
        status["lastState"] = {
            "terminated": {
                "exitCode": last_exit_code,
                "reason": last_reason,
                "startedAt": "2026-11-23T10:30:01Z",
                "finishedAt": "2026-11-23T10:31:12Z",
            }
        }
    return status


def pod(
    namespace: str,
    name: str,
    labels: dict[str, str],
    containers: list[Obj],
    *,
    ready: bool = True,
    owner: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Obj:
    """A running Pod with the given container statuses (`containers` from container_status)."""
    metadata: Obj = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    if owner:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner,
                "uid": secrets.token_hex(8),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": c["name"], "image": c["image"]} for c in containers],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": containers,
            "startTime": now_text(),
        },
    }


def pods_of(deployment_obj: Obj, count: int) -> list[Obj]:
    """`count` ready pods of a Deployment's current template (new names, one hash)."""
    meta, spec = deployment_obj["metadata"], deployment_obj["spec"]
    hashed = template_hash(spec["template"])
    labels = {**spec["template"]["metadata"].get("labels", {}), "pod-template-hash": hashed}
    annotations = spec["template"]["metadata"].get("annotations")
    image = spec["template"]["spec"]["containers"][0]["image"]
    owner = f"{meta['name']}-{hashed}"
    return [
        pod(
            meta["namespace"],
            f"{owner}-{secrets.token_hex(3)[:5]}",
            labels,
            [container_status("app", image)],
            owner=owner,
            annotations=annotations,
        )
        for _ in range(count)
    ]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise PatchError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(target: Obj, operations: list[Obj]) -> Obj:
    """RFC 6902 add / remove / replace / test on a copy of `target`."""
    result = copy.deepcopy(target)
    for op in operations:
        parts = _pointer(op["path"])
        parent: Any = result
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise PatchError(f"test failed at {op['path']}")
        elif kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(index, op["value"])
                else:
                    parent[index] = op["value"]
            else:
                parent[last] = op["value"]
        else:
            raise PatchError(f"unsupported op {kind!r}")
    return result


def _equality_terms(text: str) -> list[tuple[str, str, bool]]:
    """`k=v,k==v,k!=v` as (key, value, equal) terms."""
    terms = []
    for raw in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in raw:
            key, value = raw.split("!=", 1)
            terms.append((key.strip(), value.strip(), False))
        elif "==" in raw:
            key, value = raw.split("==", 1)
            terms.append((key.strip(), value.strip(), True))
        elif "=" in raw:
            key, value = raw.split("=", 1)
            terms.append((key.strip(), value.strip(), True))
        else:
            raise ValueError(f"unsupported selector term {raw!r}")
    return terms


def labels_match(selector: str, obj: Obj) -> bool:
    """Whether `obj` is selected by an equality label selector."""
    labels = obj.get("metadata", {}).get("labels") or {}
    return all((labels.get(k) == v) == equal for k, v, equal in _equality_terms(selector))


def _field(obj: Obj, dotted: str) -> str:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def fields_match(selector: str, obj: Obj) -> bool:
    """Whether `obj` is selected by an equality field selector (`metadata.name=web,...`)."""
    return all((_field(obj, k) == v) == equal for k, v, equal in _equality_terms(selector))
