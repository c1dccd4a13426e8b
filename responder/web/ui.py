"""`GET /ui`: the operator page (pending approvals with evidence, recent runs), one HTML file.

The page is server-rendered static HTML with inline CSS and vanilla JS (no build step, no
external assets). It holds no data itself: its script calls the same JSON API with the same
bearer tokens (`/v1/approvals`, `/v1/runs`), the token kept in the tab's `sessionStorage`.
Every response gets a fresh CSP nonce that the inline `<script>` and `<style>` carry, so
nothing else (injected markup, external files, framing) can run or load.
"""

from __future__ import annotations

import secrets
from functools import cache
from importlib import resources

from aiohttp import web

PAGE_RESOURCE = "ui_page.html"
NONCE_MARKER = "__CSP_NONCE__"


@cache
def page_template() -> str:
    """The page with `__CSP_NONCE__` where each response's nonce goes (read once)."""
    return resources.files("responder.web").joinpath(PAGE_RESOURCE).read_text(encoding="utf-8")


def content_security_policy(nonce: str) -> str:
    """Only our own inline script/style (by nonce) and same-origin fetches are allowed."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'nonce-{nonce}'",
            f"style-src 'nonce-{nonce}'",
            "connect-src 'self'",
            "img-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


async def page(request: web.Request) -> web.StreamResponse:
    """The operator page; the data behind it needs a reader or approver token."""
    del request  # the page is the same for everyone; the API checks the token
    nonce = secrets.token_urlsafe(18)
    html = page_template().replace(NONCE_MARKER, nonce)
    headers = {
        "Content-Security-Policy": content_security_policy(nonce),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=headers)
