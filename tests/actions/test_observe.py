"""`ActionSpec.observe`: each containment action's read-back of its own effect, used to settle
a step interrupted mid-call (`outcome_unknown`) after a takeover. Against local fakes: a
Resilience4j actuator on loopback HTTP and the fake Kubernetes API server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from responder.actions.base import ActionContext, Observation
from responder.actions.circuit_breakers import (
    CIRCUIT_BREAKER_FORCE_OPEN,
    CIRCUIT_BREAKER_RESET,
    CircuitBreakerParams,
)
from responder.actions.kubernetes.rollouts import K8S_ROLLOUT_RESTART, RolloutRestartParams
from responder.actions.kubernetes.scaling import K8S_SCALE, ScaleParams
from responder.actions.shipped import default_registry
from responder.core.rollouts import RESTARTED_AT, restart_stamp
from responder.models.runs import StepRecord, StepState
from tests.support.action_contexts import loopback_context
from tests.support.kubernetes.server import FakeKube

ServerFactory = Callable[..., Awaitable[TestServer]]
STARTED = datetime(2026, 12, 7, 10, 41, 52, 400000, tzinfo=UTC)


def _step(action: str, started_at: datetime | None = STARTED) -> StepRecord:
    return StepRecord(
        step_id="act", action=action, state=StepState.OUTCOME_UNKNOWN, started_at=started_at
    )


@pytest.fixture
async def actuator(
    aiohttp_server: ServerFactory,
) -> tuple[TestServer, dict[str, Any]]:
    """A breaker list whose reply the test sets (`reply["body"]`, `reply["status"]`)."""
    reply: dict[str, Any] = {"status": 200, "body": {}}

    async def listed(request: web.Request) -> web.Response:
        return web.json_response(reply["body"], status=reply["status"])

    app = web.Application()
    app.router.add_get("/actuator/circuitbreakers", listed)
    return await aiohttp_server(app, host="127.0.0.1"), reply


def _v2(**states: str) -> dict[str, Any]:
    return {"circuitBreakers": {name: {"state": state} for name, state in states.items()}}


async def test_breaker_reads_present_absent_or_unknown(
    actuator: tuple[TestServer, dict[str, Any]],
) -> None:
    server, reply = actuator
    base = str(server.make_url("/")).rstrip("/")
    params = CircuitBreakerParams(base_url=base, name="backendA")
    reset, force = CIRCUIT_BREAKER_RESET.observe, CIRCUIT_BREAKER_FORCE_OPEN.observe
    assert reset is not None
    assert force is not None
    assert CIRCUIT_BREAKER_RESET.idempotent
    assert CIRCUIT_BREAKER_FORCE_OPEN.idempotent
    async with loopback_context(step_id="act") as ctx:
        reply["body"] = _v2(backendA="CLOSED")
        assert await reset(params, ctx, _step("circuit_breaker.reset")) is Observation.PRESENT
        assert await force(params, ctx, _step("circuit_breaker.force_open")) is Observation.ABSENT
        reply["body"] = _v2(backendA="FORCED_OPEN")
        assert await force(params, ctx, _step("circuit_breaker.force_open")) is Observation.PRESENT
        reply["body"] = _v2(backendA="OPEN")
        assert await reset(params, ctx, _step("circuit_breaker.reset")) is Observation.ABSENT
        reply["body"] = _v2(other="CLOSED")  # not listed: cannot tell
        assert await reset(params, ctx, _step("circuit_breaker.reset")) is Observation.UNKNOWN
        reply["body"] = {"circuitBreakers": ["backendA"]}  # v1: names only
        assert await reset(params, ctx, _step("circuit_breaker.reset")) is Observation.UNKNOWN


async def test_scale_reads_the_replicas(fake_kube: FakeKube, kube_ctx: ActionContext) -> None:
    fake_kube.add_deployment("shop", "web", replicas=2)
    observe = K8S_SCALE.observe
    assert observe is not None
    assert K8S_SCALE.idempotent
    step = _step("k8s.scale")
    at = ScaleParams(namespace="shop", deployment="web", replicas=2)
    assert await observe(at, kube_ctx, step) is Observation.PRESENT
    more = ScaleParams(namespace="shop", deployment="web", replicas=5, max=10)
    assert await observe(more, kube_ctx, step) is Observation.ABSENT
    relative = ScaleParams(namespace="shop", deployment="web", change=2, max=10)
    assert await observe(relative, kube_ctx, step) is Observation.UNKNOWN
    assert not [r for r in fake_kube.requests if r.method != "GET"]  # read-only


async def test_rollout_restart_compares_restarted_at_with_the_step_start(
    fake_kube: FakeKube, kube_ctx: ActionContext
) -> None:
    fake_kube.add_deployment("shop", "web", replicas=1)
    observe = K8S_ROLLOUT_RESTART.observe
    assert observe is not None
    assert not K8S_ROLLOUT_RESTART.idempotent
    params = RolloutRestartParams(namespace="shop", deployment="web")
    step = _step("k8s.rollout_restart")
    assert await observe(params, kube_ctx, step) is Observation.ABSENT  # never restarted
    # the call itself stamps the time of the PATCH: at or after the recorded start
    await kube_ctx.kube.restart_deployment("shop", "web", STARTED - timedelta(minutes=5))  # type: ignore[union-attr]
    assert await observe(params, kube_ctx, step) is Observation.ABSENT  # an older restart
    await kube_ctx.kube.restart_deployment("shop", "web", STARTED.replace(microsecond=0))  # type: ignore[union-attr]
    dep = fake_kube.must("apps", "deployments", "shop", "web")
    assert dep["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT] == restart_stamp(
        STARTED
    )
    assert await observe(params, kube_ctx, step) is Observation.PRESENT
    no_start = _step("k8s.rollout_restart", started_at=None)
    assert await observe(params, kube_ctx, no_start) is Observation.UNKNOWN


def test_containment_actions_without_a_read_back_say_so() -> None:
    registry = default_registry()
    observed = {n for n in registry.names() if registry.get(n).observe is not None}
    assert {
        "circuit_breaker.reset",
        "circuit_breaker.force_open",
        "k8s.scale",
        "k8s.rollout_restart",
    } <= observed
    assert registry.get("http.request").observe is None  # parked for approval when unknown


async def test_feature_flag_reads_the_flag_state(
    aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unleash: the environment's `enabled`; flagd/http providers are not read back yet."""
    monkeypatch.setenv("UNLEASH_TOKEN", "secret")
    enabled = {"value": False}

    async def feature(request: web.Request) -> web.Response:
        environments = [{"name": "production", "enabled": enabled["value"], "strategies": []}]
        return web.json_response({"name": "checkout", "environments": environments})

    app = web.Application()
    app.router.add_get("/api/admin/projects/default/features/checkout", feature)
    server = await aiohttp_server(app, host="127.0.0.1")
    disable = default_registry().get("feature_flag.disable")
    enable = default_registry().get("feature_flag.enable")
    assert disable.observe is not None
    assert enable.observe is not None
    assert disable.idempotent
    params = disable.params_model.model_validate(
        {
            "provider": "unleash",
            "base_url": f"http://127.0.0.1:{server.port}",
            "flag": "checkout",
            "environment": "production",
            "auth_header_env": "UNLEASH_TOKEN",
        }
    )
    step = _step("feature_flag.disable")
    async with loopback_context(step_id="act") as ctx:
        assert await disable.observe(params, ctx, step) is Observation.PRESENT
        assert await enable.observe(params, ctx, step) is Observation.ABSENT
        enabled["value"] = True
        assert await disable.observe(params, ctx, step) is Observation.ABSENT
        flagd = disable.params_model.model_validate(
            {"provider": "flagd", "path": "/srv/flags/shop.flags.json", "flag": "checkout"}
        )
        assert await disable.observe(flagd, ctx, step) is Observation.UNKNOWN
