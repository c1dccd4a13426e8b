"""An HttpApi that records every request and passes it on to the real aiohttp adapter."""

from __future__ import annotations

from urllib.parse import urlsplit

from responder.models.http import HttpRequest, HttpResponse
from responder.ports import HttpApi


class RecordingHttp:
    """Keeps what an action sent (to assert on it) while real servers answer."""

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
