"""A real local HTTP target (aiohttp on 127.0.0.1) that records what it receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.recording import Recorder


@dataclass
class Target(Recorder):
    """What the target server saw (`requests`), and how it should answer."""

    server: TestServer | None = None
    status: int = 200
    reply: dict[str, Any] = field(default_factory=lambda: {"status": "UP"})
    delay: float = 0.0

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>` of the running server."""
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`, as written in an allowlist."""
        assert self.server is not None
        return f"127.0.0.1:{self.server.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response(self.reply, status=self.status)


@asynccontextmanager
async def running_target() -> AsyncIterator[Target]:
    """Start a Target on 127.0.0.1 (random port) and stop it afterwards."""
    target = Target()
    app = target.recording_app()
    app.router.add_route("*", "/{tail:.*}", target._handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    target.server = server
    try:
        yield target
    finally:
        await server.close()


def per_instance_rule(target: Target) -> str:
    """A rule for DiskFull: a diagnostic step, then a containment step (an HTTP POST is
    containment) to `<target>/act/<labels.instance>`, so each alert's hits can be counted."""
    return f"""
id: contain
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - {{id: look, action: log, with: {{message: "looking at {{{{ labels.instance }}}}"}}}}
  - id: act
    action: http.request
    with: {{method: POST, url: "{target.base_url}/act/{{{{ labels.instance }}}}", json: {{}}}}
"""
