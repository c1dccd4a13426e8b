"""What the flag-service providers (unleash, launchdarkly, http) share: keys, calls, statuses.

Status handling common to the flag services: 5xx and 429 -> TemporaryError (with the delay the
server asked for, bounded), 401/403 -> PermanentError naming the token to check. Every other
answer goes back to the provider, which knows what its 404 or 409 means.
"""

from __future__ import annotations

import email.utils
import re
from typing import Any

from responder.actions.base import ActionContext
from responder.actions.calls import (
    DEFAULT_RETRY_AFTER,
    MAX_RETRY_AFTER,
    parse_json_body,
    retry_after,
)
from responder.core.redaction import redact, truncate_text
from responder.errors import PermanentError, TemporaryError
from responder.models.http import HttpRequest, HttpResponse

MAX_BODY = 1024 * 1024
_KEY = re.compile(r"^[A-Za-z0-9._~-]+$")
_MIN_DELAY = 1.0


def flag_key(value: str, max_length: int = 100) -> str:
    """A project, flag or environment key that is safe as one URL path segment.

    Alert labels are attacker input: only A-Z a-z 0-9 . _ ~ - are accepted (not `.`/`..`).
    """
    if not _KEY.match(value) or value in (".", "..") or len(value) > max_length:
        raise ValueError(
            f"write 1-{max_length} of A-Z a-z 0-9 . _ ~ - (not '.' or '..'); "
            "no '/', '%', '?' or spaces"
        )
    return value


def server_message(response: HttpResponse) -> str:
    """The `message` of a JSON error body, else the start of the body (redacted)."""
    text = response.body.decode("utf-8", "replace")
    document = parse_json_body(text)
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        text = document["message"]
    return truncate_text(redact(" ".join(text.split())), 300) or "(empty body)"


def retry_delay(response: HttpResponse) -> float:
    """Seconds to wait before retrying a 429/503, from Retry-After or X-Ratelimit-Reset.

    X-Ratelimit-Reset (LaunchDarkly: epoch milliseconds) is taken relative to the response's
    own Date header, so no local clock is read. Bounded to 1-60 s; 2 s when neither is given.
    """
    if response.headers.get("retry-after", "").strip().isdigit():
        return max(retry_after(response), _MIN_DELAY)
    reset, date = response.headers.get("x-ratelimit-reset", ""), response.headers.get("date")
    if reset.strip().isdigit() and date:
        try:
            now = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        return min(max(int(reset) / 1000 - now, _MIN_DELAY), MAX_RETRY_AFTER)
    return DEFAULT_RETRY_AFTER


def fail_common(response: HttpResponse, what: str, auth_hint: str) -> None:
    """Raise for the answers every flag service shares (5xx, 429, 401, 403)."""
    status = response.status
    if status >= 500 or status == 429:
        reason = "rate limited" if status == 429 else "the service is unavailable"
        raise TemporaryError(
            f"{what} answered {status}; {reason}, retrying", delay=retry_delay(response)
        )
    if status in (401, 403):
        raise PermanentError(f"{what} answered {status} ({server_message(response)}): {auth_hint}")


async def send(
    ctx: ActionContext,
    method: str,
    url: str,
    headers: dict[str, str],
    timeout_seconds: float,
    body: bytes | None = None,
) -> HttpResponse:
    """One request with the flag actions' response cap."""
    return await ctx.http.send(
        HttpRequest(
            method=method,
            url=url,
            headers=headers,
            body=body,
            timeout_seconds=timeout_seconds,
            max_response_bytes=MAX_BODY,
        )
    )


def json_document(response: HttpResponse, what: str) -> dict[str, Any]:
    """The JSON object of a 2xx reply; PermanentError when it is not one."""
    text = response.body.decode("utf-8", "replace")
    document = None if response.truncated else parse_json_body(text)
    if not isinstance(document, dict):
        raise PermanentError(f"{what} did not answer with a JSON object; check base_url")
    return document


def audit_comment(ctx: ActionContext, extra: str = "") -> str:
    """The change comment flag services keep in their audit log."""
    text = f"responder: rule {ctx.rule_id}, run {ctx.run_id}, step {ctx.step_id}"
    return f"{text}: {extra}" if extra else text
