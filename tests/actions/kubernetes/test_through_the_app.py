"""A rule with k8s.* steps through the real app: webhook in, pods read, deployment restarted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.apps import AUTH, AppFactory
from tests.support.kubernetes.server import FakeKube
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body

RULE = """
id: web-broken
match: {matchers: ['alertname="KubeDeploymentBroken"']}
guards: {key: "{{ labels.namespace }}/{{ labels.deployment }}"}
steps:
  - id: pods
    action: k8s.pods
    with: {namespace: "{{ labels.namespace }}", deployment: "{{ labels.deployment }}"}
  - id: restart
    action: k8s.rollout_restart
    with:
      namespace: "{{ labels.namespace }}"
      deployment: "{{ labels.deployment }}"
      poll_seconds: 0.1
      wait_seconds: 20
"""
DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/web"


async def _fire(client: Any, **labels: str) -> dict[str, Any]:
    alert = am_alert(
        "KubeDeploymentBroken", labels={"namespace": "shop", "deployment": "web", **labels}
    )
    response = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(alert),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status == 202
    return await OperatorApi.in_process(client).settled_run(timeout=30)


async def test_a_rule_restarts_a_deployment_through_the_app(
    make_client: AppFactory, rules_dir: Path, fake_kube: FakeKube, kubeconfig: Path
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    (rules_dir / "r.yaml").write_text(RULE)
    client = await make_client(kubeconfig=kubeconfig, k8s_allowed_namespaces=("shop",))
    run = await _fire(client)
    assert run["state"] == "succeeded", run
    pods, restart = run["steps"]
    assert pods["output"]["count"] == 2
    assert restart["state"] == "succeeded"
    assert restart["output"]["rollout"]["done"] is True
    assert restart["params"]["path"] == f"{DEPLOYMENT}?fieldManager=responder"
    [patch] = fake_kube.seen("PATCH", DEPLOYMENT)
    assert patch.authorization == "Bearer test-token"
    [event] = fake_kube.listed("", "events", "shop")
    assert f"rule web-broken, run {run['run_id']}, step restart" in event["message"]


async def test_dry_run_records_the_request_and_sends_nothing(
    make_client: AppFactory, rules_dir: Path, fake_kube: FakeKube, kubeconfig: Path
) -> None:
    fake_kube.add_deployment("shop", "web")
    (rules_dir / "r.yaml").write_text(RULE)
    client = await make_client(
        kubeconfig=kubeconfig, k8s_allowed_namespaces=("shop",), dry_run=True
    )
    run = await _fire(client)
    restart = run["steps"][1]
    assert restart["state"] == "skipped"
    assert restart["params"]["method"] == "PATCH"
    assert restart["params"]["headers"] == {
        "Content-Type": "application/strategic-merge-patch+json"
    }
    assert [r for r in fake_kube.requests if r.method != "GET"] == []
    assert fake_kube.requests == []  # a dry run reads nothing either


async def test_labels_that_are_not_kubernetes_names_never_reach_the_cluster(
    make_client: AppFactory, rules_dir: Path, fake_kube: FakeKube, kubeconfig: Path
) -> None:
    (rules_dir / "r.yaml").write_text(RULE)
    client = await make_client(kubeconfig=kubeconfig, k8s_allowed_namespaces=("shop",))
    run = await _fire(client, deployment="web/../../../api/v1/secrets")
    assert run["state"] == "skipped"
    assert "with.deployment" in str(run)
    assert fake_kube.requests == []


async def test_a_namespace_outside_the_allowlist_is_refused_when_planned(
    make_client: AppFactory, rules_dir: Path, fake_kube: FakeKube, kubeconfig: Path
) -> None:
    (rules_dir / "r.yaml").write_text(RULE)
    client = await make_client(kubeconfig=kubeconfig, k8s_allowed_namespaces=("shop",))
    run = await _fire(client, namespace="kube-system")
    assert run["state"] == "skipped"
    assert "'kube-system' is not in RESPONDER_K8S_ALLOWED_NAMESPACES" in str(run)
    assert fake_kube.requests == []


async def test_without_a_cluster_the_step_names_the_settings(
    make_client: AppFactory, rules_dir: Path
) -> None:
    (rules_dir / "r.yaml").write_text(RULE)
    client = await make_client(k8s_allowed_namespaces=("shop",))
    run = await _fire(client)
    assert run["state"] == "failed"
    assert "RESPONDER_KUBECONFIG" in run["steps"][0]["error"]
