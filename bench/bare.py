"""The baseline server: a bare aiohttp app that reads the body and answers 202.

    python -m bench.bare PORT

Same framework, same interpreter, same loopback, no auth, parsing, store or logging: what
any aiohttp webhook receiver on this machine costs at the least. `GET /readyz` answers 200.
"""

from __future__ import annotations

import sys

from aiohttp import web


async def accept(request: web.Request) -> web.StreamResponse:
    """Read the whole body, answer 202 with a small JSON document."""
    body = await request.read()
    return web.json_response({"status": "accepted", "bytes": len(body)}, status=202)


async def ready(request: web.Request) -> web.StreamResponse:
    """Readiness for the bench's poll."""
    return web.json_response({"status": "ready"})


def make_app() -> web.Application:
    """The app: POST anything under /v1/webhooks/, GET /readyz."""
    app = web.Application(client_max_size=1_048_576)
    app.router.add_post("/v1/webhooks/{source}", accept)
    app.router.add_get("/readyz", ready)
    return app


def main(argv: list[str]) -> int:
    """Serve on 127.0.0.1:PORT until SIGTERM."""
    web.run_app(make_app(), host="127.0.0.1", port=int(argv[0]), access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
