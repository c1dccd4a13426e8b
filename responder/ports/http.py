"""The HttpApi port: outgoing HTTP requests, each with a timeout and a response size cap."""

from __future__ import annotations

from typing import Protocol

from responder.models.http import HttpRequest, HttpResponse


class HttpApi(Protocol):
    """Outgoing HTTP with a timeout and a response size cap on every call."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send one request. Raises TemporaryError on transport errors and timeouts."""
        ...
