"""The `notify.webhook` action, and the helpers every `notify.*` action shares.

Notifications are diagnostic: they change nothing in the system under repair. Their secrets
(a Slack webhook URL, a PagerDuty routing key, a header value) live in environment variables
named by the rule, never in rule text, and are read only when the step runs. A secret never
reaches describe(), outputs, errors or summaries: values read from the environment are also
scrubbed, verbatim, from whatever the receiver answers.

Environment variable names must look like `SLACK_WEBHOOK_URL` (letters, digits, `_`) and may
not start with `RESPONDER_`: responder's own settings (webhook token, database URL) are never
sent anywhere.

`notify.webhook` POSTs one JSON object to an allowlisted URL with an `Idempotency-Key:
responder:<run_id>:<step_id>` header. Any 2xx -> ok; 429 and 5xx -> TemporaryError (after a
numeric `Retry-After`, at most 60 s; the receiver may see the request twice and can use the
idempotency key to drop the repeat); any other answer -> StepResult(ok=False).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.registry import ActionContext, ActionSpec, StepResult
from responder.core.allowlists import check_url, parse_target
from responder.core.redaction import REDACTED, redact, truncate, truncate_text
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from responder.models.http import HttpRequest, HttpResponse
from responder.models.plans import ActionClass

ENV_PREFIX = "env:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_OWN_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "idempotency-key"}
)
_MAX_RETRY_AFTER = 60.0
_MAX_SHOWN_BODY = 4096


def check_env_name(name: str) -> str:
    """`name` if it may name a secret's environment variable; ValueError saying why not."""
    if not _ENV_NAME.match(name):
        raise ValueError(
            f"invalid environment variable name {name[:64]!r}; use letters, digits and '_'"
        )
    if name.upper().startswith("RESPONDER_"):
        raise ValueError(f"{name!r}: responder's own settings (RESPONDER_*) cannot be sent")
    return name


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


def retry_after(response: HttpResponse, default: float = 2.0) -> float:
    """A numeric `Retry-After` in seconds (at most 60), else `default`."""
    raw = response.headers.get("retry-after", "").strip()
    return min(float(raw), _MAX_RETRY_AFTER) if raw.isdigit() else default


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


def json_object(value: Any) -> Any:
    """`value` if it is plain JSON (no NaN, dates or objects); ValueError otherwise."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not plain JSON ({exc})") from None
    return value


class WebhookParams(BaseModel):
    """Parameters of `notify.webhook` (the `with:` block of a step)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True
    )

    url: str = Field(min_length=1, max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    json_body: dict[str, Any] = Field(alias="json")
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("headers")
    @classmethod
    def _safe_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name[:64]!r}")
            if name.lower() in _OWN_HEADERS:
                raise ValueError(f"header {name!r} is set by responder and may not be given")
            if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in item):
                raise ValueError(f"header {name!r} contains control characters (CR/LF)")
            if item.startswith(ENV_PREFIX):
                check_env_name(item[len(ENV_PREFIX) :])
        return value

    @field_validator("json_body")
    @classmethod
    def _plain_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        return dict(json_object(value))


def _env_name(value: str) -> str | None:
    return value[len(ENV_PREFIX) :] if value.startswith(ENV_PREFIX) else None


def _idempotency_key(run_id: str, step_id: str) -> str:
    return f"responder:{run_id}:{step_id}"


def _check_webhook(params: WebhookParams, allowed_hosts: tuple[str, ...]) -> None:
    check_url(params.url, allowed_hosts)


async def _run_webhook(params: WebhookParams, ctx: ActionContext) -> StepResult:
    check_url(params.url, ctx.allowed_hosts)  # again: `steps.*` URLs are rendered at run time
    headers: dict[str, str] = {}
    secrets: list[str] = []
    for name, value in params.headers.items():
        env = _env_name(value)
        if env is not None:
            value = read_env_secret(env)
            secrets.append(value)
        headers[name] = value
    headers["Idempotency-Key"] = _idempotency_key(ctx.run_id, ctx.step_id)
    response = await ctx.http.send(
        json_post(params.url, params.json_body, params.timeout_seconds, headers)
    )
    where = f"POST {redact(params.url)}"
    raise_if_retryable(response, where, secrets)
    ok = 200 <= response.status < 300
    summary = f"{where} -> {response.status}" + ("" if ok else " (expected 2xx)")
    output = {
        "status": response.status,
        "body": answer_text(response, secrets, min(_MAX_SHOWN_BODY, ctx.output_max_bytes)),
    }
    return StepResult(ok=ok, summary=summary, output=truncate(output, ctx.output_max_bytes))


def _describe_webhook(params: WebhookParams) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in params.headers.items():
        env = _env_name(value)
        headers[name] = f"[from env {env}]" if env is not None else redact({name: value})[name]
    headers["Content-Type"] = "application/json"
    headers["Idempotency-Key"] = _idempotency_key("<run_id>", "<step_id>")
    return {
        "method": "POST",
        "url": redact(params.url),
        "headers": headers,
        "json": redact(params.json_body),
    }


NOTIFY_WEBHOOK: ActionSpec[WebhookParams] = ActionSpec(
    name="notify.webhook",
    params_model=WebhookParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=30),
    blast_radius="one JSON POST to an allowlisted receiver; changes nothing under repair",
    description="POST a JSON object to a webhook; header values may come from env (env:NAME).",
    run=_run_webhook,
    describe=_describe_webhook,
    check=_check_webhook,
    best_effort=True,
)
