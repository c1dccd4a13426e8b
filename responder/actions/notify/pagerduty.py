"""The `notify.pagerduty` action: one PagerDuty Events API v2 event (trigger/ack/resolve).

The routing key (the 32-character integration key) is the credential: it is read at run time
from the environment variable named by `routing_key_env` and never shown (describe() says
`[from env NAME]`). The URL defaults to `https://events.pagerduty.com/v2/enqueue` and must be
in RESPONDER_HTTP_ALLOWED_HOSTS like any other.

`dedup_key` ties events to one PagerDuty alert: acknowledge/resolve act on the alert opened by
a trigger with the same key (and routing key). The action only knows the run, so the default
is `responder:<rule_id>:<run_id>`, which pairs nothing across runs; rules that trigger on
firing and resolve on resolved should template `dedup_key: "responder:{{ alert.fingerprint }}"`.

Outcome: 2xx (PagerDuty answers 202) -> ok, with the returned `dedup_key` in the output. 400
(invalid event) -> StepResult(ok=False) with PagerDuty's `errors`; 429 and 5xx ->
TemporaryError (the same dedup_key makes a repeat harmless); other answers -> ok=False.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.calls import check_env_name, plain_json
from responder.actions.notify.sending import (
    answer_text,
    json_post,
    raise_if_retryable,
    read_env_secret,
    scrub,
)
from responder.core.host_allowlists import check_url
from responder.core.redaction import redact, truncate
from responder.errors import PermanentError
from responder.models.http import HttpResponse
from responder.models.plans import ActionClass

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
_ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")
_MAX_DEDUP_KEY = 255
_MAX_DETAILS_BYTES = 256 * 1024  # the whole event must stay under PagerDuty's 512 KB


class PagerDutyParams(BaseModel):
    """Parameters of `notify.pagerduty` (the `with:` block of a step)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True
    )

    routing_key_env: str = Field(min_length=1, max_length=128)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    summary: str | None = Field(default=None, min_length=1, max_length=1024)
    severity: Literal["critical", "error", "warning", "info"] | None = None
    source: str = Field(default="responder", min_length=1, max_length=255)
    component: str | None = Field(default=None, max_length=255)
    group: str | None = Field(default=None, max_length=255)
    class_: str | None = Field(default=None, alias="class", max_length=255)
    custom_details: dict[str, Any] | None = None
    dedup_key: str | None = Field(default=None, min_length=1, max_length=_MAX_DEDUP_KEY)
    url: str = Field(default=DEFAULT_URL, min_length=1, max_length=2048)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("routing_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return check_env_name(value)

    @field_validator("custom_details")
    @classmethod
    def _plain_details(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        plain_json(value)
        if len(json.dumps(value).encode()) > _MAX_DETAILS_BYTES:
            raise ValueError(f"custom_details is larger than {_MAX_DETAILS_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _trigger_needs_payload(self) -> PagerDutyParams:
        if self.event_action == "trigger":
            missing = [n for n in ("summary", "severity") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"a trigger needs {' and '.join(missing)}")
        return self


def _dedup_key(params: PagerDutyParams, rule_id: str, run_id: str) -> str:
    return params.dedup_key or f"responder:{rule_id}:{run_id}"[:_MAX_DEDUP_KEY]


def build_event(
    params: PagerDutyParams, routing_key: str, rule_id: str, run_id: str
) -> dict[str, Any]:
    """The Events API v2 body; ack/resolve carry no payload."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": params.event_action,
        "dedup_key": _dedup_key(params, rule_id, run_id),
        "client": "responder",
    }
    if params.event_action == "trigger":
        payload: dict[str, Any] = {
            "summary": params.summary,
            "source": params.source,
            "severity": params.severity,
        }
        optional = {
            "component": params.component,
            "group": params.group,
            "class": params.class_,
            "custom_details": params.custom_details,
        }
        payload.update({k: v for k, v in optional.items() if v is not None})
        event["payload"] = payload
    return event


def _check(params: PagerDutyParams, allowed_hosts: tuple[str, ...]) -> None:
    check_url(params.url, allowed_hosts)


def _reply(response: HttpResponse) -> dict[str, Any]:
    try:
        parsed = json.loads(response.body.decode("utf-8", errors="replace"))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def _run(params: PagerDutyParams, ctx: ActionContext) -> StepResult:
    check_url(params.url, ctx.allowed_hosts)
    routing_key = read_env_secret(params.routing_key_env)
    if not _ROUTING_KEY.match(routing_key):
        raise PermanentError(
            f"environment variable {params.routing_key_env} does not hold a PagerDuty "
            "integration key (32 letters and digits); copy the Events API v2 integration key"
        )
    event = build_event(params, routing_key, ctx.rule_id, ctx.run_id)
    response = await ctx.http.send(json_post(params.url, event, params.timeout_seconds))
    where = f"PagerDuty {params.event_action} {event['dedup_key']!r}"
    secrets = (routing_key,)
    raise_if_retryable(response, where, secrets)
    reply: dict[str, Any] = scrub_reply(_reply(response), secrets)
    ok = 200 <= response.status < 300
    output: dict[str, Any] = {
        "status": response.status,
        "dedup_key": reply.get("dedup_key", event["dedup_key"]),
        "message": reply.get("message") or reply.get("status"),
    }
    if ok:
        summary = f"{where} -> {response.status} {output['message']!r}"
    else:
        output["errors"] = reply.get("errors") or [answer_text(response, secrets, 500)]
        summary = f"{where} -> {response.status}: " + "; ".join(map(str, output["errors"]))
    return StepResult(ok=ok, summary=summary[:1000], output=truncate(output, ctx.output_max_bytes))


def scrub_reply(reply: dict[str, Any], secrets: tuple[str, ...]) -> dict[str, Any]:
    """The reply fields we keep, with secrets removed."""
    kept = {k: reply[k] for k in ("status", "message", "dedup_key", "errors") if k in reply}
    cleaned: dict[str, Any] = scrub(kept, secrets)
    return cleaned


def _describe(params: PagerDutyParams) -> dict[str, Any]:
    event = build_event(params, "[REDACTED]", "{rule_id}", "{run_id}")
    event["routing_key"] = f"[from env {params.routing_key_env}]"
    return {
        "method": "POST",
        "url": redact(params.url),
        "headers": {"Content-Type": "application/json"},
        "json": {k: v if k == "routing_key" else redact(v) for k, v in event.items()},
    }


NOTIFY_PAGERDUTY: ActionSpec[PagerDutyParams] = ActionSpec(
    name="notify.pagerduty",
    params_model=PagerDutyParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=30),
    blast_radius="one PagerDuty event (may page on-call); changes nothing under repair",
    description="Send a PagerDuty Events API v2 trigger/acknowledge/resolve (key from env).",
    run=_run,
    describe=_describe,
    check=_check,
    best_effort=True,
)
