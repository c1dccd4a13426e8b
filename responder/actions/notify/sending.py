"""What every `notify.*` action shares: secrets from the environment, the JSON POST, retries.

Notifications are diagnostic: they change nothing in the system under repair. Their secrets
(a Slack webhook URL, a PagerDuty routing key, a header value) live in environment variables
named by the rule, never in rule text, and are read only when the step runs. A secret never
reaches describe(), outputs, errors or summaries: values read from the environment are also
scrubbed, verbatim, from whatever the receiver answers.

Environment variable names must look like `SLACK_WEBHOOK_URL` (letters, digits, `_`) and may
not start with `RESPONDER_`: responder's own settings (webhook token, database URL) are never
sent anywhere (`calls.check_env_name`).

429 and 5xx answers are a TemporaryError, retried after a numeric `Retry-After` (at most 60 s).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from responder.actions.calls import check_env_name, retry_after
from responder.core.host_allowlists import check_url, parse_target
from responder.core.redaction import REDACTED, redact, truncate_text
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from responder.models.http import HttpRequest, HttpResponse


def read_env_secret(name: str) -> str:
    """The value of environment variable `name`; PermanentError naming it when unset/empty."""
    value = os.environ.get(check_env_name(name), "")
    if not value.strip():
        raise PermanentError(
            f"environment variable {name} is not set (or empty); set it in responder's "
            "environment (e.g. from a Kubernetes Secret) and restart"
        )
    return value.strip()


def check_secret_url(url: str, env_name: str, allowed_hosts: tuple[str, ...]) -> None:
    """Allowlist a URL read from `env_name` without ever quoting it (the URL is the secret)."""
    try:
        parse_target(url)
    except NotAllowedError:
        raise NotAllowedError(
            f"the value of {env_name} is not a usable http(s) URL; set it to the full "
            "webhook URL (https://host/path)"
        ) from None
    check_url(url, allowed_hosts)  # its messages name only the host and port


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """`value` redacted, with every occurrence of each secret replaced by "[REDACTED]"."""
    cleaned = redact(value)
    known = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)
    if isinstance(cleaned, str):
        for secret in known:
            cleaned = cleaned.replace(secret, REDACTED)
        return cleaned
    if isinstance(cleaned, Mapping):
        return {key: scrub(item, known) for key, item in cleaned.items()}
    if isinstance(cleaned, list | tuple):
        return [scrub(item, known) for item in cleaned]
    return cleaned


def json_post(
    url: str, body: Any, timeout_seconds: float, headers: Mapping[str, str] | None = None
) -> HttpRequest:
    """A POST of `body` as compact JSON with `Content-Type: application/json`."""
    return HttpRequest(
        method="POST",
        url=url,
        headers={**(headers or {}), "Content-Type": "application/json"},
        body=json.dumps(body, separators=(",", ":"), allow_nan=False).encode(),
        timeout_seconds=timeout_seconds,
        max_response_bytes=65536,
    )


def raise_if_retryable(response: HttpResponse, where: str, secrets: Iterable[str]) -> None:
    """TemporaryError for 429 (rate limited) and 5xx (the service is having trouble)."""
    if response.status == 429 or response.status >= 500:
        why = "rate limited" if response.status == 429 else "the service is unavailable"
        raise TemporaryError(
            f"{where} answered {response.status} {answer_text(response, secrets, 200)!r} "
            f"({why}); retrying",
            delay=retry_after(response),
        )


def answer_text(response: HttpResponse, secrets: Iterable[str], limit: int) -> str:
    """The response body as text, scrubbed of secrets and capped at `limit` bytes."""
    text = response.body.decode("utf-8", errors="replace").strip()
    shown: str = scrub(text, secrets)
    return truncate_text(shown, limit)
