"""The `http.request` action: one diagnostic HTTP call to an allowlisted host.

Outcome rules:
- status in `expect_status` (default: any 2xx) -> ok; any other answer -> StepResult(ok=False),
  including 3xx (redirects are never followed; `headers.location` shows where it pointed);
- 502/503/504 on GET/HEAD -> TemporaryError (a gateway or overloaded backend; the read is safe
  to repeat), honouring a numeric `Retry-After` up to 60 s. On POST/PUT/PATCH/DELETE these are
  a plain failure, never retried: the request may have had an effect;
- transport errors and timeouts -> TemporaryError (raised by the HttpApi adapter), except that
  a write whose outcome is unknown (timeout or reset after connecting: OutcomeUnknownError) is
  a plain failure, never retried: repeating it could act twice.

`output.json` is the body parsed as strict JSON (no NaN/Infinity, at most 64 levels deep), or
null when the body is not JSON or was cut by `max_response_bytes`.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.calls import (
    parse_json_body,
    plain_json,
    retry_after,
    safe_headers,
    status_codes,
    upper_method,
)
from responder.core.host_allowlists import check_url
from responder.core.redaction import redact, truncate, truncate_text
from responder.errors import OutcomeUnknownError, TemporaryError
from responder.models.http import HttpRequest, HttpResponse
from responder.models.plans import ActionClass

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

_RETRYABLE = frozenset({502, 503, 504})


class HttpRequestParams(BaseModel):
    """Parameters of `http.request` (the `with:` block of a step)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True
    )

    method: Method = "GET"
    url: str = Field(min_length=1, max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    json_body: Any = Field(default=None, alias="json")
    expect_status: tuple[int, ...] | None = Field(default=None, min_length=1)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_response_bytes: int = Field(default=65536, gt=0, le=10 * 1024 * 1024)

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return upper_method(value)

    @field_validator("headers")
    @classmethod
    def _safe_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return safe_headers(value)

    @field_validator("expect_status")
    @classmethod
    def _status_range(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return status_codes(value)

    @field_validator("json_body")
    @classmethod
    def _serializable(cls, value: Any) -> Any:
        return plain_json(value)

    @model_validator(mode="after")
    def _no_body_on_reads(self) -> HttpRequestParams:
        if self.json_body is not None and self.method in ("GET", "HEAD"):
            raise ValueError(f"a json body cannot be sent with {self.method}")
        return self

    def expects(self, status: int) -> bool:
        """Whether `status` counts as success."""
        if self.expect_status is None:
            return 200 <= status < 300
        return status in self.expect_status


def _check(params: HttpRequestParams, allowed_hosts: tuple[str, ...]) -> None:
    check_url(params.url, allowed_hosts)


def _to_request(params: HttpRequestParams) -> HttpRequest:
    headers = dict(params.headers)
    body: bytes | None = None
    if params.json_body is not None:
        body = json.dumps(params.json_body, separators=(",", ":"), allow_nan=False).encode()
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    return HttpRequest(
        method=params.method,
        url=params.url,
        headers=headers,
        body=body,
        timeout_seconds=params.timeout_seconds,
        max_response_bytes=params.max_response_bytes,
    )


def _decode(response: HttpResponse) -> str:
    content_type = response.headers.get("content-type", "")
    found = re.search(r"charset=\"?([A-Za-z0-9._-]+)", content_type)
    try:
        return response.body.decode(found.group(1) if found else "utf-8", errors="replace")
    except LookupError:  # unknown charset name from the server
        return response.body.decode("utf-8", errors="replace")


def _output(response: HttpResponse, max_bytes: int) -> dict[str, Any]:
    text = _decode(response)
    body = truncate_text(text, max_bytes)
    parsed = None if response.truncated else parse_json_body(text)
    headers = {"content-type": response.headers.get("content-type", "")}
    if 300 <= response.status < 400 and "location" in response.headers:
        headers["location"] = redact(response.headers["location"])
    output = {
        "status": response.status,
        "headers": headers,
        "elapsed_ms": round(response.elapsed_seconds * 1000),
        "truncated": response.truncated or body != text,
        "body": body,
        "json": parsed,
    }
    shown: dict[str, Any] = truncate(output, max_bytes)
    return shown


async def _run(params: HttpRequestParams, ctx: ActionContext) -> StepResult:
    check_url(params.url, ctx.allowed_hosts)  # again: `steps.*` URLs are rendered at run time
    where = f"{params.method} {redact(params.url)}"
    try:
        response = await ctx.http.send(_to_request(params))
    except OutcomeUnknownError as exc:
        if params.method in ("GET", "HEAD"):
            raise
        return StepResult(
            ok=False,
            summary=f"{where}: outcome unknown, not retried (it may have acted): {exc}",
            output={"outcome": "unknown", "error": str(exc)},
        )
    if response.status in _RETRYABLE and params.method in ("GET", "HEAD"):
        raise TemporaryError(
            f"{where} answered {response.status}; the service or its gateway is unavailable, "
            "retrying",
            delay=retry_after(response),
        )
    ok = params.expects(response.status)
    elapsed_ms = round(response.elapsed_seconds * 1000)
    summary = f"{where} -> {response.status} in {elapsed_ms} ms"
    if not ok:
        expected = (
            "2xx" if params.expect_status is None else "/".join(map(str, params.expect_status))
        )
        summary += f" (expected {expected})"
    return StepResult(ok=ok, summary=summary, output=_output(response, ctx.output_max_bytes))


def _describe(params: HttpRequestParams) -> dict[str, Any]:
    request = _to_request(params)
    return {
        "method": request.method,
        "url": redact(request.url),
        "headers": redact(request.headers),
        "json": redact(params.json_body),
    }


def _classify(params: HttpRequestParams) -> ActionClass:
    """GET and HEAD only read; any other method may change the target: containment."""
    return ActionClass.DIAGNOSTIC if params.method in ("GET", "HEAD") else ActionClass.CONTAINMENT


HTTP_REQUEST: ActionSpec[HttpRequestParams] = ActionSpec(
    name="http.request",
    params_model=HttpRequestParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=30),
    blast_radius="one HTTP request to an allowlisted host; read-only unless the method writes",
    description="Send one HTTP request and record status, content type, body and JSON.",
    run=_run,
    describe=_describe,
    check=_check,
    classify=_classify,
)
