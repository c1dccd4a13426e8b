"""Legacy discovery documents of the fake Kubernetes API server (kubectl falls back to them)."""

from __future__ import annotations

from typing import Any

VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0",
    "gitCommit": "fake",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_ALL = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _resource(
    name: str,
    kind: str,
    *,
    singular: str = "",
    verbs: list[str] | None = None,
    group: str | None = None,
    version: str | None = None,
    short: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "singularName": singular,
        "namespaced": True,
        "kind": kind,
        "verbs": verbs or _ALL,
    }
    if group is not None:
        entry.update(group=group, version=version)
    if short is not None:
        entry["shortNames"] = [short]
    return entry


CORE = [
    _resource("pods", "Pod", singular="pod", short="po"),
    _resource("pods/log", "Pod", verbs=["get"]),
    _resource("events", "Event", singular="event", short="ev"),
    _resource("configmaps", "ConfigMap", singular="configmap", short="cm"),
]
GROUPS: dict[str, list[dict[str, Any]]] = {
    "apps/v1": [
        _resource("deployments", "Deployment", singular="deployment", short="deploy"),
        _resource(
            "deployments/scale",
            "Scale",
            verbs=["get", "patch", "update"],
            group="autoscaling",
            version="v1",
        ),
        _resource("replicasets", "ReplicaSet", singular="replicaset", short="rs"),
    ],
    "events.k8s.io/v1": [_resource("events", "Event", singular="event")],
}


def _group(group_version: str) -> dict[str, Any]:
    name, version = group_version.split("/")
    entry = {"groupVersion": group_version, "version": version}
    return {"name": name, "versions": [entry], "preferredVersion": entry}


def discovery(path: str, port: int) -> dict[str, Any] | None:
    """The discovery document served at `path`, or None when `path` is not discovery."""
    path = path.rstrip("/")
    if path == "/version":
        return VERSION
    if path == "/api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{port}"}
            ],
        }
    if path == "/api/v1":
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "v1",
            "resources": CORE,
        }
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(gv) for gv in GROUPS]}
    for group_version, resources in GROUPS.items():
        if path == f"/apis/{group_version}":
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": resources,
            }
        if path == f"/apis/{group_version.split('/')[0]}":
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(group_version)}
    return None
