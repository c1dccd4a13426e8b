"""The `http.request` action end to end: AiohttpHttpApi against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from responder.actions.base import ActionContext
from responder.actions.calls import parse_json_body
from responder.actions.http.requests import HTTP_REQUEST, HttpRequestParams
from responder.errors import NotAllowedError, OutcomeUnknownError, PermanentError, TemporaryError
from tests.support.action_contexts import loopback_context
from tests.support.recording import Recorder

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class Seen(Recorder):
    """Requests the test server received, and when its slow answer may come."""

    release: asyncio.Event = field(default_factory=asyncio.Event)


def _app(seen: Seen) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        kind = request.match_info["kind"]
        if kind == "json":
            return web.json_response({"state": "OPEN", "echo": body.decode() or None})
        if kind == "text":
            return web.Response(text="plain ok")
        if kind == "big":
            return web.Response(text="z" * 100_000)
        if kind == "slow":
            await asyncio.wait_for(seen.release.wait(), 5)
            return web.Response(text="late")
        if kind == "moved":
            raise web.HTTPFound("http://evil.invalid/?token=abc")
        if kind == "busy":
            return web.Response(status=503, headers={"Retry-After": "7"}, text="busy")
        return web.Response(status=int(kind), text=f"status {kind}")

    app = seen.recording_app()
    app.router.add_route("*", "/{kind}", handle)
    return app


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def server(aiohttp_server: ServerFactory, seen: Seen) -> AsyncIterator[TestServer]:
    test_server = await aiohttp_server(_app(seen), host="127.0.0.1")
    yield test_server
    seen.release.set()


@pytest.fixture
async def ctx() -> AsyncIterator[ActionContext]:
    async with loopback_context(step_id="state", output_max_bytes=2048) as context:
        yield context


def _params(server: TestServer, path: str, **extra: Any) -> HttpRequestParams:
    return HttpRequestParams.model_validate({"url": str(server.make_url(path)), **extra})


async def test_json_body_is_parsed(server: TestServer, ctx: ActionContext) -> None:
    result = await HTTP_REQUEST.run(_params(server, "/json"), ctx)
    assert result.ok
    assert result.output["status"] == 200
    assert result.output["json"] == {"state": "OPEN", "echo": None}
    assert result.output["headers"] == {"content-type": "application/json; charset=utf-8"}
    assert result.output["truncated"] is False
    assert isinstance(result.output["elapsed_ms"], int)
    assert result.summary.startswith(f"GET http://127.0.0.1:{server.port}/json -> 200 in ")


async def test_text_body_has_no_json(server: TestServer, ctx: ActionContext) -> None:
    result = await HTTP_REQUEST.run(_params(server, "/text"), ctx)
    assert result.ok
    assert result.output["body"] == "plain ok"
    assert result.output["json"] is None


async def test_post_sends_json(server: TestServer, ctx: ActionContext, seen: Seen) -> None:
    params = _params(server, "/json", method="POST", json={"reset": True}, headers={"X-Req": "1"})
    result = await HTTP_REQUEST.run(params, ctx)
    sent = seen.requests[0]
    assert (sent.method, sent.body) == ("POST", b'{"reset":true}')
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["X-Req"] == "1"
    assert result.output["json"]["echo"] == '{"reset":true}'


@pytest.mark.parametrize(
    ("kind", "expect", "ok"),
    [
        ("200", None, True),
        ("204", None, True),
        ("404", None, False),
        ("404", [404], True),
        ("200", [201, 202], False),
        ("500", None, False),
    ],
)
async def test_expect_status(
    server: TestServer, ctx: ActionContext, kind: str, expect: list[int] | None, ok: bool
) -> None:
    extra = {} if expect is None else {"expect_status": expect}
    result = await HTTP_REQUEST.run(_params(server, f"/{kind}", **extra), ctx)
    assert result.ok is ok
    assert result.output["status"] == int(kind)
    assert ("expected" in result.summary) is (not ok)


@pytest.mark.parametrize("code", ["502", "504"])
async def test_gateway_errors_on_reads_are_temporary(
    server: TestServer, ctx: ActionContext, code: str
) -> None:
    with pytest.raises(TemporaryError, match=f"answered {code}"):
        await HTTP_REQUEST.run(_params(server, f"/{code}"), ctx)


async def test_retry_after_is_honoured(server: TestServer, ctx: ActionContext) -> None:
    with pytest.raises(TemporaryError) as caught:
        await HTTP_REQUEST.run(_params(server, "/busy", method="HEAD"), ctx)
    assert caught.value.delay == 7.0


async def test_gateway_errors_on_writes_are_plain_failures(
    server: TestServer, ctx: ActionContext, seen: Seen
) -> None:
    result = await HTTP_REQUEST.run(_params(server, "/503", method="POST", json={}), ctx)
    assert not result.ok
    assert result.output["status"] == 503
    assert len(seen.requests) == 1


async def test_large_body_is_truncated(server: TestServer, ctx: ActionContext) -> None:
    result = await HTTP_REQUEST.run(_params(server, "/big", max_response_bytes=50_000), ctx)
    assert result.ok
    assert result.output["truncated"] is True
    assert len(result.output["body"].encode()) <= ctx.output_max_bytes
    assert result.output["body"].endswith("bytes]")


async def test_timeout_is_temporary(server: TestServer, ctx: ActionContext) -> None:
    with pytest.raises(TemporaryError, match="timed out"):
        await HTTP_REQUEST.run(_params(server, "/slow", timeout_seconds=0.2), ctx)


async def test_redirect_is_reported_not_followed(
    server: TestServer, ctx: ActionContext, seen: Seen
) -> None:
    result = await HTTP_REQUEST.run(_params(server, "/moved"), ctx)
    assert not result.ok
    assert result.output["status"] == 302
    assert result.output["headers"]["location"] == "http://evil.invalid/?token=[REDACTED]"
    assert len(seen.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.com/",
        "http://evil.com#@127.0.0.1/",
        "http://127.0.0.1@evil.com/",
        "http://127.0.0.1.evil.com/",
        "http://localhost/",
    ],
)
async def test_allowlist_refuses_before_sending(
    server: TestServer, ctx: ActionContext, seen: Seen, url: str
) -> None:
    params = HttpRequestParams.model_validate({"url": url})
    with pytest.raises(NotAllowedError, match="refused"):
        await HTTP_REQUEST.run(params, ctx)
    assert seen.requests == []


async def test_empty_allowlist_refuses_everything(
    server: TestServer, ctx: ActionContext, seen: Seen
) -> None:
    closed = ActionContext(
        http=ctx.http,
        allowed_hosts=(),
        run_id="r",
        rule_id="r",
        step_id="s",
        output_max_bytes=1024,
    )
    with pytest.raises(NotAllowedError):
        await HTTP_REQUEST.run(_params(server, "/200"), closed)
    assert seen.requests == []


async def test_connection_refused_is_temporary(ctx: ActionContext) -> None:
    params = HttpRequestParams.model_validate({"url": "http://127.0.0.1:9/"})
    with pytest.raises(TemporaryError, match="cannot connect"):
        await HTTP_REQUEST.run(params, ctx)


def test_describe_redacts_headers() -> None:
    params = HttpRequestParams.model_validate(
        {
            "method": "post",
            "url": "http://a.svc/reset?api_key=k1",
            "headers": {"Authorization": "Bearer s3cr3t-token", "X-Trace": "t"},
            "json": {"name": "pagerduty", "password": "p"},
        }
    )
    described = HTTP_REQUEST.describe(params)
    assert described == {
        "method": "POST",
        "url": "http://a.svc/reset?api_key=[REDACTED]",
        "headers": {
            "Authorization": "[REDACTED]",
            "X-Trace": "t",
            "Content-Type": "application/json",
        },
        "json": {"name": "pagerduty", "password": "[REDACTED]"},
    }
    assert "s3cr3t" not in repr(described)


def test_invalid_urls_fail_permanently_at_check() -> None:
    assert HTTP_REQUEST.check is not None
    with pytest.raises(PermanentError):
        HTTP_REQUEST.check(HttpRequestParams.model_validate({"url": "file:///x"}), ("*.svc",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}),
        ("[]", []),
        ("not json", None),
        ("", None),
        ('{"a": NaN}', None),
        ("[" * 100 + "]" * 100, None),
        ("[" * 100_000 + "]" * 100_000, None),
    ],
)
def test_json_parsing_is_strict_and_bounded(text: str, expected: Any) -> None:
    assert parse_json_body(text) == expected


def test_json_body_must_be_plain_json() -> None:
    with pytest.raises(ValidationError, match="not plain JSON"):
        HttpRequestParams.model_validate(
            {"url": "http://a/", "method": "POST", "json": {"when": date(2024, 1, 1)}}
        )


@pytest.fixture
async def resetting() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TCP server on 127.0.0.1 that reads a request and resets the connection unanswered."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        transport = writer.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # SO_LINGER 0: close sends RST, like a crashing backend
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    tcp = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    async with tcp:
        yield f"http://127.0.0.1:{port}/act", received


async def test_a_write_reset_after_sending_is_a_failure_never_retried(
    resetting: tuple[str, list[bytes]], ctx: ActionContext
) -> None:
    url, received = resetting
    params = HttpRequestParams.model_validate({"method": "POST", "url": url, "json": {"a": 1}})
    result = await HTTP_REQUEST.run(params, ctx)
    assert result.ok is False
    assert result.output["outcome"] == "unknown"
    assert "not retried" in result.summary
    assert len(received) == 1
    assert received[0].startswith(b"POST /act")


async def test_a_read_reset_after_sending_is_temporary(
    resetting: tuple[str, list[bytes]], ctx: ActionContext
) -> None:
    url, received = resetting
    with pytest.raises(OutcomeUnknownError):
        await HTTP_REQUEST.run(HttpRequestParams.model_validate({"url": url}), ctx)
    assert len(received) in (1, 2)  # aiohttp repeats an idempotent request once on a reset


async def test_a_write_that_times_out_is_not_retried(
    server: TestServer, ctx: ActionContext
) -> None:
    params = _params(server, "/slow", method="POST", timeout_seconds=0.2)
    result = await HTTP_REQUEST.run(params, ctx)
    assert result.ok is False
    assert result.output["outcome"] == "unknown"
    assert "timed out" in result.summary
