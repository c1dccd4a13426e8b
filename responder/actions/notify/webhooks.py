"""The `notify.webhook` action: one JSON object POSTed to an allowlisted receiver.

`notify.webhook` POSTs one JSON object to an allowlisted URL with an `Idempotency-Key:
responder:<run_id>:<step_id>` header. Any 2xx -> ok; 429 and 5xx -> TemporaryError (after a
numeric `Retry-After`, at most 60 s; the receiver may see the request twice and can use the
idempotency key to drop the repeat); any other answer -> StepResult(ok=False). A header value
`env:NAME` is read from environment variable NAME when the step runs and never shown.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.calls import RESERVED_HEADERS, check_env_name, plain_json, safe_headers
from responder.actions.notify.sending import (
    answer_text,
    json_post,
    raise_if_retryable,
    read_env_secret,
)
from responder.core.host_allowlists import check_url
from responder.core.redaction import redact, truncate
from responder.models.plans import ActionClass

ENV_PREFIX = "env:"
_OWN_HEADERS = RESERVED_HEADERS | {"content-type", "idempotency-key"}
_MAX_SHOWN_BODY = 4096


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
            safe_headers({name: item}, reserved=_OWN_HEADERS)
            if item.startswith(ENV_PREFIX):
                check_env_name(item[len(ENV_PREFIX) :])
        return value

    @field_validator("json_body")
    @classmethod
    def _plain_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        return dict(plain_json(value))


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
    sent = {"headers": {"Idempotency-Key": headers["Idempotency-Key"]}}  # never the secrets
    return StepResult(
        ok=ok, summary=summary, output=truncate(output, ctx.output_max_bytes), sent=sent
    )


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
