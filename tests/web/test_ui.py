"""The `/ui` page as served: self-contained markup under a nonce Content-Security-Policy.

(A real headless Chromium drives the page in tests/e2e/test_ui_browser.py.)"""

from __future__ import annotations

import re

from tests.support.apps import AppFactory


async def test_the_page_is_self_contained_with_a_nonce_csp(make_client: AppFactory) -> None:
    client = await make_client()
    response = await client.get("/ui")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    csp = response.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([A-Za-z0-9_-]+)'", csp)
    assert nonce is not None, csp
    assert f"style-src 'nonce-{nonce[1]}'" in csp
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    scripts = re.findall(r"<script\b[^>]*>", html)
    styles = re.findall(r"<style\b[^>]*>", html)
    assert scripts == [f'<script nonce="{nonce[1]}">']
    assert styles == [f'<style nonce="{nonce[1]}">']
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "http://" not in html
    assert "https://" not in html
    assert "innerHTML" not in html
    assert "document.cookie" not in html
    assert "__CSP_NONCE__" not in html
    again = await client.get("/ui")
    assert again.headers["Content-Security-Policy"] != csp  # a fresh nonce per response
