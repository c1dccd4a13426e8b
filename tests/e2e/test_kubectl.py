"""kubectl against the fake API server: the fake behaves like a cluster, and responder sends
what kubectl sends (target-apis §3.9 "kubectl as an independent check").

Skipped only when kubectl is not installed and CI is not set; under CI=true a missing kubectl
fails the test.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from responder.actions.base import ActionContext
from responder.actions.kubernetes.rollouts import K8S_ROLLOUT_RESTART, RolloutRestartParams
from responder.actions.kubernetes.scaling import K8S_SCALE, ScaleParams
from tests.support.kubernetes.server import FakeKube, Seen

KUBECTL = shutil.which("kubectl")
DEPLOYMENT = "/apis/apps/v1/namespaces/shop/deployments/web"

pytestmark = [
    pytest.mark.skipif(
        KUBECTL is None and os.environ.get("CI") != "true",
        reason="kubectl is not installed (under CI=true this fails instead)",
    ),
]


class Kubectl:
    """Runs kubectl against the fake (its own kubeconfig and discovery cache)."""

    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        assert KUBECTL is not None, "kubectl is required under CI=true"
        self.base = [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache)]

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *self.base,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(Path(self.base[4]).parent)},
        )
        out, err = await asyncio.wait_for(proc.communicate(), 90)
        return proc.returncode or 0, out.decode(), err.decode()

    async def ok(self, *args: str) -> str:
        code, out, err = await self(*args)
        assert code == 0, f"kubectl {' '.join(args)} -> {code}: {err}"
        return out


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(kubeconfig, tmp_path / "kube-cache")


def _shape(value: Any) -> Any:
    """The keys of a JSON document, with every leaf replaced by its type."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def _patches(fake: FakeKube, path: str, agent: str) -> list[Seen]:
    return [r for r in fake.seen("PATCH", path) if (r.user_agent or "").startswith(agent)]


async def test_kubectl_sees_a_cluster_and_responder_sends_what_kubectl_sends(
    fake_kube: FakeKube, kube_ctx: ActionContext, kubectl: Kubectl
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    listed = await kubectl.ok("get", "deploy", "-n", "shop")
    assert listed.split()[:3] == ["NAME", "AGE", "web"]

    assert (await kubectl.ok("rollout", "restart", "deployment/web", "-n", "shop")).strip() == (
        "deployment.apps/web restarted"
    )
    status = await kubectl.ok("rollout", "status", "deployment/web", "-n", "shop", "--timeout=20s")
    assert status.strip().endswith('deployment "web" successfully rolled out')
    await asyncio.sleep(1.1)  # a second restart within the same second would be a no-op

    restart = RolloutRestartParams(namespace="shop", deployment="web", poll_seconds=0.1)
    result = await K8S_ROLLOUT_RESTART.run(restart, kube_ctx)
    assert (result.ok, result.verified) == (True, True)
    [theirs] = _patches(fake_kube, DEPLOYMENT, "kubectl/")
    [ours] = _patches(fake_kube, DEPLOYMENT, "responder/")
    assert theirs.content_type == ours.content_type == "application/strategic-merge-patch+json"
    assert (theirs.query, ours.query) == (
        {"fieldManager": "kubectl-rollout"},
        {"fieldManager": "responder"},
    )
    assert _shape(theirs.json()) == _shape(ours.json())

    assert (await kubectl.ok("scale", "deployment/web", "--replicas=3", "-n", "shop")).strip() == (
        "deployment.apps/web scaled"
    )
    scale = ScaleParams(namespace="shop", deployment="web", replicas=4, max=5)
    assert (await K8S_SCALE.run(scale, kube_ctx)).verified is True
    [kubectl_scale] = _patches(fake_kube, f"{DEPLOYMENT}/scale", "kubectl/")
    [our_scale] = _patches(fake_kube, f"{DEPLOYMENT}/scale", "responder/")
    assert kubectl_scale.content_type == our_scale.content_type == "application/merge-patch+json"
    assert (kubectl_scale.json(), our_scale.json()) == (
        {"spec": {"replicas": 3}},
        {"spec": {"replicas": 4}},
    )

    described = await kubectl.ok("describe", "deployment", "web", "-n", "shop")
    assert re.search(r"Replicas:\s+4 desired", described)
    assert re.search(r"StrategyType:\s+RollingUpdate", described)
    events = described.split("Events:", 1)[1]
    restart_line = next(line for line in events.splitlines() if "ResponderRolloutRestart" in line)
    assert restart_line.split()[0] == "Normal"
    assert "responder" in restart_line.split()
    assert "rule web-broken, run run-42, step contain: rollout restart" in restart_line
    assert "ResponderScale" in events
    assert "scaled from 3 to 4 replicas" in events


async def test_kubectl_reports_a_stuck_rollout_as_responder_does(
    fake_kube: FakeKube, kube_ctx: ActionContext, kubectl: Kubectl
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    fake_kube.stuck = True
    await kubectl.ok("rollout", "restart", "deployment/web", "-n", "shop")
    code, _, err = await kubectl(
        "rollout", "status", "deployment/web", "-n", "shop", "--timeout=10s"
    )
    assert code == 1
    assert 'deployment "web" exceeded its progress deadline' in err
    await asyncio.sleep(1.1)
    restart = RolloutRestartParams(
        namespace="shop", deployment="web", poll_seconds=0.1, wait_seconds=10
    )
    result = await K8S_ROLLOUT_RESTART.run(restart, kube_ctx)
    assert result.output["rollout"]["message"] == 'deployment "web" exceeded its progress deadline'


async def test_kubectl_reads_the_same_logs_and_pods(fake_kube: FakeKube, kubectl: Kubectl) -> None:
    fake_kube.add_deployment("shop", "web", replicas=1)
    [pod] = fake_kube.listed("", "pods", "shop")
    name = pod["metadata"]["name"]
    fake_kube.set_log("shop", name, "one\ntwo\nthree\n")
    assert await kubectl.ok("logs", name, "-n", "shop", "--tail=2") == "two\nthree\n"
    pods = await kubectl.ok("get", "pods", "-n", "shop", "-l", "app=web")
    assert name in pods
    none = await kubectl.ok("get", "pods", "-n", "shop", "-l", "app=other")
    assert name not in none
