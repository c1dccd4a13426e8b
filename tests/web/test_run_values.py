"""`GET /v1/runs/{id}` and the run's timeline (JSON and Markdown) show the values each step
sent and the replica that ran it: through the real app, the fake Kubernetes API server and a
real local HTTP target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.apps import AUTH, JSON, READ, AppFactory
from tests.support.kubernetes.server import FakeKube
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.targets import Target

INSTANCE = "replica-b"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/web"
RESTART_RULE = """
id: web-broken
match: {matchers: ['alertname="KubeDeploymentBroken"']}
guards: {key: "{{ labels.namespace }}/{{ labels.deployment }}"}
steps:
  - id: restart
    action: k8s.rollout_restart
    with:
      namespace: "{{ labels.namespace }}"
      deployment: "{{ labels.deployment }}"
      poll_seconds: 0.1
      wait_seconds: 20
"""
SECRET = "tok-9f8e7d6c"
POST_RULE = """
id: drain-service
match: {{matchers: ['alertname="ServiceSick"']}}
guards: {{key: "{{{{ labels.service }}}}"}}
steps:
  - id: drain
    action: http.request
    with:
      method: POST
      url: "{base}/drain/{{{{ labels.service }}}}"
      headers: {{X-Api-Key: "{secret}"}}
      json: {{service: "{{{{ labels.service }}}}"}}
"""


async def _run_and_timeline(
    client: Any, name: str, **labels: str
) -> tuple[dict[str, Any], dict[str, Any], str]:
    response = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert(name, labels=labels)),
        headers={**AUTH, **JSON},
    )
    assert response.status == 202
    api = OperatorApi.in_process(client)
    run = await api.settled_run(timeout=30)
    timeline = await api.get_json(f"/v1/runs/{run['run_id']}/timeline")
    answer = await client.get(
        f"/v1/runs/{run['run_id']}/timeline", params={"format": "markdown"}, headers=READ
    )
    assert answer.status == 200
    markdown = await answer.text()
    assert markdown == timeline["markdown"]
    return run, timeline, markdown


async def test_the_run_and_its_timeline_show_the_restarted_at_sent_and_the_instance(
    make_client: AppFactory, rules_dir: Path, fake_kube: FakeKube, kubeconfig: Path
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    (rules_dir / "r.yaml").write_text(RESTART_RULE)
    client = await make_client(
        kubeconfig=kubeconfig, k8s_allowed_namespaces=("shop",), instance_id=INSTANCE
    )
    run, timeline, markdown = await _run_and_timeline(
        client, "KubeDeploymentBroken", namespace="shop", deployment="web"
    )
    assert run["state"] == "succeeded", run
    [patch] = fake_kube.seen("PATCH", DEPLOYMENT)
    received = patch.json()["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]

    [step] = run["steps"]
    assert step["instance"] == INSTANCE
    assert step["sent"]["json"]["spec"]["template"]["metadata"]["annotations"] == {
        RESTARTED_AT: received
    }
    assert step["params"]["json"]["spec"]["template"]["metadata"]["annotations"][
        RESTARTED_AT
    ].startswith("<")  # the description before the call; `sent` holds the value

    [entry] = [e for e in timeline["entries"] if e["kind"] == "action"]
    assert entry["text"].startswith("action `restart` (k8s.rollout_restart) ok, verified")
    assert entry["text"].endswith(f" — on `{INSTANCE}`")
    assert f"sent `PATCH {DEPLOYMENT}?fieldManager=responder json=" in entry["text"]
    assert f'"{RESTARTED_AT}":"{received}"' in entry["text"]
    assert f'"{RESTARTED_AT}":"{received}"' in markdown
    assert f"on `{INSTANCE}`" in markdown
    assert "<time of the run" not in markdown


async def test_a_secret_header_sent_is_shown_redacted_in_the_run_and_the_timeline(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(POST_RULE.format(base=target.base_url, secret=SECRET))
    client = await make_client(http_allowed_hosts=(target.host,), instance_id=INSTANCE)
    run, _, markdown = await _run_and_timeline(client, "ServiceSick", service="checkout")
    assert run["state"] == "succeeded", run
    [post] = target.requests
    assert post.headers["X-Api-Key"] == SECRET

    [step] = run["steps"]
    assert step["instance"] == INSTANCE
    url = f"{target.base_url}/drain/checkout"
    assert step["sent"]["url"] == url
    assert step["sent"]["json"] == {"service": "checkout"}
    assert step["sent"]["headers"]["X-Api-Key"] == "[REDACTED]"
    line = next(line for line in markdown.splitlines() if "`drain`" in line)
    assert f"on `{INSTANCE}`" in line
    assert f"sent `POST {url} headers=" in line
    assert '"X-Api-Key":"[REDACTED]"' in line
    assert 'json={"service":"checkout"}' in line
    assert SECRET not in str(run)
    assert SECRET not in markdown


async def test_the_openapi_document_describes_the_step_values(
    make_client: AppFactory,
) -> None:
    client = await make_client()
    answer = await client.get("/openapi.json")
    assert answer.status == 200
    document = await answer.json()
    step = document["components"]["schemas"]["StepRecord"]["properties"]
    assert {"instance", "sent"} <= set(step)
