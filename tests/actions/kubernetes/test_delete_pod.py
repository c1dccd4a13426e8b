"""`k8s.delete_pod` end to end: the blast-radius guard, uid preconditions and verification."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actions.base import ActionContext, StepResult
from responder.actions.kubernetes.deleting import K8S_DELETE_POD, DeletePodParams
from responder.actions.shipped import default_registry
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from tests.support.kubernetes import objects
from tests.support.kubernetes.server import FakeKube


def _pod_names(fake: FakeKube) -> list[str]:
    return sorted(p["metadata"]["name"] for p in fake.listed("", "pods", "shop"))


async def _delete(ctx: ActionContext, pod: str, **extra: Any) -> StepResult:
    values = {
        "namespace": "shop",
        "pod": pod,
        "deployment": "web",
        "poll_seconds": 0.1,
        "wait_seconds": 5,
        **extra,
    }
    return await K8S_DELETE_POD.run(DeletePodParams.model_validate(values), ctx)


async def test_delete_a_pod_and_see_it_replaced(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    victim = _pod_names(fake_kube)[0]
    uid = fake_kube.must("", "pods", "shop", victim)["metadata"]["uid"]
    result = await _delete(kube_ctx, victim, min_healthy_replicas=2)
    assert (result.ok, result.verified) == (True, True), result
    assert result.output["gone"] is True
    assert result.output["uid"] == uid
    assert len(result.output["other_ready_pods"]) == 2
    [request] = fake_kube.seen("DELETE", f"/api/v1/namespaces/shop/pods/{victim}")
    assert request.json()["preconditions"] == {"uid": uid}
    assert victim not in _pod_names(fake_kube)
    [event] = fake_kube.listed("", "events", "shop")
    assert event["reason"] == "ResponderDeletePod"
    assert event["involvedObject"]["kind"] == "Pod"
    assert event["involvedObject"]["uid"] == uid
    assert "rule web-broken, run run-42" in event["message"]


async def test_replacements_are_reported_when_the_controller_is_quick(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    fake_kube.rollout_delay = 0.0
    fake_kube.pod_termination_seconds = 0.3  # graceful: it lingers as terminating first
    victim = _pod_names(fake_kube)[0]
    result = await _delete(kube_ctx, victim)
    assert (result.ok, result.verified) == (True, True)
    assert len(result.output["replacements"]) == 1
    assert result.output["replacements"][0] != victim


async def test_refused_when_too_few_healthy_pods_would_be_left(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    victim = _pod_names(fake_kube)[0]
    with pytest.raises(NotAllowedError, match=r"would leave 1 ready pod.*min_healthy_replicas=2"):
        await _delete(kube_ctx, victim, min_healthy_replicas=2)
    assert [r for r in fake_kube.requests if r.method == "DELETE"] == []
    assert victim in _pod_names(fake_kube)


async def test_an_unready_pod_does_not_count_as_healthy(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=1)
    sick = objects.container_status(
        "app", "shop/web:1.4", ready=False, restarts=3, waiting="CrashLoopBackOff"
    )
    fake_kube.add_pod(objects.pod("shop", "web-sick", {"app": "web"}, [sick], ready=False))
    healthy = next(n for n in _pod_names(fake_kube) if n != "web-sick")
    with pytest.raises(NotAllowedError, match="would leave 0 ready pod"):
        await _delete(kube_ctx, healthy)
    result = await _delete(kube_ctx, "web-sick")  # the healthy one stays
    assert (result.ok, result.verified) == (True, True)


async def test_a_pod_outside_the_named_workload_is_refused(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    fake_kube.add_deployment("shop", "db", replicas=3)
    db_pod = next(n for n in _pod_names(fake_kube) if n.startswith("db-"))
    with pytest.raises(NotAllowedError, match="not selected by deployment shop/web"):
        await _delete(kube_ctx, db_pod)
    with pytest.raises(NotAllowedError, match=r"not selected by pods app=web \(app=web\)"):
        await _delete(kube_ctx, db_pod, deployment=None, selector={"app": "web"})


async def test_a_replaced_pod_of_the_same_name_is_not_deleted(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    victim = _pod_names(fake_kube)[0]
    path = f"/api/v1/namespaces/shop/pods/{victim}"
    fake_kube.fail("DELETE", path, 409, message="Precondition failed: UID in precondition")
    with pytest.raises(TemporaryError, match="conflict"):
        await _delete(kube_ctx, victim)
    assert victim in _pod_names(fake_kube)


async def test_a_lost_delete_answer_is_resolved_by_looking(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    victim = _pod_names(fake_kube)[0]
    fake_kube.hang("DELETE", f"/api/v1/namespaces/shop/pods/{victim}", 3.0, after=True)
    result = await _delete(kube_ctx, victim)
    assert (result.ok, result.verified) == (True, True)


async def test_a_pod_that_does_not_go_away_is_not_verified(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    fake_kube.pod_termination_seconds = 30.0  # a long grace period (or a stuck finalizer)
    victim = _pod_names(fake_kube)[0]
    result = await _delete(kube_ctx, victim, wait_seconds=0.5)
    assert (result.ok, result.verified) == (False, False)
    assert "still exists after 0.5 s" in result.summary
    assert result.output["event"]["recorded"] is True


def test_params_need_one_workload_and_valid_names() -> None:
    registry = default_registry()
    with pytest.raises(PermanentError, match="exactly one of deployment, selector"):
        registry.validate("k8s.delete_pod", {"namespace": "shop", "pod": "web-1"})
    with pytest.raises(PermanentError, match=r"with\.pod"):
        registry.validate(
            "k8s.delete_pod", {"namespace": "shop", "pod": "../nodes/n1", "deployment": "web"}
        )


def test_describe_renders_the_exact_request() -> None:
    params = DeletePodParams.model_validate(
        {"namespace": "shop", "pod": "web-1", "selector": {"app": "web"}, "grace_period_seconds": 5}
    )
    shown = K8S_DELETE_POD.describe(params)
    assert shown["method"] == "DELETE"
    assert shown["path"] == "/api/v1/namespaces/shop/pods/web-1"
    assert shown["json"]["gracePeriodSeconds"] == 5
    assert shown["before"]["workload"] == {"selector": "app=web"}
    assert "fewer than 1 other ready pods" in shown["before"]["refuse_if"]
    assert shown["event"]["json"]["involvedObject"]["kind"] == "Pod"
