"""`GET /healthz`, `GET /readyz` and `GET /metrics`."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from responder.errors import StoreUnavailableError
from responder.ports.store import StoreLifecycle
from responder.web import keys


async def healthz(request: web.Request) -> web.StreamResponse:
    """Liveness: the event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """Readiness: rules loaded, store writable, not draining. 503 lists what is wrong."""
    app = request.app
    problems: list[str] = []
    checks: dict[str, str] = {}
    snapshot = app[keys.RULEBOOK].current
    checks["rules"] = f"{len(snapshot.rules)} loaded ({snapshot.digest})"
    store: StoreLifecycle = app[keys.STORE]
    try:
        await store.check_writable()
        checks["store"] = "writable"
    except StoreUnavailableError as exc:
        checks["store"] = str(exc)
        problems.append("store")
    if app[keys.INTAKE].draining:
        checks["intake"] = "draining"
        problems.append("intake")
    else:
        checks["intake"] = f"open ({app[keys.QUEUE].depth}/{app[keys.QUEUE].capacity} queued)"
    status = 503 if problems else 200
    return web.json_response(
        {"status": "ready" if not problems else "not ready", "failing": problems, "checks": checks},
        status=status,
    )


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus exposition of this instance's registry."""
    body = generate_latest(request.app[keys.METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
