"""RFC 9457 problem+json responses, and the middleware that turns errors into them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger("responder.web")

PROBLEM_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A problem+json response; `slug` names the problem type (`urn:responder:problem:<slug>`)."""
    body = {
        "type": f"urn:responder:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        **{k: v for k, v in extra.items() if v is not None},
    }
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render aiohttp's own HTTP errors (404, 405, 413...) and crashes as problem+json."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return problem(
            413,
            "Payload too large",
            f"body exceeds the limit of {request.app._client_max_size} bytes; raise "
            "RESPONDER_MAX_BODY_BYTES "
            "or lower max_alerts on the sender",
            slug="payload-too-large",
        )
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == PROBLEM_TYPE:
            raise
        return problem(
            exc.status,
            exc.reason,
            exc.text or exc.reason,
            slug=exc.reason.lower().replace(" ", "-"),
            headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"},
        )
    except Exception:
        log.exception("request_failed", path=request.path, method=request.method)
        return problem(
            500,
            "Internal error",
            "responder failed to handle this request; see its logs",
            slug="internal",
        )
