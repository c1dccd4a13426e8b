"""`feature_flag.disable`/`enable` with `provider: http` against a local home-grown config
service (aiohttp on 127.0.0.1) that records every request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from responder.actions.base import ActionContext
from responder.actions.feature_flags.switches import (
    FEATURE_FLAG_DISABLE,
    FEATURE_FLAG_ENABLE,
    FeatureFlagParams,
)
from responder.actions.shipped import default_registry
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from tests.support.action_contexts import loopback_context
from tests.support.recording import Recorder

ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "Bearer cfg-7d1c0ffee-very-secret"


@dataclass
class ConfigService(Recorder):
    """Flags by name -> enabled (or any JSON value), and every request it received."""

    flags: dict[str, Any] = field(default_factory=lambda: {"checkout-v2": True})
    write_status: int = 204
    stuck: bool = False
    slow: bool = False


def _app(fake: ConfigService) -> web.Application:
    async def read(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in fake.flags:
            return web.json_response({"message": f"no flag {name}"}, status=404)
        return web.json_response({"flag": {"name": name, "enabled": fake.flags[name]}})

    async def write(request: web.Request) -> web.Response:
        body = await request.read()
        document = json.loads(body) if body else None
        if fake.slow:
            await asyncio.sleep(2)
        if fake.write_status >= 300:
            return web.json_response(
                {"message": "config store is read-only"}, status=fake.write_status
            )
        if not fake.stuck and isinstance(document, dict):
            fake.flags[request.match_info["name"]] = document["enabled"]
        return web.Response(status=fake.write_status)

    app = fake.recording_app()
    app.router.add_get("/v1/flags/{name}", read)
    app.router.add_put("/v1/flags/{name}", write)
    return app


@pytest.fixture
def fake() -> ConfigService:
    return ConfigService()


@pytest.fixture
async def server(aiohttp_server: ServerFactory, fake: ConfigService) -> TestServer:
    return await aiohttp_server(_app(fake), host="127.0.0.1")


@pytest.fixture
async def ctx(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ActionContext]:
    monkeypatch.setenv("CONFIG_AUTH", SECRET)
    async with loopback_context(step_id="kill", run_id="run-9", rule_id="r") as context:
        yield context


def _params(server: TestServer, verified: bool = True, **extra: Any) -> FeatureFlagParams:
    url = str(server.make_url("/v1/flags/checkout-v2"))
    values: dict[str, Any] = {
        "provider": "http",
        "method": "PUT",
        "url": url,
        "json": {"enabled": False},
        "headers": {"X-Change-Reason": "responder"},
        "auth_header_env": "CONFIG_AUTH",
    }
    if verified:
        values["verify"] = {"path": "flag.enabled", "equals": False}
    return FeatureFlagParams.model_validate({**values, **extra})


async def test_write_then_verify_by_json_path(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    result = await FEATURE_FLAG_DISABLE.run(_params(server), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert (result.output["before"], result.output["after"]) == (True, False)
    assert [(r.method, r.path, r.json) for r in fake.requests] == [
        ("GET", "/v1/flags/checkout-v2", None),
        ("PUT", "/v1/flags/checkout-v2", {"enabled": False}),
        ("GET", "/v1/flags/checkout-v2", None),
    ]
    headers = fake.requests[1].headers
    assert headers["Authorization"] == SECRET
    assert headers["X-Change-Reason"] == "responder"
    assert headers["Content-Type"] == "application/json"
    assert {r.headers["Authorization"] for r in fake.requests} == {SECRET}
    assert "very-secret" not in json.dumps(result.model_dump())
    assert "flag.enabled verified" in result.summary


async def test_enable_sends_what_the_rule_says(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    fake.flags["checkout-v2"] = False
    params = _params(
        server, json={"enabled": True}, verify={"path": "flag.enabled", "equals": True}
    )
    result = await FEATURE_FLAG_ENABLE.run(params, ctx)
    assert (result.ok, result.verified) == (True, True)
    assert fake.flags["checkout-v2"] is True


async def test_already_matching_sends_no_write(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    fake.flags["checkout-v2"] = False
    result = await FEATURE_FLAG_DISABLE.run(_params(server), ctx)
    assert (result.ok, result.verified, result.output["sent"]) == (True, True, False)
    assert fake.methods() == ["GET"]


async def test_equality_is_json_equality(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    """0 is not false: a service that stores 0 does not pass a check for false."""
    fake.flags["checkout-v2"] = 0
    fake.stuck = True
    result = await FEATURE_FLAG_DISABLE.run(_params(server), ctx)
    assert (result.ok, result.verified) == (False, False)
    assert "flag.enabled is 0 (expected false)" in result.summary


async def test_a_missing_path_never_counts_as_null(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    params = _params(server, verify={"path": "flag.killed", "equals": None})
    result = await FEATURE_FLAG_DISABLE.run(params, ctx)
    assert (result.ok, result.verified) == (False, False)
    assert fake.methods() == ["GET", "PUT", "GET"]  # not skipped as "already null"
    assert "flag.killed is (missing) (expected null)" in result.summary


async def test_without_verify_the_write_is_sent_once_unverified(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    result = await FEATURE_FLAG_DISABLE.run(_params(server, verified=False), ctx)
    assert result.ok is True
    assert result.verified is None
    assert result.summary.endswith("-> 204 (not verified)")
    assert fake.methods() == ["PUT"]


async def test_an_unexpected_status_fails_the_step(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    fake.write_status = 409
    result = await FEATURE_FLAG_DISABLE.run(_params(server), ctx)
    assert (result.ok, result.verified) == (False, None)
    assert "409: config store is read-only" in result.summary
    assert fake.methods() == ["GET", "PUT"]


async def test_expect_status_is_honoured(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    result = await FEATURE_FLAG_DISABLE.run(_params(server, expect_status=[200]), ctx)
    assert result.ok is False  # the service answered 204
    assert fake.flags["checkout-v2"] is False


async def test_a_failing_write_is_retried_only_when_a_read_back_can_tell(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    fake.write_status = 503
    with pytest.raises(TemporaryError, match="503"):
        await FEATURE_FLAG_DISABLE.run(_params(server), ctx)
    result = await FEATURE_FLAG_DISABLE.run(_params(server, verified=False), ctx)
    assert (result.ok, result.verified) == (False, None)


async def test_a_timed_out_write_without_verify_is_not_retried(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    fake.slow = True
    with pytest.raises(PermanentError, match="not retried") as caught:
        await FEATURE_FLAG_DISABLE.run(_params(server, verified=False, timeout_seconds=0.2), ctx)
    assert not isinstance(caught.value, TemporaryError)
    with pytest.raises(TemporaryError, match="timed out"):
        await FEATURE_FLAG_DISABLE.run(_params(server, timeout_seconds=0.2), ctx)


async def test_a_broken_verify_url_is_permanent(
    server: TestServer, ctx: ActionContext, fake: ConfigService
) -> None:
    verify = {
        "url": str(server.make_url("/v1/flags/nope")),
        "path": "flag.enabled",
        "equals": False,
    }
    with pytest.raises(PermanentError, match="404: no flag nope"):
        await FEATURE_FLAG_DISABLE.run(_params(server, verify=verify), ctx)
    assert fake.methods() == ["GET"]


def test_describe_is_redacted(server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIG_AUTH", SECRET)
    params = _params(server, json={"enabled": False, "api_token": "t0ps3cr3t"})
    shown = FEATURE_FLAG_DISABLE.describe(params)
    assert shown["method"] == "PUT"
    assert shown["headers"]["Authorization"] == "[REDACTED] (from $CONFIG_AUTH)"
    assert shown["json"] == {"enabled": False, "api_token": "[REDACTED]"}
    assert shown["verify"]["expect"] == {"flag.enabled": False}
    assert shown["before"]["method"] == "GET"
    assert "t0ps3cr3t" not in json.dumps(shown)
    assert SECRET not in json.dumps(shown)


def test_check_covers_the_write_and_the_verify_host(server: TestServer) -> None:
    spec = FEATURE_FLAG_DISABLE
    assert spec.check is not None
    verify = {"url": "http://config.internal/v1/flags/x", "path": "enabled", "equals": False}
    with pytest.raises(NotAllowedError, match=r"config\.internal"):
        spec.check(_params(server, verify=verify), ("127.0.0.1",))
    spec.check(_params(server, verify=verify), ("127.0.0.1", "config.internal"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"method": "GET"}, "with.method: Input should be"),
        ({"headers": {"Authorization": "x"}}, "auth_header_env"),
        ({"headers": {"X": "a\r\nB: c"}}, "with.headers:"),
        ({"auth_header_env": "RESPONDER_WEBHOOK_TOKEN"}, "with.auth_header_env:"),
        ({"verify": {"path": "a..b", "equals": 1}}, "with.verify.path:"),
        ({"expect_status": [700]}, "with.expect_status:"),
        ({"json": float("nan")}, "not plain JSON"),
    ],
)
def test_params_are_validated(server: TestServer, extra: dict[str, Any], message: str) -> None:
    url = str(server.make_url("/v1/flags/x"))
    with pytest.raises(PermanentError, match=message):
        default_registry().validate(
            "feature_flag.disable", {"provider": "http", "url": url, **extra}
        )
