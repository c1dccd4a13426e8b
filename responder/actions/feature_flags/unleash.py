"""`feature_flag.disable`/`enable` with `provider: unleash`: the Unleash admin API (verified).

One run (checked against unleash-server 7.5.1):
1. GET `{base_url}/api/admin/projects/{project}/features/{flag}`: an unknown flag or project
   (404) and an environment the flag does not have are refused, listing what exists;
2. the environment already reads the wanted `enabled` -> nothing is posted (verified);
3. POST `.../features/{flag}/environments/{environment}/off` (or `/on`), no body -> 200 with
   an empty body (the OpenAPI text promises a feature, the handler sends nothing);
4. GET the feature again: the environment's `enabled` must read the wanted value.

Both calls are idempotent (a second `off` is a 200 and no second audit event), so 5xx and
timeouts are retried. Unleash records the change in its event log as the token's user.
"""

from __future__ import annotations

from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.base import ActionContext, StepResult
from responder.actions.calls import auth_headers, check_env_name, describe_headers, fitted
from responder.actions.feature_flags.services import (
    fail_common,
    flag_key,
    json_document,
    send,
    server_message,
)
from responder.core.host_allowlists import check_url, plain_base_url
from responder.core.redaction import redact
from responder.errors import PermanentError

_AUTH_HINT = (
    "check the token in auth_header_env: an admin API token (*:*.<secret>) or a personal "
    "access token whose user may update feature environments (UPDATE_FEATURE_ENVIRONMENT) in "
    "the project; backend and frontend tokens cannot use the admin API"
)


class UnleashParams(BaseModel):
    """`with:` of a feature-flag step for Unleash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["unleash"]
    base_url: str = Field(min_length=1, max_length=2048)
    project: str = "default"
    flag: str
    environment: str
    auth_header_env: str
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return plain_base_url(value)

    @field_validator("project", "flag", "environment")
    @classmethod
    def _key(cls, value: str) -> str:
        return flag_key(value)

    @field_validator("auth_header_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return check_env_name(value)

    @property
    def feature_url(self) -> str:
        """The flag, with every environment's state."""
        return f"{self.base_url}/api/admin/projects/{self.project}/features/{self.flag}"

    def switch_url(self, on: bool) -> str:
        """Where the environment is turned on or off."""
        return f"{self.feature_url}/environments/{self.environment}/{'on' if on else 'off'}"


def _refuse_environment(params: UnleashParams, document: dict[str, Any]) -> NoReturn:
    names = [str(e.get("name")) for e in document.get("environments", []) if isinstance(e, dict)]
    raise PermanentError(
        f"Unleash flag {params.flag!r} has no environment {params.environment!r} "
        f"(environments: {', '.join(names) or 'none'}); fix the environment parameter"
    )


async def _read(params: UnleashParams, ctx: ActionContext) -> dict[str, Any]:
    """The flag's entry for the environment (refusing unknown flags and environments)."""
    headers = {"Accept": "application/json", **auth_headers(params.auth_header_env)}
    response = await send(ctx, "GET", params.feature_url, headers, params.timeout_seconds)
    what = f"GET {redact(params.feature_url)}"
    fail_common(response, what, _AUTH_HINT)
    if response.status == 404:
        raise PermanentError(
            f"Unleash: {server_message(response)} Fix the flag or project parameter "
            "(an archived flag cannot be changed)"
        )
    if response.status != 200:
        raise PermanentError(f"{what} answered {response.status}: {server_message(response)}")
    document = json_document(response, what)
    for entry in document.get("environments") or []:
        if isinstance(entry, dict) and entry.get("name") == params.environment:
            return entry
    _refuse_environment(params, document)


def _word(enabled: Any) -> str:
    if isinstance(enabled, bool):
        return "on" if enabled else "off"
    return "unknown"


async def read_enabled(params: UnleashParams, ctx: ActionContext) -> bool | None:
    """Whether the flag's environment is on now (None: the reply does not say); read-only,
    for the read-back of an interrupted step."""
    check_url(params.feature_url, ctx.allowed_hosts)
    enabled = (await _read(params, ctx)).get("enabled")
    return enabled if isinstance(enabled, bool) else None


async def switch(params: UnleashParams, ctx: ActionContext, on: bool) -> StepResult:
    """Turn the flag's environment on or off, then read it back."""
    check_url(params.feature_url, ctx.allowed_hosts)  # again: rendered at run time
    wanted = "on" if on else "off"
    where = f"Unleash flag {params.flag} in {params.project}/{params.environment}"
    before = await _read(params, ctx)
    output: dict[str, Any] = {
        "provider": "unleash",
        "project": params.project,
        "flag": params.flag,
        "environment": params.environment,
        "wanted": wanted,
        "before": _word(before.get("enabled")),
        "after": _word(before.get("enabled")),
        "strategies": len(before.get("strategies") or []),
        "posted": False,
    }
    if before.get("enabled") is on:
        output["note"] = f"already {wanted}; nothing posted"
        return fitted(ctx, True, f"{where} already {wanted}; nothing posted", output, True)
    url = params.switch_url(on)
    headers = {"Accept": "application/json", **auth_headers(params.auth_header_env)}
    reply = await send(ctx, "POST", url, headers, params.timeout_seconds)
    what = f"POST {redact(url)}"
    fail_common(reply, what, _AUTH_HINT)
    if not 200 <= reply.status < 300:
        raise PermanentError(f"{what} answered {reply.status}: {server_message(reply)}")
    output["posted"] = True
    after = await _read(params, ctx)
    output["after"] = _word(after.get("enabled"))
    output["strategies"] = len(after.get("strategies") or [])
    if after.get("enabled") is on:
        summary = f"{where}: {output['before']} -> {wanted} (verified)"
        return fitted(ctx, True, summary, output, True)
    summary = f"{where}: POST answered {reply.status} but it reads {output['after']}"
    return fitted(ctx, False, summary + f" (expected {wanted})", output, False)


def describe(params: UnleashParams, on: bool) -> dict[str, Any]:
    """The POST it would send, with the reads around it (token redacted)."""
    headers = {"Accept": "application/json", **describe_headers(params.auth_header_env)}
    read = {"method": "GET", "url": redact(params.feature_url), "headers": headers}
    return {
        "provider": "unleash",
        "method": "POST",
        "url": redact(params.switch_url(on)),
        "headers": headers,
        "body": None,
        "before": read,
        "verify": {**read, "expect": {f"environments[{params.environment}].enabled": on}},
    }


def check(params: UnleashParams, allowed_hosts: tuple[str, ...]) -> None:
    """Plan time: the host must be allowlisted."""
    check_url(params.feature_url, allowed_hosts)
