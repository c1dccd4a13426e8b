"""The k8s actions whose description can only name a run-time value (`<...>`) report the value
they sent in `StepResult.sent`, and it is the value the fake API server received."""

from __future__ import annotations

import json
from typing import Any

from responder.actions.base import ActionContext
from responder.actions.feature_flags.switches import FEATURE_FLAG_DISABLE, FeatureFlagParams
from responder.actions.kubernetes.deleting import K8S_DELETE_POD, DeletePodParams
from responder.actions.kubernetes.logs import K8S_LOGS, LogsParams
from responder.actions.kubernetes.rollouts import K8S_ROLLOUT_RESTART, RolloutRestartParams
from responder.actions.kubernetes.scaling import K8S_SCALE, ScaleParams
from tests.support.kubernetes import objects
from tests.support.kubernetes.server import FakeKube

DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/web"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


async def test_rollout_restart_reports_the_restarted_at_it_patched(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=1)
    params = RolloutRestartParams(namespace="shop", deployment="web", wait_seconds=0)
    assert K8S_ROLLOUT_RESTART.describe(params)["json"]["spec"]["template"]["metadata"][
        "annotations"
    ][RESTARTED_AT].startswith("<")
    result = await K8S_ROLLOUT_RESTART.run(params, kube_ctx)
    [patch] = fake_kube.seen("PATCH", DEPLOYMENT)
    assert result.sent == {"json": patch.json()}  # the annotation's value, as patched


async def test_scale_reports_the_replica_count_it_computed(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    params = ScaleParams.model_validate(
        {"namespace": "shop", "deployment": "web", "change": 3, "max": 4}
    )
    result = await K8S_SCALE.run(params, kube_ctx)
    [patch] = fake_kube.seen("PATCH", f"{DEPLOYMENT}/scale")
    assert patch.json() == {"spec": {"replicas": 4}}
    assert result.sent == {"json": {"spec": {"replicas": 4}}}
    again = await K8S_SCALE.run(params, kube_ctx)  # already at the bound: nothing is sent
    assert again.sent is not None
    assert again.sent["not_sent"].startswith("already at 4 replicas")


async def test_delete_pod_reports_the_uid_precondition_it_sent(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    victim = sorted(p["metadata"]["name"] for p in fake_kube.listed("", "pods", "shop"))[0]
    values: dict[str, Any] = {
        "namespace": "shop",
        "pod": victim,
        "deployment": "web",
        "poll_seconds": 0.1,
        "wait_seconds": 5,
    }
    result = await K8S_DELETE_POD.run(DeletePodParams.model_validate(values), kube_ctx)
    [request] = fake_kube.seen("DELETE", f"/api/v1/namespaces/shop/pods/{victim}")
    assert result.sent == {"json": {"preconditions": request.json()["preconditions"]}}


async def test_logs_report_the_pods_chosen(fake_kube: FakeKube, kube_ctx: ActionContext) -> None:
    status = objects.container_status("app", "shop/web:1.4", ready=False, restarts=2)
    fake_kube.add_pod(objects.pod("shop", "web-sick", {"app": "web"}, [status], ready=False))
    fake_kube.set_log("shop", "web-sick", "boom\n")
    params = LogsParams.model_validate({"namespace": "shop", "selector": {"app": "web"}})
    result = await K8S_LOGS.run(params, kube_ctx)
    assert result.sent == {
        "path": ["/api/v1/namespaces/shop/pods/web-sick/log?tailLines=100&limitBytes=65536"]
    }
    [request] = fake_kube.seen("GET", "/api/v1/namespaces/shop/pods/web-sick/log")
    assert request.query == {"tailLines": "100", "limitBytes": "65536"}


async def test_a_flagd_config_map_write_reports_the_version_and_document_it_put(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    document = {
        "flags": {
            "new-checkout": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "on",
            }
        }
    }
    stored = fake_kube.add_config_map("shop", "flags", {"flags.json": json.dumps(document)})
    read_version = stored["metadata"]["resourceVersion"]
    params = FeatureFlagParams.model_validate(
        {
            "provider": "flagd",
            "namespace": "shop",
            "config_map": "flags",
            "key": "flags.json",
            "flag": "new-checkout",
        }
    )
    result = await FEATURE_FLAG_DISABLE.run(params, kube_ctx)
    assert result.ok, result
    [put] = fake_kube.seen("PUT", "/api/v1/namespaces/shop/configmaps/flags")
    assert result.sent == {
        "json": {
            "metadata": {"resourceVersion": read_version},
            "data": {"flags.json": put.json()["data"]["flags.json"]},
        }
    }
    assert put.json()["metadata"]["resourceVersion"] == read_version
    again = await FEATURE_FLAG_DISABLE.run(params, kube_ctx)  # already off: no PUT
    assert again.sent is not None
    assert "not written" in again.sent["not_sent"]
