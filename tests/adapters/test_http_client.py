"""AiohttpHttpApi against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from responder.adapters.http_client import AiohttpHttpApi
from responder.errors import PermanentError, TemporaryError
from responder.models.http import HttpRequest
from tests.support.loopback import free_port
from tests.support.recording import Recorder

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class Seen(Recorder):
    """What the test server received, and when its slow answer may come."""

    release: asyncio.Event = field(default_factory=asyncio.Event)


def _app(seen: Seen) -> web.Application:
    async def status(request: web.Request) -> web.StreamResponse:
        return web.Response(status=int(request.match_info["code"]), text="s")

    async def echo(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "method": request.method,
                "headers": dict(request.headers),
                "body": (await request.read()).decode(),
            }
        )

    async def big(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"a" * 200_000)

    async def exact(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"b" * 1000)

    async def bomb(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(b"\0" * 5_000_000), headers={"Content-Encoding": "gzip"}
        )

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(seen.release.wait(), 5)
        return web.Response(text="late")

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://elsewhere.invalid/target")

    async def cookie(request: web.Request) -> web.StreamResponse:
        response = web.Response(text="c")
        response.set_cookie("session", "s3ss10n")
        return response

    app = seen.recording_app()
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/exact", exact)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/cookie", cookie)
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
async def api() -> AsyncIterator[AiohttpHttpApi]:
    async with await AiohttpHttpApi.create() as client:
        yield client


def _url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


def _request(url: str, **kwargs: Any) -> HttpRequest:
    return HttpRequest(url=url, timeout_seconds=kwargs.pop("timeout_seconds", 5), **kwargs)


@pytest.mark.parametrize("code", [200, 204, 404, 500, 503])
async def test_statuses_are_returned_as_is(
    api: AiohttpHttpApi, server: TestServer, code: int
) -> None:
    response = await api.send(_request(_url(server, f"/status/{code}")))
    assert response.status == code
    assert response.elapsed_seconds > 0
    assert not response.truncated


async def test_method_headers_and_body_are_sent(
    api: AiohttpHttpApi, server: TestServer, seen: Seen
) -> None:
    response = await api.send(
        _request(
            _url(server, "/echo"),
            method="POST",
            headers={"X-Test": "yes", "Content-Type": "application/json"},
            body=b'{"a":1}',
        )
    )
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert seen.requests[0].method == "POST"
    assert seen.requests[0].headers["X-Test"] == "yes"
    assert seen.requests[0].headers["User-Agent"].startswith("responder/")
    assert [request.body for request in seen.requests] == [b'{"a":1}']


async def test_large_body_is_truncated(api: AiohttpHttpApi, server: TestServer) -> None:
    response = await api.send(_request(_url(server, "/big"), max_response_bytes=1000))
    assert response.body == b"a" * 1000
    assert response.truncated


async def test_body_of_exactly_the_cap_is_not_truncated(
    api: AiohttpHttpApi, server: TestServer
) -> None:
    response = await api.send(_request(_url(server, "/exact"), max_response_bytes=1000))
    assert response.body == b"b" * 1000
    assert not response.truncated


async def test_cap_applies_to_the_decompressed_body(
    api: AiohttpHttpApi, server: TestServer
) -> None:
    response = await api.send(_request(_url(server, "/bomb"), max_response_bytes=4096))
    assert len(response.body) == 4096
    assert response.truncated


async def test_timeout_is_temporary(api: AiohttpHttpApi, server: TestServer) -> None:
    with pytest.raises(TemporaryError) as caught:
        await api.send(_request(_url(server, "/slow"), timeout_seconds=0.2))
    message = str(caught.value)
    assert "timed out after 0.2s" in message
    assert f"127.0.0.1:{server.port}" in message
    assert "timeout_seconds" in message


async def test_connection_refused_is_temporary(api: AiohttpHttpApi) -> None:
    port = free_port()
    with pytest.raises(TemporaryError) as caught:
        await api.send(_request(f"http://127.0.0.1:{port}/x?token=secret"))
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "cannot connect" in message
    assert "network policy" in message
    assert "secret" not in message


async def test_redirect_is_not_followed(
    api: AiohttpHttpApi, server: TestServer, seen: Seen
) -> None:
    response = await api.send(_request(_url(server, "/redirect")))
    assert response.status == 302
    assert response.headers["location"] == "http://elsewhere.invalid/target"
    assert len(seen.requests) == 1


async def test_no_cookie_jar(api: AiohttpHttpApi, server: TestServer, seen: Seen) -> None:
    first = await api.send(_request(_url(server, "/cookie")))
    assert "s3ss10n" in first.headers["set-cookie"]
    await api.send(_request(_url(server, "/echo")))
    assert "Cookie" not in seen.requests[-1].headers


@pytest.mark.parametrize("url", ["http://", "http://[::1/", "mailto:someone@example.com"])
async def test_invalid_url_is_permanent(api: AiohttpHttpApi, url: str) -> None:
    with pytest.raises(PermanentError, match="invalid URL") as caught:
        await api.send(_request(url))
    assert not isinstance(caught.value, TemporaryError)


async def test_header_values_never_appear_in_errors(
    api: AiohttpHttpApi, server: TestServer
) -> None:
    with pytest.raises(PermanentError) as caught:
        await api.send(
            _request(_url(server, "/echo"), headers={"Authorization": "Bearer s3cr3t\r\nX: y"})
        )
    assert "s3cr3t" not in str(caught.value)
    assert caught.value.__cause__ is None


async def test_injected_session_is_not_closed() -> None:
    async with aiohttp.ClientSession() as session:
        client = AiohttpHttpApi(session)
        await client.close()
        assert not session.closed


async def test_close_is_idempotent() -> None:
    client = await AiohttpHttpApi.create()
    await client.close()
    await client.close()
