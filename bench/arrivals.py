"""A loopback target that records when each request arrives (wall clock, this machine).

    python -m bench.arrivals PORT

Any request to `/hit/<key>` or `/direct/<key>` is answered 200 and its arrival time
(`time.time()`, the same clock the load generator stamps its sends with) kept under that
path; `GET /arrivals` returns them all as JSON `{path: first arrival}`; `GET /counts` how
many requests came per method and path, `{"<METHOD> <path>": count}` (the engine bench's
exactly-once check); `GET /readyz` 200.
"""

from __future__ import annotations

import sys
import time

from aiohttp import web

ARRIVALS = web.AppKey("arrivals", dict[str, float])
COUNTS = web.AppKey("counts", dict[str, int])


async def hit(request: web.Request) -> web.StreamResponse:
    """Record the first arrival of this path; answer 200."""
    now = time.time()
    request.app[ARRIVALS].setdefault(request.path, now)
    counts = request.app[COUNTS]
    key = f"{request.method} {request.path}"
    counts[key] = counts.get(key, 0) + 1
    await request.read()
    return web.json_response({"status": "UP"})


async def arrivals(request: web.Request) -> web.StreamResponse:
    """Every recorded arrival."""
    return web.json_response(request.app[ARRIVALS])


async def counts(request: web.Request) -> web.StreamResponse:
    """Requests per method and path."""
    return web.json_response(request.app[COUNTS])


async def ready(request: web.Request) -> web.StreamResponse:
    """Readiness for the bench's poll."""
    return web.json_response({"status": "ready"})


def make_app() -> web.Application:
    """The app."""
    app = web.Application()
    app[ARRIVALS] = {}
    app[COUNTS] = {}
    app.router.add_get("/arrivals", arrivals)
    app.router.add_get("/counts", counts)
    app.router.add_get("/readyz", ready)
    app.router.add_route("*", "/hit/{key}", hit)
    app.router.add_route("*", "/direct/{key}", hit)
    return app


def main(argv: list[str]) -> int:
    """Serve on 127.0.0.1:PORT until SIGTERM."""
    web.run_app(make_app(), host="127.0.0.1", port=int(argv[0]), access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
