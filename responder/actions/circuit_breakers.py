"""Resilience4j circuit-breaker containment over the Spring Boot actuator (verified).

`circuit_breaker.reset` posts `{"updateState": "CLOSE"}` and expects CLOSED;
`circuit_breaker.force_open` posts `{"updateState": "FORCE_OPEN"}` and expects FORCED_OPEN.
One run is: GET `{base_url}{actuator_path}/circuitbreakers`; refuse a name that is not listed
(the actuator would silently CREATE a breaker with that name); skip the POST when the breaker
already reads the expected state; POST `.../circuitbreakers/{name}`; GET again to verify.

Both list shapes are parsed: v2 `{"circuitBreakers": {name: {..., "state": ...}}}` gives
states (verified True/False); v1.6-1.7 `{"circuitBreakers": [names]}` gives names only, so the
POST is always sent and `verified` stays None (the POST reply's `currentState` is reported).
5xx and timeouts -> TemporaryError (both updates are idempotent); 4xx -> PermanentError with
the fix; a read-back that disagrees -> StepResult(ok=False, verified=False).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.base import ActionContext, ActionSpec, Observation, StepResult
from responder.actions.calls import (
    auth_headers,
    check_env_name,
    describe_headers,
    fitted,
    parse_json_body,
)
from responder.core.host_allowlists import check_url, plain_base_url
from responder.core.redaction import redact
from responder.errors import PermanentError, TemporaryError
from responder.models.http import HttpRequest, HttpResponse
from responder.models.plans import ActionClass
from responder.models.runs import StepRecord

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_SEGMENT = r"/[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,63}"
_ACTUATOR_PATH = re.compile(rf"^({_SEGMENT}){{1,8}}$")
_MAX_BODY = 1024 * 1024
_EXPOSE = "add circuitbreakers to management.endpoints.web.exposure.include"

Update = Literal["CLOSE", "FORCE_OPEN"]
_EXPECTED: dict[str, str] = {"CLOSE": "CLOSED", "FORCE_OPEN": "FORCED_OPEN"}


class CircuitBreakerParams(BaseModel):
    """Parameters of `circuit_breaker.reset` and `circuit_breaker.force_open`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(min_length=1, max_length=2048)
    name: str
    actuator_path: str = "/actuator"
    auth_header_env: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("base_url")
    @classmethod
    def _plain_base(cls, value: str) -> str:
        return plain_base_url(value)

    @field_validator("name")
    @classmethod
    def _breaker_name(cls, value: str) -> str:
        if not _NAME.match(value) or set(value) == {"."}:
            raise ValueError("a breaker name is 1-128 of A-Z a-z 0-9 . _ - (and not only dots)")
        return value

    @field_validator("actuator_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _ACTUATOR_PATH.match(value):
            raise ValueError("write a path like /actuator or /management (no '..', no query)")
        return value

    @field_validator("auth_header_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return None if value is None else check_env_name(value)

    @property
    def list_url(self) -> str:
        """The actuator's breaker list."""
        return f"{self.base_url}{self.actuator_path}/circuitbreakers"

    @property
    def breaker_url(self) -> str:
        """Where the state change is posted."""
        return f"{self.list_url}/{self.name}"


def _fail_on_status(response: HttpResponse, what: str, *, posting: bool) -> None:
    status = response.status
    if status >= 500:
        raise TemporaryError(f"{what} answered {status}; the service is unavailable, retrying")
    if status in (401, 403):
        raise PermanentError(
            f"{what} answered {status}: check the credentials in auth_header_env and that the "
            "user may use the actuator"
        )
    if status in (404, 405) and posting:
        raise PermanentError(
            f"{what} answered {status}: the state-change POST is not available (Resilience4j "
            "older than 1.6.0, or Spring Boot >= 3.4 with read-only endpoint access: set "
            "management.endpoint.circuitbreakers.access=unrestricted)"
        )
    if status == 404:
        raise PermanentError(f"{what} answered 404: actuator endpoint not exposed: {_EXPOSE}")
    if not 200 <= status < 300:
        raise PermanentError(f"{what} answered {status}; expected 200 from the actuator")


def _states(response: HttpResponse, what: str) -> tuple[str, dict[str, str | None]]:
    """("v2"|"v1", breaker name -> state); v1 lists names only, so every state is None."""
    text = response.body.decode("utf-8", "replace")
    document = None if response.truncated else parse_json_body(text)
    breakers = document.get("circuitBreakers") if isinstance(document, dict) else None
    if isinstance(breakers, list) and all(isinstance(n, str) for n in breakers):
        return "v1", dict.fromkeys(breakers)
    if isinstance(breakers, dict):
        return "v2", {
            str(name): str(info["state"]) if isinstance(info, dict) and "state" in info else None
            for name, info in breakers.items()
        }
    raise PermanentError(
        f"{what} is not a Resilience4j circuitbreakers reply (no circuitBreakers map or list); "
        "check base_url and actuator_path"
    )


async def _send(
    params: CircuitBreakerParams, ctx: ActionContext, method: str, body: bytes | None = None
) -> HttpResponse:
    url = params.breaker_url if method == "POST" else params.list_url
    headers = {"Accept": "application/json", **auth_headers(params.auth_header_env)}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = HttpRequest(
        method=method,
        url=url,
        headers=headers,
        body=body,
        timeout_seconds=params.timeout_seconds,
        max_response_bytes=_MAX_BODY,
    )
    response = await ctx.http.send(request)
    _fail_on_status(response, f"{method} {redact(url)}", posting=method == "POST")
    return response


async def _list(
    params: CircuitBreakerParams, ctx: ActionContext
) -> tuple[str, dict[str, str | None]]:
    response = await _send(params, ctx, "GET")
    return _states(response, f"GET {redact(params.list_url)}")


def _refuse_unknown(params: CircuitBreakerParams, states: dict[str, str | None]) -> NoReturn:
    known = sorted(states)
    shown = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
    raise PermanentError(
        f"breaker {params.name!r} is not registered at {redact(params.list_url)} "
        f"(known: {shown or 'none'}); not posting: the actuator would silently create a new "
        "breaker with that name. Fix the name parameter or the alert label"
    )


def _reply(response: HttpResponse) -> tuple[str | None, str | None]:
    """(message, currentState) of the POST reply, when it has them."""
    document = parse_json_body(response.body.decode("utf-8", "replace"))
    if not isinstance(document, dict):
        return None, None
    message, current = document.get("message"), document.get("currentState")
    return (
        str(message) if message is not None else None,
        str(current) if current is not None else None,
    )


async def _change(params: CircuitBreakerParams, ctx: ActionContext, update: Update) -> StepResult:
    check_url(params.list_url, ctx.allowed_hosts)  # again: rendered at run time
    expected = _EXPECTED[update]
    shape, before_states = await _list(params, ctx)
    if params.name not in before_states:
        _refuse_unknown(params, before_states)
    before = before_states[params.name]
    output: dict[str, Any] = {
        "breaker": params.name,
        "shape": shape,
        "update_state": update,
        "before": before,
        "after": before,
        "posted": False,
        "message": None,
    }
    if before == expected:
        output["note"] = f"already {expected}; no POST sent"
        summary = f"breaker {params.name} already {expected}; no POST sent"
        return StepResult(ok=True, summary=summary, output=output, verified=True)
    body = json.dumps({"updateState": update}, separators=(",", ":")).encode()
    reply = await _send(params, ctx, "POST", body)
    message, current = _reply(reply)
    output.update(posted=True, message=message, reply_state=current)
    _, after_states = await _list(params, ctx)
    after = after_states.get(params.name)
    output["after"] = after
    if shape == "v1":
        ok = current in (None, expected)
        output["note"] = (
            "v1 actuator lists names only: state not readable, not verified; "
            f"the POST reply said currentState={current}"
        )
        summary = f"breaker {params.name}: {update} posted (reply {current}; not verifiable)"
        return fitted(ctx, ok, summary, output, None)
    if after == expected:
        summary = f"breaker {params.name}: {before} -> {after} (verified)"
        return fitted(ctx, True, summary, output, True)
    summary = (
        f"breaker {params.name}: {update} answered {reply.status} but it reads {after} "
        f"(expected {expected})"
    )
    return fitted(ctx, False, summary, output, False)


async def _reset(params: CircuitBreakerParams, ctx: ActionContext) -> StepResult:
    return await _change(params, ctx, "CLOSE")


async def _force_open(params: CircuitBreakerParams, ctx: ActionContext) -> StepResult:
    return await _change(params, ctx, "FORCE_OPEN")


def _observer(
    update: Update,
) -> Callable[[CircuitBreakerParams, ActionContext, StepRecord], Awaitable[Observation]]:
    async def observe(
        params: CircuitBreakerParams, ctx: ActionContext, step: StepRecord
    ) -> Observation:
        """The breaker's state now: the expected one -> present; another -> absent; a v1
        actuator (names only) or an unlisted breaker -> unknown."""
        check_url(params.list_url, ctx.allowed_hosts)
        shape, states = await _list(params, ctx)
        state = states.get(params.name)
        if shape == "v1" or state is None:
            return Observation.UNKNOWN
        return Observation.PRESENT if state == _EXPECTED[update] else Observation.ABSENT

    return observe


def _describer(update: Update) -> Callable[[CircuitBreakerParams], dict[str, Any]]:
    def describe(params: CircuitBreakerParams) -> dict[str, Any]:
        headers = {"Accept": "application/json", **describe_headers(params.auth_header_env)}
        read = {"method": "GET", "url": redact(params.list_url), "headers": headers}
        post_headers = {**headers, "Content-Type": "application/json"}
        return {
            "method": "POST",
            "url": redact(params.breaker_url),
            "headers": post_headers,
            "json": {"updateState": update},
            "before": read,
            "verify": {**read, "expect_state": _EXPECTED[update]},
        }

    return describe


def _check(params: CircuitBreakerParams, allowed_hosts: tuple[str, ...]) -> None:
    check_url(params.list_url, allowed_hosts)


_BLAST = (
    "one Resilience4j breaker in one service (allowlisted host); an unknown name is refused "
    "before any POST"
)

CIRCUIT_BREAKER_RESET: ActionSpec[CircuitBreakerParams] = ActionSpec(
    name="circuit_breaker.reset",
    params_model=CircuitBreakerParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=60),
    blast_radius=_BLAST + "; CLOSE lets traffic through to the protected dependency again",
    description="Close a Resilience4j circuit breaker via the actuator and verify it reads CLOSED.",
    run=_reset,
    describe=_describer("CLOSE"),
    check=_check,
    observe=_observer("CLOSE"),
    idempotent=True,
)

CIRCUIT_BREAKER_FORCE_OPEN: ActionSpec[CircuitBreakerParams] = ActionSpec(
    name="circuit_breaker.force_open",
    params_model=CircuitBreakerParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=60),
    blast_radius=_BLAST
    + "; FORCED_OPEN rejects every call to the dependency until a reset (it is sticky)",
    description="Force a Resilience4j circuit breaker open and verify it reads FORCED_OPEN.",
    run=_force_open,
    describe=_describer("FORCE_OPEN"),
    check=_check,
    observe=_observer("FORCE_OPEN"),
    idempotent=True,
)
