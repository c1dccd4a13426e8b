"""Step audit events carry the request each step sent (values, not the action's description
of them; secrets redacted) and the replica that ran the step: through the real app, real
SQLite, the fake Kubernetes API server and a real local HTTP target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.kubernetes.server import FakeKube
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.targets import Target

INSTANCE = "replica-a"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/web"
RESTART_RULE = """
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
  - id: again
    action: k8s.rollout_restart
    if: steps.restart.failed
    with: {namespace: "{{ labels.namespace }}", deployment: "{{ labels.deployment }}"}
"""
SECRET = "s3cret-value-41"
POST_RULE = """
id: drain-service
match: {{matchers: ['alertname="ServiceSick"']}}
guards: {{key: "{{{{ labels.service }}}}"}}
steps:
  - id: look
    action: http.request
    with: {{method: GET, url: "{base}/health/{{{{ labels.service }}}}"}}
  - id: drain
    action: http.request
    with:
      method: POST
      url: "{base}/drain/{{{{ labels.service }}}}?reason=alert"
      headers: {{Authorization: "Bearer {secret}", X-Request-Source: responder}}
      json: {{service: "{{{{ labels.service }}}}", mode: drain, api_key: "{secret}"}}
"""


async def _fire(client: Any, name: str, **labels: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert(name, labels=labels)),
        headers={**AUTH, **JSON},
    )
    assert response.status == 202
    return await OperatorApi.in_process(client).settled_run(timeout=30)


def _step_events(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in run["audit"] if e["kind"].startswith("step_")]


def _event(run: dict[str, Any], kind: str, step_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        e for e in run["audit"] if e["kind"] == kind and e["step_id"] == step_id
    ]
    assert len(found) == 1, found
    return found[0]


async def test_a_rollout_restart_records_the_restarted_at_the_cluster_received(
    make_client: AppFactory, rules_dir: Path, fake_kube: FakeKube, kubeconfig: Path
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    (rules_dir / "r.yaml").write_text(RESTART_RULE)
    client = await make_client(
        kubeconfig=kubeconfig, k8s_allowed_namespaces=("shop",), instance_id=INSTANCE
    )
    run = await _fire(client, "KubeDeploymentBroken", namespace="shop", deployment="web")
    assert run["state"] == "succeeded", run
    [patch] = fake_kube.seen("PATCH", DEPLOYMENT)
    received = patch.json()["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    assert received.endswith("Z")
    assert not received.startswith("<")

    started = _event(run, "step_started", "restart")
    assert started["details"]["instance"] == INSTANCE
    assert started["details"]["params"]["method"] == "PATCH"  # as described before the call
    done = _event(run, "step_succeeded", "restart")
    sent = done["details"]["sent"]
    assert sent["method"] == "PATCH"
    assert sent["path"] == f"{DEPLOYMENT}?fieldManager=responder"
    annotations = sent["json"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {RESTARTED_AT: received}  # the value sent, not "<time of the run..."
    assert done["details"]["instance"] == INSTANCE
    assert done["details"]["verified"] is True

    events = _step_events(run)
    assert {e["kind"] for e in events} == {"step_started", "step_succeeded", "step_skipped"}
    assert all(e["details"]["instance"] == INSTANCE for e in events), events
    assert _event(run, "step_skipped", "again")["reason"] == "condition_false"


async def test_a_post_with_a_secret_header_records_what_was_sent_redacted(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(POST_RULE.format(base=target.base_url, secret=SECRET))
    client = await make_client(http_allowed_hosts=(target.host,), instance_id=INSTANCE)
    run = await _fire(client, "ServiceSick", service="checkout")
    assert run["state"] == "succeeded", run
    _, post = target.requests
    assert post.method == "POST"
    assert post.headers["Authorization"] == f"Bearer {SECRET}"  # the target got the secret

    done = _event(run, "step_succeeded", "drain")
    sent = done["details"]["sent"]
    assert sent["method"] == "POST"
    assert sent["url"] == f"{target.base_url}/drain/checkout?reason=alert"
    assert sent["json"] == {"service": "checkout", "mode": "drain", "api_key": "[REDACTED]"}
    assert sent["headers"]["Authorization"] == "[REDACTED]"
    assert sent["headers"]["X-Request-Source"] == "responder"
    assert post.json == {"service": "checkout", "mode": "drain", "api_key": SECRET}
    assert _event(run, "step_succeeded", "look")["details"]["sent"]["url"] == (
        f"{target.base_url}/health/checkout"
    )
    assert SECRET not in str(run)
    events = _step_events(run)
    assert len(events) == 4
    assert all(e["details"]["instance"] == INSTANCE for e in events), events


async def test_a_step_that_raised_names_its_instance_and_claims_nothing_sent(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    target.delay = 1.0  # past the step's deadline: the action never returns a result
    rule = POST_RULE.format(base=target.base_url, secret=SECRET).replace(
        "  - id: look\n", "  - id: look\n    timeout: 300ms\n"
    )
    (rules_dir / "r.yaml").write_text(rule)
    client = await make_client(http_allowed_hosts=(target.host,), instance_id=INSTANCE)
    run = await _fire(client, "ServiceSick", service="checkout")
    assert run["state"] == "failed", run
    failed = _event(run, "step_failed", "look")
    assert failed["details"]["instance"] == INSTANCE
    assert "sent" not in failed["details"]  # nothing reported; `params` says what it tried
    assert failed["details"]["params"]["url"] == f"{target.base_url}/health/checkout"
    skipped = _event(run, "step_skipped", "drain")
    assert skipped["details"]["instance"] == INSTANCE
