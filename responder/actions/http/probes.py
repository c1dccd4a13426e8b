"""The `http.probe` action: a GET/HEAD health probe judged by status and JSON values.

A probe reports health, so a bad answer is a normal result, never retried:
- ok = the status is in `expect_status` (default [200]) and every `expect_json` check holds;
- any other status (3xx, 4xx, 5xx included) -> StepResult(ok=False) with the failed checks;
- transport errors and timeouts -> TemporaryError (raised by the HttpApi adapter): the probe
  did not get an answer, which says nothing about health yet.

`expect_json` checks are `{path: "components.db.status", equals: "UP"}`: the dotted path walks
objects by key and arrays by index; `equals` is compared as JSON (`true` is not `1`).

Credentials: `auth_header_env` names an environment variable holding the whole Authorization
header value (`Basic ...`, `Bearer ...`); the value is read at run time, is never in rule text
and never in outputs. Variables starting with `RESPONDER_` are refused (responder's own secrets).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.calls import (
    JsonCheck,
    auth_headers,
    check_env_name,
    describe_headers,
    json_equal,
    parse_json_body,
    status_codes,
    upper_method,
    value_at,
)
from responder.core.host_allowlists import check_url
from responder.core.redaction import redact, truncate
from responder.models.http import HttpRequest
from responder.models.plans import ActionClass

_MAX_BODY = 1024 * 1024


class ProbeParams(BaseModel):
    """Parameters of `http.probe` (the `with:` block of a step)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: tuple[int, ...] = Field(default=(200,), min_length=1, max_length=20)
    expect_json: tuple[JsonCheck, ...] = Field(default=(), max_length=32)
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    auth_header_env: str | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return upper_method(value)

    @field_validator("expect_status")
    @classmethod
    def _status_range(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        status_codes(value)
        return value

    @field_validator("auth_header_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return None if value is None else check_env_name(value)

    @model_validator(mode="after")
    def _json_needs_body(self) -> ProbeParams:
        if self.expect_json and self.method == "HEAD":
            raise ValueError("expect_json needs a body: use method GET")
        return self


def _evaluate(checks: tuple[JsonCheck, ...], body: Any, parsed: bool) -> list[dict[str, Any]]:
    results = []
    for check in checks:
        found, actual = value_at(body, check.path) if parsed else (False, None)
        entry: dict[str, Any] = {"path": check.path, "expected": check.equals}
        if not found:
            reason = "missing" if parsed else "body is not JSON"
            entry.update(actual=None, ok=False, reason=reason)
        else:
            entry.update(actual=actual, ok=json_equal(actual, check.equals))
        results.append(entry)
    return results


def _check(params: ProbeParams, allowed_hosts: tuple[str, ...]) -> None:
    check_url(params.url, allowed_hosts)


async def _run(params: ProbeParams, ctx: ActionContext) -> StepResult:
    check_url(params.url, ctx.allowed_hosts)  # again: `steps.*` URLs are rendered at run time
    headers = {"Accept": "application/json", **auth_headers(params.auth_header_env)}
    response = await ctx.http.send(
        HttpRequest(
            method=params.method,
            url=params.url,
            headers=headers,
            timeout_seconds=params.timeout_seconds,
            max_response_bytes=_MAX_BODY,
        )
    )
    text = response.body.decode("utf-8", errors="replace")
    body = None if response.truncated else parse_json_body(text)
    parsed = body is not None or text.strip() == "null"
    checks = _evaluate(params.expect_json, body, parsed)
    failed = [c["path"] for c in checks if not c["ok"]]
    status_ok = response.status in params.expect_status
    if not status_ok:
        failed.insert(0, "status")
    elapsed_ms = round(response.elapsed_seconds * 1000)
    summary = f"{params.method} {redact(params.url)} -> {response.status} in {elapsed_ms} ms"
    if not status_ok:
        summary += f" (expected {'/'.join(map(str, params.expect_status))})"
    bad = [c for c in checks if not c["ok"]]
    if checks:
        summary += f"; {len(checks) - len(bad)}/{len(checks)} checks hold"
    if bad:
        first = bad[0]
        shown = redact(first.get("reason") or truncate(first["actual"], 80))
        summary += f"; {first['path']} is {shown} (expected {truncate(first['expected'], 80)})"
    output = {
        "status": response.status,
        "elapsed_ms": elapsed_ms,
        "checks": redact(checks),
        "failed_checks": failed,
    }
    capped: dict[str, Any] = truncate(output, ctx.output_max_bytes)
    return StepResult(ok=not failed, summary=summary, output=capped)


def _describe(params: ProbeParams) -> dict[str, Any]:
    return {
        "method": params.method,
        "url": redact(params.url),
        "headers": {"Accept": "application/json", **describe_headers(params.auth_header_env)},
        "expect_status": list(params.expect_status),
        "expect_json": [check.model_dump() for check in params.expect_json],
    }


HTTP_PROBE: ActionSpec[ProbeParams] = ActionSpec(
    name="http.probe",
    params_model=ProbeParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=30),
    blast_radius="one GET or HEAD request to an allowlisted host; reads only",
    description="Probe a health endpoint: check the status and JSON values (e.g. status=UP).",
    run=_run,
    describe=_describe,
    check=_check,
)
