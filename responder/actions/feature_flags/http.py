"""`feature_flag.disable`/`enable` with `provider: http`: a home-grown config service.

The rule spells the write: `method` (POST, PUT, PATCH, DELETE), `url`, optional `headers`,
`json` body (rendered from the alert like any `with:` value) and `expect_status` (default any
2xx). With a `verify` block (`url` defaulting to the write URL, a dotted JSON `path`, the
value it must `equal`, compared as `http.probe` does):
1. GET the verify URL: the value already equal -> nothing is written (verified);
2. send the write;
3. GET again: the value must equal -> verified, else ok=false, verified=false.
Without `verify` the write is sent once and the result says it is not verified.

Retries: reads are retried on 5xx/timeouts. A write answering 5xx or timing out is retried
only with `verify` (the retry reads first, so a write that did land is not repeated); without
it, the step fails permanently rather than risk a second, non-idempotent write.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from responder.actions.base import ActionContext, StepResult
from responder.actions.calls import (
    JsonCheck,
    auth_headers,
    check_env_name,
    describe_headers,
    fitted,
    json_equal,
    plain_json,
    safe_headers,
    status_codes,
    upper_method,
    value_at,
)
from responder.actions.feature_flags.services import (
    fail_common,
    json_document,
    send,
    server_message,
)
from responder.core.host_allowlists import check_url
from responder.core.redaction import redact, truncate_text
from responder.errors import PermanentError, TemporaryError

_AUTH_HINT = "check the credentials in auth_header_env"
MISSING = "(missing)"  # the verify path is not in the reply


class HttpVerify(JsonCheck):
    """Read-back of the flag: GET `url` and compare the value at `path` with `equals`."""

    url: str | None = Field(default=None, min_length=1, max_length=2048)


class HttpFlagParams(BaseModel):
    """`with:` of a feature-flag step for a generic HTTP config service."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True
    )

    provider: Literal["http"]
    method: Literal["POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str = Field(min_length=1, max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    auth_header_env: str | None = None
    json_body: Any = Field(default=None, alias="json")
    expect_status: tuple[int, ...] | None = Field(default=None, min_length=1, max_length=20)
    verify: HttpVerify | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return upper_method(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        if any(name.lower() == "authorization" for name in value):
            raise ValueError("put the Authorization value in an env var named by auth_header_env")
        return safe_headers(value)

    @field_validator("auth_header_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return None if value is None else check_env_name(value)

    @field_validator("expect_status")
    @classmethod
    def _status_range(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return status_codes(value)

    @model_validator(mode="after")
    def _plain_json(self) -> HttpFlagParams:
        plain_json(self.json_body)
        return self

    @property
    def verify_url(self) -> str | None:
        """Where the read-back goes, when there is one."""
        if self.verify is None:
            return None
        return self.verify.url or self.url

    def expects(self, status: int) -> bool:
        """Whether the write's status counts as success."""
        if self.expect_status is None:
            return 200 <= status < 300
        return status in self.expect_status


def _headers(params: HttpFlagParams, *, shown: bool) -> dict[str, str]:
    given = redact(params.headers) if shown else params.headers
    auth = (describe_headers if shown else auth_headers)(params.auth_header_env)
    headers = {"Accept": "application/json", **given, **auth}
    if params.json_body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    return headers


async def _read(params: HttpFlagParams, verify: HttpVerify, ctx: ActionContext) -> Any:
    """The value at `verify.path` now (`MISSING` when the path is not there)."""
    url = params.verify_url or params.url
    headers = {"Accept": "application/json", **auth_headers(params.auth_header_env)}
    response = await send(ctx, "GET", url, headers, params.timeout_seconds)
    what = f"GET {redact(url)}"
    fail_common(response, what, _AUTH_HINT)
    if not 200 <= response.status < 300:
        raise PermanentError(f"{what} answered {response.status}: {server_message(response)}")
    found, value = value_at(json_document(response, what), verify.path)
    return value if found else MISSING


def _matches(value: Any, verify: HttpVerify) -> bool:
    return value is not MISSING and json_equal(value, verify.equals)


def _show(value: Any) -> str:
    """A read-back value for a summary line: JSON, redacted, at most 80 bytes."""
    text = value if value is MISSING else json.dumps(value, ensure_ascii=False, default=str)
    return truncate_text(redact(text), 80)


async def _write(params: HttpFlagParams, ctx: ActionContext) -> tuple[int, str]:
    body = None
    if params.json_body is not None:
        body = json.dumps(params.json_body, separators=(",", ":"), allow_nan=False).encode()
    what = f"{params.method} {redact(params.url)}"
    headers = _headers(params, shown=False)
    try:
        reply = await send(ctx, params.method, params.url, headers, params.timeout_seconds, body)
    except TemporaryError as exc:
        if params.verify is not None:
            raise
        raise PermanentError(
            f"{what}: {exc}; not retried: without a verify block a retry could apply the "
            "change twice. Add verify: {path, equals} to make it safe to retry"
        ) from exc
    if reply.status in (401, 403, 429) or (reply.status >= 500 and params.verify is not None):
        fail_common(reply, what, _AUTH_HINT)  # 429: refused, so not applied: safe to retry
    return reply.status, server_message(reply)


async def switch(params: HttpFlagParams, ctx: ActionContext, on: bool) -> StepResult:
    """Send the configured write (skipped when the read-back already matches), then verify."""
    check_url(params.url, ctx.allowed_hosts)  # again: rendered at run time
    if params.verify_url is not None:
        check_url(params.verify_url, ctx.allowed_hosts)
    verify = params.verify
    where = f"{params.method} {redact(params.url)}"
    output: dict[str, Any] = {"provider": "http", "wanted": "on" if on else "off", "sent": False}
    if verify is not None:
        before = await _read(params, verify, ctx)
        output.update(path=verify.path, expected=verify.equals, before=before, after=before)
        if _matches(before, verify):
            output["note"] = "the read-back already matches; nothing sent"
            summary = f"{verify.path} already {_show(before)}; {where} not sent"
            return fitted(ctx, True, summary, output, True)
    status, message = await _write(params, ctx)
    output.update(sent=True, status=status, reply=message)
    if not params.expects(status):
        return fitted(ctx, False, f"{where} -> {status}: {message}", output, None)
    if verify is None:
        output["note"] = "no verify block: the effect was not read back"
        return fitted(ctx, True, f"{where} -> {status} (not verified)", output, None)
    after = await _read(params, verify, ctx)
    output["after"] = after
    if _matches(after, verify):
        return fitted(ctx, True, f"{where} -> {status}; {verify.path} verified", output, True)
    summary = f"{where} -> {status} but {verify.path} is {_show(after)}"
    return fitted(ctx, False, summary + f" (expected {_show(verify.equals)})", output, False)


def describe(params: HttpFlagParams, on: bool) -> dict[str, Any]:
    """The write it would send and the reads around it (secrets redacted)."""
    shown: dict[str, Any] = {
        "provider": "http",
        "method": params.method,
        "url": redact(params.url),
        "headers": _headers(params, shown=True),
        "json": redact(params.json_body),
        "expect_status": list(params.expect_status) if params.expect_status else "2xx",
    }
    if params.verify is not None:
        auth = describe_headers(params.auth_header_env)
        read = {
            "method": "GET",
            "url": redact(params.verify_url),
            "headers": {"Accept": "application/json", **auth},
        }
        expect = {params.verify.path: redact(params.verify.equals)}
        shown.update(before=read, verify={**read, "expect": expect})
    return shown


def check(params: HttpFlagParams, allowed_hosts: tuple[str, ...]) -> None:
    """Plan time: the write and verify hosts must be allowlisted."""
    check_url(params.url, allowed_hosts)
    if params.verify_url is not None:
        check_url(params.verify_url, allowed_hosts)
