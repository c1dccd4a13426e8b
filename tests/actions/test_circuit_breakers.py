"""`circuit_breaker.reset` / `force_open` against a stateful fake Resilience4j actuator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from responder.actions.base import ActionContext
from responder.actions.circuit_breakers import (
    CIRCUIT_BREAKER_FORCE_OPEN,
    CIRCUIT_BREAKER_RESET,
    CircuitBreakerParams,
)
from responder.adapters.http_client import AiohttpHttpApi
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from responder.models.http import HttpRequest
from tests.support.action_contexts import loopback_context
from tests.support.recording import Recorder

ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "Basic YWN0dWF0b3I6czNjcjN0LXBhc3M="
_TRANSITIONS = {"CLOSE": "CLOSED", "FORCE_OPEN": "FORCED_OPEN", "DISABLE": "DISABLED"}


@dataclass
class Actuator(Recorder):
    """A fake Resilience4j actuator: breakers, a mode, and every request it received."""

    breakers: dict[str, str] = field(
        default_factory=lambda: {"backendA": "OPEN", "backendB": "CLOSED"}
    )
    shape: str = "v2"  # or "v1": the list of names only
    stuck: bool = False  # POST answers 200 but the state does not change
    list_status: int = 200  # GET answers this status instead (503, 401...)
    post_status: int = 200
    slow: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)


def _detail(state: str) -> dict[str, Any]:
    return {
        "failureRate": "-1.0%",
        "slowCallRate": "-1.0%",
        "failureRateThreshold": "50.0%",
        "slowCallRateThreshold": "100.0%",
        "bufferedCalls": 0,
        "failedCalls": 0,
        "slowCalls": 0,
        "slowFailedCalls": 0,
        "notPermittedCalls": 0,
        "state": state,
    }


def _app(fake: Actuator) -> web.Application:
    async def held() -> None:
        if fake.slow:
            await asyncio.wait_for(fake.release.wait(), 5)

    async def list_breakers(request: web.Request) -> web.Response:
        await held()
        if fake.list_status != 200:
            return web.json_response({"error": "nope"}, status=fake.list_status)
        if fake.shape == "v1":
            return web.json_response({"circuitBreakers": sorted(fake.breakers)})
        ordered = {name: _detail(fake.breakers[name]) for name in sorted(fake.breakers)}
        return web.json_response({"circuitBreakers": ordered})

    async def update(request: web.Request) -> web.Response:
        await held()
        if fake.post_status != 200:
            return web.json_response({"error": "nope"}, status=fake.post_status)
        name = request.match_info["name"]
        wanted = (await request.json()).get("updateState")
        if wanted not in _TRANSITIONS:
            return web.json_response({"status": 400, "error": "Bad Request"}, status=400)
        fake.breakers.setdefault(name, "CLOSED")  # the real registry creates unknown names
        if not fake.stuck:
            fake.breakers[name] = _TRANSITIONS[wanted]
        return web.json_response(
            {
                "circuitBreakerName": name,
                "currentState": _TRANSITIONS[wanted],
                "message": f"{name} state has been changed successfully",
            }
        )

    app = fake.recording_app()
    app.router.add_get("/actuator/circuitbreakers", list_breakers)
    app.router.add_post("/actuator/circuitbreakers/{name}", update)
    return app


@pytest.fixture
def fake() -> Actuator:
    return Actuator()


@pytest.fixture
async def server(aiohttp_server: ServerFactory, fake: Actuator) -> AsyncIterator[TestServer]:
    yield await aiohttp_server(_app(fake), host="127.0.0.1")
    fake.release.set()


@pytest.fixture
async def ctx() -> AsyncIterator[ActionContext]:
    async with loopback_context(step_id="reset") as context:
        yield context


def _params(server: TestServer, name: str = "backendA", **extra: Any) -> CircuitBreakerParams:
    base = str(server.make_url("/")).rstrip("/")
    return CircuitBreakerParams.model_validate({"base_url": base, "name": name, **extra})


async def test_reset_posts_close_and_verifies(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    result = await CIRCUIT_BREAKER_RESET.run(_params(server), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert result.output["before"] == "OPEN"
    assert result.output["after"] == "CLOSED"
    assert result.output["message"] == "backendA state has been changed successfully"
    assert result.output["posted"] is True
    assert fake.breakers["backendA"] == "CLOSED"
    assert [(r.method, r.path, r.body) for r in fake.requests] == [
        ("GET", "/actuator/circuitbreakers", b""),
        ("POST", "/actuator/circuitbreakers/backendA", b'{"updateState":"CLOSE"}'),
        ("GET", "/actuator/circuitbreakers", b""),
    ]
    assert "OPEN -> CLOSED (verified)" in result.summary


async def test_force_open_expects_forced_open(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    result = await CIRCUIT_BREAKER_FORCE_OPEN.run(_params(server, "backendB"), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert (result.output["before"], result.output["after"]) == ("CLOSED", "FORCED_OPEN")
    assert fake.requests[1].body == b'{"updateState":"FORCE_OPEN"}'
    assert fake.breakers["backendB"] == "FORCED_OPEN"


async def test_already_in_state_skips_the_post(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    result = await CIRCUIT_BREAKER_RESET.run(_params(server, "backendB"), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert result.output["posted"] is False
    assert "already CLOSED" in result.summary
    assert fake.methods() == ["GET"]


async def test_unknown_name_is_refused_before_posting(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    with pytest.raises(PermanentError, match="silently create") as caught:
        await CIRCUIT_BREAKER_RESET.run(_params(server, "backendTypo"), ctx)
    assert "backendA, backendB" in str(caught.value)
    assert fake.methods() == ["GET"]
    assert "backendTypo" not in fake.breakers


async def test_the_fake_really_creates_unknown_names(server: TestServer, fake: Actuator) -> None:
    """The trap the GET-first check avoids: a blind POST makes a new breaker."""
    async with await AiohttpHttpApi.create() as client:
        url = str(server.make_url("/actuator/circuitbreakers/typo"))
        body = b'{"updateState":"CLOSE"}'
        headers = {"Content-Type": "application/json"}
        reply = await client.send(
            HttpRequest(method="POST", url=url, headers=headers, body=body, timeout_seconds=5)
        )
        bad = await client.send(
            HttpRequest(
                method="POST",
                url=url,
                headers=headers,
                body=b'{"updateState":"HALF_OPEN"}',
                timeout_seconds=5,
            )
        )
    assert reply.status == 200
    assert bad.status == 400
    assert fake.breakers["typo"] == "CLOSED"


async def test_read_back_mismatch_fails_unverified(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    fake.stuck = True
    result = await CIRCUIT_BREAKER_RESET.run(_params(server), ctx)
    assert (result.ok, result.verified) == (False, False)
    assert result.output["after"] == "OPEN"
    assert "expected CLOSED" in result.summary
    assert fake.methods() == ["GET", "POST", "GET"]


async def test_v1_list_shape_posts_but_cannot_verify(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    fake.shape = "v1"
    result = await CIRCUIT_BREAKER_RESET.run(_params(server, "backendB"), ctx)
    assert result.ok is True
    assert result.verified is None
    assert result.output["shape"] == "v1"
    assert "not verified" in result.output["note"]
    assert fake.methods() == ["GET", "POST", "GET"]  # state unknown: no skip


async def test_v1_list_shape_still_refuses_unknown_names(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    fake.shape = "v1"
    with pytest.raises(PermanentError, match="not registered"):
        await CIRCUIT_BREAKER_RESET.run(_params(server, "backendZ"), ctx)
    assert fake.methods() == ["GET"]


async def test_auth_header_comes_from_env(
    server: TestServer, ctx: ActionContext, fake: Actuator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_ACTUATOR_AUTH", SECRET)
    params = _params(server, auth_header_env="ORDERS_ACTUATOR_AUTH")
    result = await CIRCUIT_BREAKER_RESET.run(params, ctx)
    assert result.ok
    assert {r.auth for r in fake.requests} == {SECRET}
    assert "czNjcjN0" not in json.dumps(result.model_dump())


async def test_missing_env_var_is_permanent(
    server: TestServer, ctx: ActionContext, fake: Actuator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORDERS_ACTUATOR_AUTH", raising=False)
    with pytest.raises(PermanentError, match="ORDERS_ACTUATOR_AUTH"):
        await CIRCUIT_BREAKER_RESET.run(
            _params(server, auth_header_env="ORDERS_ACTUATOR_AUTH"), ctx
        )
    assert fake.requests == []


def test_describe_shows_the_request_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_ACTUATOR_AUTH", SECRET)
    params = CircuitBreakerParams(
        base_url="http://orders.shop.svc:8080/",
        name="pagerduty",
        auth_header_env="ORDERS_ACTUATOR_AUTH",
    )
    shown = CIRCUIT_BREAKER_RESET.describe(params)
    assert shown["method"] == "POST"
    assert shown["url"] == "http://orders.shop.svc:8080/actuator/circuitbreakers/pagerduty"
    assert shown["json"] == {"updateState": "CLOSE"}
    assert shown["headers"]["Authorization"].startswith("[REDACTED]")
    assert shown["before"]["url"] == "http://orders.shop.svc:8080/actuator/circuitbreakers"
    assert shown["verify"]["expect_state"] == "CLOSED"
    assert SECRET not in json.dumps(shown)
    assert CIRCUIT_BREAKER_FORCE_OPEN.describe(params)["json"] == {"updateState": "FORCE_OPEN"}


@pytest.mark.parametrize(
    "name",
    ["a/../../shutdown", "..", ".", "back end", "x" * 129, "", "a?b=1", "a%2F..", "é"],
)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        CircuitBreakerParams(base_url="http://127.0.0.1:8080", name=name)


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("actuator_path", "/../admin"),
        ("actuator_path", "actuator"),
        ("actuator_path", "/actuator?x=1"),
        ("base_url", "http://127.0.0.1:8080/?x=1"),
        ("auth_header_env", "RESPONDER_WEBHOOK_TOKEN"),
        ("auth_header_env", "A-B"),
    ],
)
def test_other_params_are_validated(field_name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field_name):
        CircuitBreakerParams.model_validate(
            {"base_url": "http://127.0.0.1:8080", "name": "backendA", field_name: value}
        )


def test_check_enforces_the_host_allowlist() -> None:
    params = CircuitBreakerParams(base_url="http://evil.example:8080", name="backendA")
    assert CIRCUIT_BREAKER_RESET.check is not None
    with pytest.raises(NotAllowedError):
        CIRCUIT_BREAKER_RESET.check(params, ("127.0.0.1",))
    CIRCUIT_BREAKER_RESET.check(params, ("evil.example",))


async def test_run_enforces_the_allowlist_too(server: TestServer, fake: Actuator) -> None:
    async with await AiohttpHttpApi.create() as client:
        ctx = ActionContext(
            http=client,
            allowed_hosts=("other.host",),
            run_id="r",
            rule_id="r",
            step_id="s",
            output_max_bytes=1024,
        )
        with pytest.raises(NotAllowedError):
            await CIRCUIT_BREAKER_RESET.run(_params(server), ctx)
    assert fake.requests == []


async def test_list_5xx_is_temporary(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    fake.list_status = 503
    with pytest.raises(TemporaryError, match="503"):
        await CIRCUIT_BREAKER_RESET.run(_params(server), ctx)


async def test_post_5xx_is_temporary(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    fake.post_status = 500
    with pytest.raises(TemporaryError, match="500"):
        await CIRCUIT_BREAKER_RESET.run(_params(server), ctx)


async def test_timeout_is_temporary(server: TestServer, ctx: ActionContext, fake: Actuator) -> None:
    fake.slow = True
    with pytest.raises(TemporaryError, match="timed out"):
        await CIRCUIT_BREAKER_RESET.run(_params(server, timeout_seconds=0.2), ctx)


async def test_endpoint_not_exposed_names_the_setting(
    server: TestServer, ctx: ActionContext
) -> None:
    with pytest.raises(PermanentError, match=r"404.*exposure\.include"):
        await CIRCUIT_BREAKER_RESET.run(_params(server, actuator_path="/management"), ctx)


async def test_unauthorized_is_permanent(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    fake.list_status = 401
    with pytest.raises(PermanentError, match=r"401.*credentials"):
        await CIRCUIT_BREAKER_RESET.run(_params(server), ctx)


async def test_read_only_access_names_the_fix(
    server: TestServer, ctx: ActionContext, fake: Actuator
) -> None:
    fake.post_status = 405
    with pytest.raises(PermanentError, match="read-only"):
        await CIRCUIT_BREAKER_RESET.run(_params(server), ctx)
    assert fake.breakers["backendA"] == "OPEN"


async def test_not_an_actuator_reply_is_permanent(
    aiohttp_server: ServerFactory, ctx: ActionContext
) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>login</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/actuator/circuitbreakers", html)
    other = await aiohttp_server(app, host="127.0.0.1")
    with pytest.raises(PermanentError, match="not a Resilience4j"):
        await CIRCUIT_BREAKER_RESET.run(_params(other), ctx)
