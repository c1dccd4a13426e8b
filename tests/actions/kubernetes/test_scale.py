"""`k8s.scale` end to end through the scale subresource of the fake API server."""

from __future__ import annotations

from typing import Any

import pytest

from responder.actions.base import ActionContext, StepResult
from responder.actions.catalog import PolicyCatalog
from responder.actions.kubernetes.scaling import K8S_SCALE, ScaleParams, target_replicas
from responder.actions.shipped import default_registry
from responder.errors import NotAllowedError, PermanentError
from tests.support.kubernetes.server import FakeKube

SCALE = "/apis/apps/v1/namespaces/shop/deployments/web/scale"


def _params(**extra: Any) -> ScaleParams:
    return ScaleParams.model_validate({"namespace": "shop", "deployment": "web", **extra})


async def _scale(ctx: ActionContext, **extra: Any) -> StepResult:
    return await K8S_SCALE.run(_params(**extra), ctx)


def _replicas(fake: FakeKube) -> int:
    replicas: int = fake.must("apps", "deployments", "shop", "web")["spec"]["replicas"]
    return replicas


async def test_scale_merge_patches_the_scale_subresource_and_reads_it_back(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    result = await _scale(kube_ctx, replicas=5, max=10)
    assert (result.ok, result.verified) == (True, True)
    assert result.summary == "deployment shop/web: 2 -> 5 replicas"
    assert (result.output["before"], result.output["after"]) == (2, 5)
    [patch] = fake_kube.seen("PATCH", SCALE)
    assert patch.content_type == "application/merge-patch+json"
    assert patch.json() == {"spec": {"replicas": 5}}
    assert [r.method for r in fake_kube.requests if r.path == SCALE] == ["GET", "PATCH", "GET"]
    assert _replicas(fake_kube) == 5
    [event] = fake_kube.listed("", "events", "shop")
    assert event["reason"] == "ResponderScale"
    assert "scaled from 2 to 5 replicas" in event["message"]
    assert "run run-42" in event["message"]
    assert (
        event["involvedObject"]["uid"]
        == fake_kube.must("apps", "deployments", "shop", "web")["metadata"]["uid"]
    )


async def test_relative_changes_are_clamped_and_never_reverse(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=3)
    result = await _scale(kube_ctx, change=4, max=5)
    assert (result.output["before"], result.output["target"]) == (3, 5)
    assert _replicas(fake_kube) == 5
    again = await _scale(kube_ctx, change=2, max=5)
    assert again.output["patched"] is False
    assert again.verified is True
    assert "already at 5 replicas" in again.summary
    assert len(fake_kube.seen("PATCH", SCALE)) == 1  # nothing to do: no write, no event
    assert len(fake_kube.listed("", "events", "shop")) == 1


@pytest.mark.parametrize(
    ("current", "extra", "expected"),
    [
        (3, {"change": 2, "max": 10}, 5),
        (3, {"change": -5, "max": 10}, 1),  # min defaults to 1
        (12, {"change": 1, "max": 10}, 12),  # already above max: a scale-up never scales down
        (0, {"change": -1, "max": 10}, 0),  # below min: a scale-down never scales up
        (2, {"change": -2, "min": 0, "max": 4, "allow_zero": True}, 0),
        (2, {"replicas": 7, "max": 8}, 7),
    ],
)
def test_target_replicas(current: int, extra: dict[str, Any], expected: int) -> None:
    assert target_replicas(_params(**extra), current) == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"replicas": 0}, "allow_zero"),
        ({"replicas": 0, "allow_zero": True}, "outside min 1"),
        ({"replicas": 11, "max": 10}, "outside min 1 .. max 10"),
        ({"change": 2}, "needs `max`"),
        ({"change": 0, "max": 3}, "changes nothing"),
        ({"replicas": 2, "change": 1, "max": 3}, "exactly one of replicas, change"),
        ({"max": 3}, "exactly one of replicas, change"),
        ({"replicas": 2, "min": 0}, "allow_zero"),
        ({"replicas": 3, "min": 4, "max": 3}, "min \\(4\\) is above max"),
        ({"replicas": 1001}, "less than or equal to 1000"),
    ],
)
def test_bounds_are_checked_when_the_rule_is_planned(extra: dict[str, Any], message: str) -> None:
    catalog = PolicyCatalog(default_registry(), allowed_hosts=(), allowed_namespaces=("shop",))
    with pytest.raises(PermanentError, match=message):
        catalog.model("k8s.scale", {"namespace": "shop", "deployment": "web", **extra})


async def test_scaling_to_zero_takes_allow_zero(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    result = await _scale(kube_ctx, replicas=0, min=0, allow_zero=True)
    assert (result.ok, result.verified) == (True, True)
    assert _replicas(fake_kube) == 0


def test_an_unlisted_namespace_is_refused_at_plan_time() -> None:
    catalog = PolicyCatalog(default_registry(), allowed_hosts=(), allowed_namespaces=("shop",))
    with pytest.raises(NotAllowedError, match="'payments' is not in"):
        catalog.model("k8s.scale", {"namespace": "payments", "deployment": "web", "replicas": 2})


async def test_a_missing_deployment_is_a_permanent_not_found(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    with pytest.raises(PermanentError, match=r"not found \(404\)"):
        await _scale(kube_ctx, replicas=2)
    assert fake_kube.seen("PATCH", SCALE) == []


def test_describe_renders_the_exact_request() -> None:
    shown = K8S_SCALE.describe(_params(replicas=4, max=6))
    assert shown["method"] == "PATCH"
    assert shown["path"] == f"{SCALE}?fieldManager=responder"
    assert shown["headers"] == {"Content-Type": "application/merge-patch+json"}
    assert shown["json"] == {"spec": {"replicas": 4}}
    relative = K8S_SCALE.describe(_params(change=-1, max=6))
    assert relative["json"] == {"spec": {"replicas": "<current -1, within 1..6>"}}
    assert relative["event"]["json"]["reason"] == "ResponderScale"
