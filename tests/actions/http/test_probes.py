"""`http.probe` against a real local health endpoint (Spring Boot health shapes)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from responder.actions.base import ActionContext
from responder.actions.calls import json_equal
from responder.actions.http.probes import HTTP_PROBE, ProbeParams
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from responder.models.plans import ActionClass
from tests.support.action_contexts import loopback_context
from tests.support.recording import Recorder

ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "Bearer probe-secret-token-123"


@dataclass
class Health(Recorder):
    """What the fake service answers, and what it received."""

    status: int = 200
    body: Any = field(
        default_factory=lambda: {
            "status": "UP",
            "components": {"db": {"status": "UP", "details": {"pool": 10}}, "ping": {}},
            "checks": [{"ok": True}, {"ok": 1}],
        }
    )


def _app(health: Health) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        if request.path == "/text":
            return web.Response(text="OK")
        return web.json_response(health.body, status=health.status)

    app = health.recording_app()
    app.router.add_get("/{tail:.*}", handle)  # also answers HEAD
    return app


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
async def server(aiohttp_server: ServerFactory, health: Health) -> TestServer:
    return await aiohttp_server(_app(health), host="127.0.0.1")


@pytest.fixture
async def ctx() -> AsyncIterator[ActionContext]:
    async with loopback_context(step_id="probe") as context:
        yield context


def _params(server: TestServer, path: str = "/actuator/health", **extra: Any) -> ProbeParams:
    return ProbeParams.model_validate({"url": str(server.make_url(path)), **extra})


async def test_healthy_probe(server: TestServer, ctx: ActionContext, health: Health) -> None:
    checks = [
        {"path": "status", "equals": "UP"},
        {"path": "components.db.status", "equals": "UP"},
        {"path": "components.db.details.pool", "equals": 10.0},
        {"path": "checks.0.ok", "equals": True},
    ]
    result = await HTTP_PROBE.run(_params(server, expect_json=checks), ctx)
    assert result.ok
    assert result.output["status"] == 200
    assert isinstance(result.output["elapsed_ms"], int)
    assert result.output["failed_checks"] == []
    assert [c["actual"] for c in result.output["checks"]] == ["UP", "UP", 10, True]
    assert "4/4 checks hold" in result.summary
    assert [(r.method, r.path, r.auth) for r in health.requests] == [
        ("GET", "/actuator/health", None)
    ]


async def test_failed_check_reports_the_value(
    server: TestServer, ctx: ActionContext, health: Health
) -> None:
    health.body = {"status": "DOWN", "components": {"db": {"status": "DOWN"}}}
    checks = [
        {"path": "components.db.status", "equals": "UP"},
        {"path": "components.redis.status", "equals": "UP"},
    ]
    result = await HTTP_PROBE.run(_params(server, expect_json=checks), ctx)
    assert not result.ok
    assert result.output["failed_checks"] == ["components.db.status", "components.redis.status"]
    assert result.output["checks"][1]["reason"] == "missing"
    assert "components.db.status is DOWN (expected UP)" in result.summary


async def test_json_equality_is_strict(server: TestServer, ctx: ActionContext) -> None:
    result = await HTTP_PROBE.run(
        _params(server, expect_json=[{"path": "checks.1.ok", "equals": True}]), ctx
    )
    assert not result.ok  # 1 is not true
    assert json_equal(1, 1.0)
    assert not json_equal(0, False)
    assert json_equal({"a": [1, None]}, {"a": [1.0, None]})


async def test_5xx_is_a_failed_probe_not_a_retry(
    server: TestServer, ctx: ActionContext, health: Health
) -> None:
    health.status = 503
    health.body = {"status": "DOWN"}
    result = await HTTP_PROBE.run(
        _params(server, expect_json=[{"path": "status", "equals": "DOWN"}]), ctx
    )
    assert not result.ok
    assert result.output["status"] == 503
    assert result.output["failed_checks"] == ["status"]
    assert result.output["checks"][0]["ok"] is True
    assert "(expected 200)" in result.summary
    assert len(health.requests) == 1


async def test_expect_status_list(server: TestServer, ctx: ActionContext, health: Health) -> None:
    health.status = 503
    result = await HTTP_PROBE.run(_params(server, expect_status=[200, 503]), ctx)
    assert result.ok


async def test_non_json_body_fails_json_checks(server: TestServer, ctx: ActionContext) -> None:
    params = _params(server, "/text", expect_json=[{"path": "status", "equals": "UP"}])
    result = await HTTP_PROBE.run(params, ctx)
    assert not result.ok
    assert result.output["checks"][0]["reason"] == "body is not JSON"
    plain = await HTTP_PROBE.run(_params(server, "/text"), ctx)
    assert plain.ok


async def test_head_probe(server: TestServer, ctx: ActionContext, health: Health) -> None:
    result = await HTTP_PROBE.run(_params(server, method="head"), ctx)
    assert result.ok
    assert health.requests[0].method == "HEAD"


async def test_connection_error_is_temporary(
    server: TestServer, ctx: ActionContext, unused_tcp_port: int
) -> None:
    params = ProbeParams(url=f"http://127.0.0.1:{unused_tcp_port}/health")
    with pytest.raises(TemporaryError, match="cannot connect"):
        await HTTP_PROBE.run(params, ctx)


async def test_auth_header_from_env(
    server: TestServer, ctx: ActionContext, health: Health, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_HEALTH_AUTH", SECRET)
    result = await HTTP_PROBE.run(_params(server, auth_header_env="SHOP_HEALTH_AUTH"), ctx)
    assert result.ok
    assert health.requests[0].auth == SECRET
    assert "probe-secret" not in json.dumps(result.model_dump())
    shown = HTTP_PROBE.describe(_params(server, auth_header_env="SHOP_HEALTH_AUTH"))
    assert shown["headers"]["Authorization"].startswith("[REDACTED]")
    assert "probe-secret" not in json.dumps(shown)


async def test_unset_env_is_permanent(
    server: TestServer, ctx: ActionContext, health: Health, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOP_HEALTH_AUTH", raising=False)
    with pytest.raises(PermanentError, match="SHOP_HEALTH_AUTH"):
        await HTTP_PROBE.run(_params(server, auth_header_env="SHOP_HEALTH_AUTH"), ctx)
    assert health.requests == []


def test_describe_and_class() -> None:
    params = ProbeParams(url="http://orders.shop.svc:8080/actuator/health?token=abc")
    shown = HTTP_PROBE.describe(params)
    assert shown["method"] == "GET"
    assert shown["url"] == "http://orders.shop.svc:8080/actuator/health?token=[REDACTED]"
    assert shown["expect_status"] == [200]
    assert HTTP_PROBE.action_class is ActionClass.DIAGNOSTIC


@pytest.mark.parametrize(
    "extra",
    [
        {"method": "POST"},
        {"method": "HEAD", "expect_json": [{"path": "status", "equals": "UP"}]},
        {"expect_status": [700]},
        {"expect_status": []},
        {"expect_json": [{"path": "a..b", "equals": 1}]},
        {"expect_json": [{"path": "status"}]},
        {"auth_header_env": "RESPONDER_WEBHOOK_TOKEN"},
        {"auth_header_env": "bad name"},
    ],
)
def test_params_are_validated(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ProbeParams.model_validate({"url": "http://127.0.0.1/health", **extra})


def test_check_enforces_the_allowlist() -> None:
    assert HTTP_PROBE.check is not None
    with pytest.raises(NotAllowedError):
        HTTP_PROBE.check(ProbeParams(url="http://evil.example/health"), ("127.0.0.1",))
