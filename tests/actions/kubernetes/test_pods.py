"""`k8s.pods` and `k8s.events` (diagnostics) against the fake API server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from responder.actions.base import ActionContext, StepResult
from responder.actions.kubernetes.events import K8S_EVENTS, EventsParams
from responder.actions.kubernetes.pods import K8S_PODS, PodsParams
from responder.actions.shipped import default_registry
from responder.errors import PermanentError
from tests.support.kubernetes import objects
from tests.support.kubernetes.fixtures import context_for
from tests.support.kubernetes.server import FakeKube


def _crashing(name: str = "web-crash", *, namespace: str = "shop") -> dict[str, Any]:
    status = objects.container_status(
        "app",
        "shop/web:1.4",
        ready=False,
        restarts=7,
        waiting="CrashLoopBackOff",
        last_reason="OOMKilled",
        last_exit_code=137,
    )
    return objects.pod(namespace, name, {"app": "web"}, [status], ready=False)


async def _pods(ctx: ActionContext, **params: Any) -> StepResult:
    return await K8S_PODS.run(PodsParams.model_validate({"namespace": "shop", **params}), ctx)


async def test_pods_of_a_deployment_least_healthy_first(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    fake_kube.add_deployment("shop", "api", replicas=1)  # not selected
    fake_kube.add_pod(_crashing())
    result = await _pods(kube_ctx, deployment="web")
    assert result.ok
    output = result.output
    assert (output["count"], output["ready"], output["restarts"]) == (3, 2, 7)
    worst = output["worst"]
    assert worst["name"] == "web-crash"
    assert worst["ready"] is False
    [container] = worst["containers"]
    assert container == {
        "name": "app",
        "init": False,
        "ready": False,
        "restarts": 7,
        "state": "waiting",
        "state_reason": "CrashLoopBackOff",
        "last_reason": "OOMKilled",
        "last_exit_code": 137,
        "last_finished_at": "2026-11-23T10:31:12+00:00",
    }
    assert [p["ready"] for p in output["pods"]] == [False, True, True]
    assert result.summary == (
        "deployment shop/web: 3 pod(s), 2 ready, 7 restart(s); "
        "web-crash: app CrashLoopBackOff, last OOMKilled (exit 137)"
    )
    [listing] = [r for r in fake_kube.requests if r.path == "/api/v1/namespaces/shop/pods"]
    assert listing.query["labelSelector"] == "app=web"


async def test_one_pod_by_name_and_by_selector(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_pod(_crashing())
    by_name = await _pods(kube_ctx, pod="web-crash")
    assert by_name.output["pods"][0]["restarts"] == 7
    by_labels = await _pods(kube_ctx, selector={"app": "web"}, limit=1)
    assert by_labels.output["count"] == 1
    nothing = await _pods(kube_ctx, selector={"app": "gone"})
    assert (nothing.ok, nothing.output["count"], nothing.output["worst"]) == (True, 0, None)


def test_selectors_from_labels_cannot_inject_terms() -> None:
    registry = default_registry()
    for bad in ({"app": "web,tier!=x"}, {"app=web": "x"}, {"app": "a" * 64}, {"": "x"}, {}):
        with pytest.raises(PermanentError, match=r"with\.selector"):
            registry.validate("k8s.pods", {"namespace": "shop", "selector": bad})
    with pytest.raises(PermanentError, match="exactly one of pod, deployment, selector"):
        registry.validate("k8s.pods", {"namespace": "shop", "pod": "a", "deployment": "b"})


async def test_a_deployment_with_match_expressions_needs_a_selector(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    created = fake_kube.add_deployment("shop", "web")
    created["spec"]["selector"]["matchExpressions"] = [
        {"key": "tier", "operator": "In", "values": ["a", "b"]}
    ]
    with pytest.raises(PermanentError, match="matchExpressions; give `selector`"):
        await _pods(kube_ctx, deployment="web")


def _event(
    name: str,
    reason: str,
    minutes_ago: int,
    *,
    kind: str = "Deployment",
    type_: str = "Normal",
    obj: str = "web",
) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "shop"},
        "involvedObject": {"apiVersion": "apps/v1", "kind": kind, "name": obj, "namespace": "shop"},
        "reason": reason,
        "message": f"{reason} happened token=s3cr3t-value",
        "type": type_,
        "source": {"component": "deployment-controller"},
        "count": 2,
        "firstTimestamp": at,
        "lastTimestamp": at,
    }


async def test_events_of_one_object_newest_first_redacted(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    for event in (
        _event("e1", "ScalingReplicaSet", 30),
        _event("e2", "ProgressDeadlineExceeded", 1, type_="Warning"),
        _event("e3", "ScalingReplicaSet", 5),
        _event("e4", "BackOff", 2, kind="Pod", obj="web-abc", type_="Warning"),
    ):
        fake_kube._create(("", "events"), "shop", event)
    params = EventsParams.model_validate(
        {"namespace": "shop", "kind": "Deployment", "name": "web", "limit": 2}
    )
    result = await K8S_EVENTS.run(params, kube_ctx)
    assert result.ok
    assert (result.output["count"], result.output["warnings"]) == (3, 1)
    assert [e["reason"] for e in result.output["events"]] == [
        "ProgressDeadlineExceeded",
        "ScalingReplicaSet",
    ]
    first = result.output["events"][0]
    assert first["object"] == "Deployment/web"
    assert first["source"] == "deployment-controller"
    assert "s3cr3t" not in first["message"]
    assert result.summary.startswith("3 event(s) for Deployment web in shop (1 Warning); newest: ")
    [listing] = [r for r in fake_kube.requests if r.path == "/api/v1/namespaces/shop/events"]
    selector = listing.query["fieldSelector"]
    assert selector == "involvedObject.kind=Deployment,involvedObject.name=web"


async def test_warning_events_of_a_namespace(fake_kube: FakeKube, kube_ctx: ActionContext) -> None:
    fake_kube._create(("", "events"), "shop", _event("e1", "Started", 1))
    fake_kube._create(("", "events"), "shop", _event("e2", "BackOff", 3, type_="Warning"))
    params = EventsParams.model_validate({"namespace": "shop", "type": "Warning"})
    result = await K8S_EVENTS.run(params, kube_ctx)
    assert [e["reason"] for e in result.output["events"]] == ["BackOff"]
    assert result.output["subject"] == "namespace"


async def test_a_forbidden_list_names_the_verb(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.fail("GET", "/api/v1/namespaces/shop/events", 403)
    params = EventsParams.model_validate({"namespace": "shop"})
    with pytest.raises(PermanentError, match='RBAC verb "list" on resource "events"'):
        await K8S_EVENTS.run(params, kube_ctx)


def test_describe_renders_the_requests() -> None:
    pods = K8S_PODS.describe(
        PodsParams.model_validate({"namespace": "shop", "selector": {"app": "web", "tier": "fe"}})
    )
    assert pods == {
        "method": "GET",
        "path": "/api/v1/namespaces/shop/pods?labelSelector=app=web,tier=fe",
    }
    events = K8S_EVENTS.describe(EventsParams.model_validate({"namespace": "shop", "name": "web"}))
    assert events["path"] == (
        "/api/v1/namespaces/shop/events?fieldSelector=involvedObject.name=web&limit=500"
    )
    with pytest.raises(PermanentError, match="give its name too"):
        default_registry().validate("k8s.events", {"namespace": "shop", "kind": "Pod"})


async def test_pods_without_a_cluster_fail_clearly() -> None:
    with pytest.raises(PermanentError, match="RESPONDER_KUBECONFIG"):
        await _pods(context_for(None), pod="web")
