"""`feature_flag.disable`/`enable` with `provider: launchdarkly` against a contract fake of the
REST API v2 that checks every request exactly (semantic patch content type, raw token)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
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
from responder.adapters.http_client import AiohttpHttpApi
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from responder.models.http import HttpRequest
from tests.support.action_contexts import loopback_context
from tests.support.recording import Recorder

ServerFactory = Callable[..., Awaitable[TestServer]]
TOKEN = "api-0f3c9e2a-1b2c-4d5e-8f90-abcdef123456"
SEMANTIC = "application/json; domain-model=launchdarkly.semanticpatch"
REPLY_DATE = format_datetime(datetime.fromtimestamp(1_700_000_000, UTC), usegmt=True)


@dataclass
class LaunchDarkly(Recorder):
    """Flags by (project, key) -> environment -> on; every request it received."""

    flags: dict[tuple[str, str], dict[str, bool]] = field(
        default_factory=lambda: {("shop", "checkout-v2"): {"production": True, "test": True}}
    )
    stuck: bool = False  # PATCH answers 200 but nothing changes
    patch_status: list[int] = field(default_factory=list)  # statuses to answer first


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


def _flag(key: str, environments: dict[str, bool]) -> dict[str, Any]:
    return {
        "key": key,
        "name": key,
        "kind": "boolean",
        "environments": {
            env: {"on": on, "archived": False, "_environmentName": env.title(), "version": 3}
            for env, on in environments.items()
        },
    }


def _app(fake: LaunchDarkly) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Authorization") != TOKEN:
            return _error(401, "unauthorized", "Invalid account ID header")
        key = (request.match_info["project"], request.match_info["flag"])
        if key not in fake.flags:
            return _error(404, "not_found", "Unknown resource")
        environments = fake.flags[key]
        if request.method == "GET":
            wanted = request.query.get("env")
            shown = {e: on for e, on in environments.items() if wanted in (None, e)}
            return web.json_response(_flag(key[1], shown))
        if request.headers.get("Content-Type") != SEMANTIC:
            return _error(400, "invalid_request", "Invalid JSON patch: expected an array")
        if fake.patch_status:
            status = fake.patch_status.pop(0)
            headers = {"X-Ratelimit-Reset": "1700000003000", "Date": REPLY_DATE}
            reply = {"code": "x", "message": f"status {status}"}
            return web.json_response(reply, status=status, headers=headers)
        document = json.loads(body)
        environment = document.get("environmentKey")
        if environment not in environments:
            return _error(400, "invalid_request", "environmentKey is invalid")
        for instruction in document["instructions"]:
            if instruction["kind"] not in ("turnFlagOn", "turnFlagOff"):
                return _error(400, "invalid_request", "unknown instruction kind")
            if not fake.stuck:
                environments[environment] = instruction["kind"] == "turnFlagOn"
        return web.json_response(_flag(key[1], environments))

    app = fake.recording_app()
    app.router.add_route("GET", "/api/v2/flags/{project}/{flag}", handle)
    app.router.add_route("PATCH", "/api/v2/flags/{project}/{flag}", handle)
    return app


@pytest.fixture
def fake() -> LaunchDarkly:
    return LaunchDarkly()


@pytest.fixture
async def server(aiohttp_server: ServerFactory, fake: LaunchDarkly) -> TestServer:
    return await aiohttp_server(_app(fake), host="127.0.0.1")


@pytest.fixture
async def ctx(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ActionContext]:
    monkeypatch.setenv("LD_ACCESS_TOKEN", TOKEN)
    async with loopback_context(
        step_id="kill", run_id="run-42", rule_id="checkout-errors"
    ) as context:
        yield context


def _params(server: TestServer | None, **extra: Any) -> FeatureFlagParams:
    values: dict[str, Any] = {
        "provider": "launchdarkly",
        "project": "shop",
        "flag": "checkout-v2",
        "environment": "production",
        "auth_header_env": "LD_ACCESS_TOKEN",
        **extra,
    }
    if server is not None:
        values["base_url"] = str(server.make_url("/"))
    return FeatureFlagParams.model_validate(values)


async def test_disable_sends_the_semantic_patch_and_verifies(
    server: TestServer, ctx: ActionContext, fake: LaunchDarkly
) -> None:
    result = await FEATURE_FLAG_DISABLE.run(_params(server, comment="INC-123"), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert (result.output["before"], result.output["after"]) == ("on", "off")
    assert fake.flags[("shop", "checkout-v2")] == {"production": False, "test": True}
    assert [(r.method, r.path, r.query) for r in fake.requests] == [
        ("GET", "/api/v2/flags/shop/checkout-v2", {"env": "production"}),
        ("PATCH", "/api/v2/flags/shop/checkout-v2", {}),
        ("GET", "/api/v2/flags/shop/checkout-v2", {"env": "production"}),
    ]
    patch = fake.requests[1]
    assert patch.headers["Content-Type"] == SEMANTIC
    assert patch.headers["Authorization"] == TOKEN  # raw, no "Bearer"
    assert patch.headers["LD-API-Version"] == "20240415"
    assert patch.json == {
        "environmentKey": "production",
        "comment": "responder: rule checkout-errors, run run-42, step kill: INC-123",
        "instructions": [{"kind": "turnFlagOff"}],
    }
    assert TOKEN not in json.dumps(result.model_dump())


async def test_enable_sends_turn_flag_on(
    server: TestServer, ctx: ActionContext, fake: LaunchDarkly
) -> None:
    fake.flags[("shop", "checkout-v2")]["production"] = False
    result = await FEATURE_FLAG_ENABLE.run(_params(server), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert fake.requests[1].json["instructions"] == [{"kind": "turnFlagOn"}]
    assert (
        fake.requests[1].json["comment"] == "responder: rule checkout-errors, run run-42, step kill"
    )
    assert fake.flags[("shop", "checkout-v2")]["production"] is True


async def test_already_off_sends_no_patch(
    server: TestServer, ctx: ActionContext, fake: LaunchDarkly
) -> None:
    fake.flags[("shop", "checkout-v2")]["production"] = False
    result = await FEATURE_FLAG_DISABLE.run(_params(server), ctx)
    assert (result.ok, result.verified, result.output["patched"]) == (True, True, False)
    assert fake.methods() == ["GET"]


async def test_read_back_mismatch_fails_unverified(
    server: TestServer, ctx: ActionContext, fake: LaunchDarkly
) -> None:
    fake.stuck = True
    result = await FEATURE_FLAG_DISABLE.run(_params(server), ctx)
    assert (result.ok, result.verified) == (False, False)
    assert "but it reads on (expected off)" in result.summary


async def test_ignore_conflicts_goes_in_the_query(
    server: TestServer, ctx: ActionContext, fake: LaunchDarkly
) -> None:
    await FEATURE_FLAG_DISABLE.run(_params(server, ignore_conflicts=True), ctx)
    assert fake.requests[1].query == {"ignoreConflicts": "true"}


async def test_unknown_flag_and_environment_are_refused(
    server: TestServer, ctx: ActionContext, fake: LaunchDarkly
) -> None:
    with pytest.raises(PermanentError, match="no flag 'nope' in project 'shop'"):
        await FEATURE_FLAG_DISABLE.run(_params(server, flag="nope"), ctx)
    with pytest.raises(PermanentError, match="no environment 'staging'"):
        await FEATURE_FLAG_DISABLE.run(_params(server, environment="staging"), ctx)
    assert fake.methods() == ["GET", "GET"]


@pytest.mark.parametrize(("status", "delay"), [(409, 3.0), (429, 3.0), (503, 3.0)])
async def test_conflicts_rate_limits_and_outages_are_retried(
    server: TestServer, ctx: ActionContext, fake: LaunchDarkly, status: int, delay: float
) -> None:
    fake.patch_status = [status]
    with pytest.raises(TemporaryError, match=str(status)) as caught:
        await FEATURE_FLAG_DISABLE.run(_params(server), ctx)
    assert caught.value.delay == delay  # X-Ratelimit-Reset minus the reply's Date
    result = await FEATURE_FLAG_DISABLE.run(_params(server), ctx)  # the retry
    assert (result.ok, result.verified) == (True, True)


async def test_bad_request_names_ignore_conflicts(
    server: TestServer, ctx: ActionContext, fake: LaunchDarkly
) -> None:
    fake.patch_status = [400]
    with pytest.raises(PermanentError, match="ignore_conflicts: true"):
        await FEATURE_FLAG_DISABLE.run(_params(server), ctx)


async def test_wrong_token_is_permanent(
    server: TestServer, ctx: ActionContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LD_ACCESS_TOKEN", "sdk-1234")
    with pytest.raises(PermanentError, match=r"401 .*SDK and mobile keys"):
        await FEATURE_FLAG_DISABLE.run(_params(server), ctx)


async def test_the_fake_refuses_a_plain_json_content_type(server: TestServer) -> None:
    """The trap the exact Content-Type avoids: without it the body is read as a JSON Patch."""
    async with await AiohttpHttpApi.create() as client:
        reply = await client.send(
            HttpRequest(
                method="PATCH",
                url=str(server.make_url("/api/v2/flags/shop/checkout-v2")),
                headers={"Authorization": TOKEN, "Content-Type": "application/json"},
                body=b'{"environmentKey":"production","instructions":[{"kind":"turnFlagOff"}]}',
                timeout_seconds=5,
            )
        )
    assert reply.status == 400


async def test_run_enforces_the_allowlist(server: TestServer, fake: LaunchDarkly) -> None:
    async with await AiohttpHttpApi.create() as client:
        ctx = ActionContext(
            http=client,
            allowed_hosts=("app.launchdarkly.com",),
            run_id="r",
            rule_id="r",
            step_id="s",
            output_max_bytes=1024,
        )
        with pytest.raises(NotAllowedError):
            await FEATURE_FLAG_DISABLE.run(_params(server), ctx)
    assert fake.requests == []


def test_describe_and_check_use_the_saas_default() -> None:
    params = _params(None)
    shown = FEATURE_FLAG_DISABLE.describe(params)
    assert shown["method"] == "PATCH"
    assert shown["url"] == "https://app.launchdarkly.com/api/v2/flags/shop/checkout-v2"
    assert shown["headers"]["Content-Type"] == SEMANTIC
    assert shown["headers"]["Authorization"] == "[REDACTED] (from $LD_ACCESS_TOKEN)"
    assert shown["json"]["instructions"] == [{"kind": "turnFlagOff"}]
    assert shown["before"]["url"].endswith("/checkout-v2?env=production")
    assert shown["verify"]["expect"] == {"environments.production.on": False}
    assert FEATURE_FLAG_ENABLE.describe(params)["json"]["instructions"] == [{"kind": "turnFlagOn"}]
    assert FEATURE_FLAG_DISABLE.check is not None
    FEATURE_FLAG_DISABLE.check(params, ("app.launchdarkly.com",))
    with pytest.raises(NotAllowedError):
        FEATURE_FLAG_DISABLE.check(params, ("127.0.0.1",))
