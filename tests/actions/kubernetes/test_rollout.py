"""`k8s.rollout_restart` end to end: the real adapter and client against the fake API server."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from responder.actions.base import ActionContext, StepResult
from responder.actions.catalog import PolicyCatalog
from responder.actions.kubernetes import rollouts as k8s_rollouts
from responder.actions.kubernetes.rollouts import K8S_ROLLOUT_RESTART, RolloutRestartParams
from responder.actions.shipped import default_registry
from responder.adapters.kubernetes.api import KubernetesApi
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from tests.support.kubernetes.fixtures import context_for
from tests.support.kubernetes.server import FakeKube

DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/web"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _params(**extra: Any) -> RolloutRestartParams:
    values = {"namespace": "shop", "deployment": "web", "poll_seconds": 0.1, "wait_seconds": 10}
    return RolloutRestartParams.model_validate({**values, **extra})


async def _restart(ctx: ActionContext, **extra: Any) -> StepResult:
    return await K8S_ROLLOUT_RESTART.run(_params(**extra), ctx)


def _pod_names(fake: FakeKube) -> set[str]:
    return {p["metadata"]["name"] for p in fake.listed("", "pods", "shop")}


async def test_restart_patches_like_kubectl_and_waits_for_the_rollout(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    before = _pod_names(fake_kube)
    result = await _restart(kube_ctx)
    assert (result.ok, result.verified) == (True, True), result
    assert (
        result.summary == 'deployment shop/web restarted: deployment "web" successfully rolled out'
    )
    [patch] = fake_kube.seen("PATCH", DEPLOYMENT)
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert patch.query == {"fieldManager": "responder"}
    stamp = patch.json()["spec"]["template"]["metadata"]["annotations"][
        "kubectl.kubernetes.io/restartedAt"
    ]
    assert STAMP.match(stamp)
    assert patch.json() == {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}
        }
    }
    assert result.output["restarted_at"] == stamp
    assert result.output["rollout"]["done"] is True
    assert result.output["after"]["updated"] == 3
    after = _pod_names(fake_kube)
    assert len(after) == 3
    assert not after & before  # every pod was replaced


async def test_restart_records_an_event_on_the_deployment(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    created = fake_kube.add_deployment("shop", "web")
    result = await _restart(kube_ctx)
    [event] = fake_kube.listed("", "events", "shop")
    assert event["reason"] == "ResponderRolloutRestart"
    assert event["type"] == "Normal"
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "namespace": "shop",
        "uid": created["metadata"]["uid"],
    }
    assert "rule web-broken, run run-42, step contain: rollout restart" in event["message"]
    assert event["source"] == {"component": "responder"}
    assert event["reportingComponent"] == "responder"
    assert event["reportingInstance"] == "responder-test-1"
    assert event["count"] == 1
    assert result.output["event"]["recorded"] is True
    assert result.output["event"]["name"] == event["metadata"]["name"]


async def test_stuck_rollout_fails_on_progress_deadline_exceeded(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    fake_kube.stuck = True
    result = await _restart(kube_ctx)
    assert (result.ok, result.verified) == (False, False)
    assert result.summary == 'deployment shop/web: deployment "web" exceeded its progress deadline'
    assert result.output["rollout"] == {
        "done": False,
        "failed": True,
        "message": 'deployment "web" exceeded its progress deadline',
    }
    assert result.output["event"]["recorded"] is True  # the restart itself was done


async def test_a_rollout_that_does_not_finish_in_time_is_not_verified(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web")
    fake_kube.rollout_delay = 5.0  # the controller has not observed the new spec yet
    result = await _restart(kube_ctx, wait_seconds=0.5)
    assert (result.ok, result.verified) == (False, False)
    assert "not rolled out after 0.5 s" in result.summary
    assert "spec update to be observed" in result.summary


async def test_not_waiting_leaves_it_unverified(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web")
    result = await _restart(kube_ctx, wait_seconds=0)
    assert (result.ok, result.verified) == (True, None)
    assert len(fake_kube.seen("PATCH", DEPLOYMENT)) == 1


async def test_a_paused_deployment_is_refused_before_any_patch(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", paused=True)
    with pytest.raises(PermanentError, match=r"paused.*rollout resume deployment/web -n shop"):
        await _restart(kube_ctx)
    assert fake_kube.seen("PATCH", DEPLOYMENT) == []


async def test_a_namespace_outside_the_allowlist_sends_nothing(
    fake_kube: FakeKube, kube_api: KubernetesApi
) -> None:
    fake_kube.add_deployment("payments", "web")
    ctx = context_for(kube_api)
    with pytest.raises(NotAllowedError, match="'payments' is not in RESPONDER_K8S_ALLOWED"):
        await K8S_ROLLOUT_RESTART.run(_params(namespace="payments"), ctx)
    with pytest.raises(NotAllowedError, match="no namespace is allowed; set RESPONDER_K8S"):
        await K8S_ROLLOUT_RESTART.run(_params(), context_for(kube_api, namespaces=()))
    assert fake_kube.requests == []


async def test_the_adapter_refuses_other_namespaces_itself(
    fake_kube: FakeKube, kube_api: KubernetesApi
) -> None:
    with pytest.raises(NotAllowedError, match="kube-system"):
        await kube_api.read_deployment("kube-system", "coredns")
    assert fake_kube.requests == []


async def test_without_a_cluster_the_step_says_which_setting_to_set() -> None:
    with pytest.raises(
        PermanentError, match=r"set RESPONDER_KUBECONFIG .* RESPONDER_K8S_IN_CLUSTER"
    ):
        await K8S_ROLLOUT_RESTART.run(_params(), context_for(None))


def test_plan_time_checks_names_and_the_namespace_allowlist() -> None:
    catalog = PolicyCatalog(default_registry(), allowed_hosts=(), allowed_namespaces=("shop",))
    good = {"namespace": "shop", "deployment": "web"}
    assert catalog.validate_params("k8s.rollout_restart", good)["deployment"] == "web"
    with pytest.raises(NotAllowedError, match="RESPONDER_K8S_ALLOWED_NAMESPACES"):
        catalog.model("k8s.rollout_restart", {**good, "namespace": "kube-system"})
    for bad in ("web/../secrets", "web?watch=1", "Web", "web,app=x", "-web", "", "a" * 254):
        with pytest.raises(PermanentError, match=r"with\.deployment"):
            catalog.model("k8s.rollout_restart", {**good, "deployment": bad})
    with pytest.raises(PermanentError, match=r"with\.namespace"):
        catalog.model("k8s.rollout_restart", {**good, "namespace": "shop/../kube-system"})
    with pytest.raises(PermanentError, match=r"with\.force"):
        catalog.model("k8s.rollout_restart", {**good, "force": True})


async def test_a_forbidden_event_never_fails_the_restart(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web")
    fake_kube.fail("POST", "/api/v1/namespaces/shop/events", 403)
    result = await _restart(kube_ctx)
    assert (result.ok, result.verified) == (True, True)
    event = result.output["event"]
    assert event["recorded"] is False
    assert 'RBAC verb "create" on resource "events"' in event["error"]


async def test_forbidden_patch_names_the_missing_verb(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web")
    fake_kube.fail("PATCH", DEPLOYMENT, 403)
    with pytest.raises(PermanentError) as caught:
        await _restart(kube_ctx)
    message = str(caught.value)
    assert 'needs RBAC verb "patch" on resource "deployments" (apiGroup "apps")' in message
    assert 'in namespace "shop"' in message
    assert "cannot patch resource" in message  # the server's own words


async def test_a_server_error_is_temporary_and_a_retry_restarts_once(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web")
    fake_kube.fail("PATCH", DEPLOYMENT, 500)
    with pytest.raises(TemporaryError, match="answered 500"):
        await _restart(kube_ctx)
    result = await _restart(kube_ctx)
    assert (result.ok, result.verified) == (True, True)
    assert fake_kube.must("apps", "deployments", "shop", "web")["metadata"]["generation"] == 2


async def test_a_lost_patch_answer_is_resolved_by_reading_back(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web")
    fake_kube.hang("PATCH", DEPLOYMENT, 3.0, after=True)  # applied, then no answer in time
    result = await _restart(kube_ctx)
    assert (result.ok, result.verified) == (True, True)
    assert len(fake_kube.seen("PATCH", DEPLOYMENT)) == 1  # not restarted twice
    assert fake_kube.must("apps", "deployments", "shop", "web")["metadata"]["generation"] == 2


async def test_a_patch_that_timed_out_before_applying_stays_temporary(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web")
    fake_kube.hang("PATCH", DEPLOYMENT, 3.0)
    with pytest.raises(TemporaryError, match="did not answer within 2 s"):
        await _restart(kube_ctx)


async def test_a_restart_in_the_same_second_is_retried(
    fake_kube: FakeKube, kube_ctx: ActionContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed = datetime(2026, 11, 23, 10, 41, 52, tzinfo=UTC)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls.fromtimestamp(fixed.timestamp(), tz)

    monkeypatch.setattr(k8s_rollouts, "datetime", Frozen)
    fake_kube.add_deployment("shop", "web")
    first = await _restart(kube_ctx)
    assert first.output["restarted_at"] == "2026-11-23T10:41:52Z"
    with pytest.raises(TemporaryError, match="within the past second"):
        await _restart(kube_ctx)


def test_describe_renders_the_exact_request() -> None:
    shown = K8S_ROLLOUT_RESTART.describe(_params(wait_seconds=120))
    assert shown["method"] == "PATCH"
    assert shown["path"] == f"{DEPLOYMENT}?fieldManager=responder"
    assert shown["headers"] == {"Content-Type": "application/strategic-merge-patch+json"}
    annotations = shown["json"]["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == ["kubectl.kubernetes.io/restartedAt"]
    assert shown["before"] == {"method": "GET", "path": DEPLOYMENT, "refuse_if": "spec.paused"}
    assert shown["verify"]["for_seconds"] == 120
    assert "ProgressDeadlineExceeded" in shown["verify"]["until"]
    assert shown["event"]["json"]["reason"] == "ResponderRolloutRestart"
    json.dumps(shown)  # plain JSON, stored with the step
