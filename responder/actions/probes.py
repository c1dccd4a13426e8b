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

import os
import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from responder.actions.http import parse_json_body, status_codes, upper_method
from responder.actions.registry import ActionContext, ActionSpec, StepResult
from responder.core.allowlists import check_url
from responder.core.redaction import REDACTED, redact, truncate
from responder.errors import PermanentError
from responder.models.http import HttpRequest
from responder.models.plans import ActionClass

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_JSON_PATH = re.compile(r"^[A-Za-z0-9_@$:-]{1,128}(\.[A-Za-z0-9_@$:-]{1,128}){0,31}$")
_MAX_BODY = 1024 * 1024
_MISSING = object()


def validate_auth_env(value: str | None) -> str | None:
    """Validate an `auth_header_env` parameter (a variable name, not a value)."""
    if value is None:
        return None
    if not _ENV_NAME.match(value):
        raise ValueError("must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
    if value.upper().startswith("RESPONDER_"):
        raise ValueError("RESPONDER_* variables hold responder's own settings and secrets")
    return value


def auth_headers(env_name: str | None) -> dict[str, str]:
    """`{"Authorization": <value of env_name>}`, or {} without a name.

    Raises PermanentError (never showing the value) when the variable is unset, empty or
    holds control characters.
    """
    if env_name is None:
        return {}
    value = os.environ.get(env_name, "")
    if not value.strip():
        raise PermanentError(
            f"environment variable {env_name} (auth_header_env) is unset or empty; set it to "
            "the whole Authorization header value (e.g. from a Secret) in responder's Deployment"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise PermanentError(
            f"environment variable {env_name} (auth_header_env) contains control characters; "
            "store the header value on one line"
        )
    return {"Authorization": value}


def describe_headers(env_name: str | None) -> dict[str, str]:
    """The headers as describe() shows them: the Authorization value redacted."""
    return {"Authorization": f"{REDACTED} (from ${env_name})"} if env_name else {}


class JsonCheck(BaseModel):
    """One `expect_json` entry: the value at `path` must equal `equals`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(max_length=512)
    equals: Any

    @field_validator("path")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not _JSON_PATH.match(value):
            raise ValueError("write a dotted path like status or components.db.status")
        return value


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
        return validate_auth_env(value)

    @model_validator(mode="after")
    def _json_needs_body(self) -> ProbeParams:
        if self.expect_json and self.method == "HEAD":
            raise ValueError("expect_json needs a body: use method GET")
        return self


def _lookup(document: Any, path: str) -> Any:
    """The value at a dotted `path`, or `_MISSING`."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def value_at(document: Any, path: str) -> tuple[bool, Any]:
    """(found, value) at a dotted `path` of a parsed JSON document (see `JsonCheck`)."""
    value = _lookup(document, path)
    return (False, None) if value is _MISSING else (True, value)


def json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON means it: booleans are not numbers, 1 equals 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    return type(left) is type(right) and left == right


def _evaluate(checks: tuple[JsonCheck, ...], body: Any, parsed: bool) -> list[dict[str, Any]]:
    results = []
    for check in checks:
        actual = _lookup(body, check.path) if parsed else _MISSING
        entry: dict[str, Any] = {"path": check.path, "expected": check.equals}
        if actual is _MISSING:
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
    fitted: dict[str, Any] = truncate(output, ctx.output_max_bytes)
    return StepResult(ok=not failed, summary=summary, output=fitted)


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
