"""The HTTP recorders of the tests: what a local test server received, what an action sent."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from responder.models.http import HttpRequest, HttpResponse
from responder.ports.http import HttpApi

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as a local test server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]  # case-insensitive, as HTTP headers are
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when there is no body)."""
        return json.loads(self.body) if self.body else None

    @property
    def auth(self) -> str | None:
        """The Authorization header, if any."""
        return self.headers.get("Authorization")


@dataclass
class Recorder:
    """Every request a local aiohttp test server received, in order.

    Fakes of real services subclass it and build their app with `recording_app()`, so each
    request is recorded before a handler (or a 404) answers it."""

    requests: list[RecordedRequest] = field(default_factory=list)

    def methods(self) -> list[str]:
        """The method of every request, in order."""
        return [request.method for request in self.requests]

    def hits(self, path: str) -> int:
        """How many requests reached `path`."""
        return sum(1 for request in self.requests if request.path == path)

    def recording_app(self) -> web.Application:
        """A new aiohttp app whose every request is recorded here first."""

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            body = await request.read()  # read once here; the handler reads it again
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                    body=body,
                )
            )
            return await handler(request)

        return web.Application(middlewares=[record])


class RecordingHttp:
    """An HttpApi that keeps what an action sent (to assert on it) while real servers answer."""

    def __init__(self, inner: HttpApi) -> None:
        self.inner = inner
        self.requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Record `request`, then send it."""
        self.requests.append(request)
        return await self.inner.send(request)

    def calls(self) -> list[tuple[str, str]]:
        """(method, path?query) of every request, in order."""
        result = []
        for request in self.requests:
            parts = urlsplit(request.url)
            result.append((request.method, parts.path + (f"?{parts.query}" if parts.query else "")))
        return result
