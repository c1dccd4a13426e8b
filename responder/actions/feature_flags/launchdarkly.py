"""`feature_flag.disable`/`enable` with `provider: launchdarkly`: a semantic patch (verified).

One run:
1. GET `{base_url}/api/v2/flags/{project}/{flag}?env={environment}`: an unknown flag (404) or
   an environment missing from `environments` is refused;
2. `environments.<environment>.on` already the wanted value -> nothing is sent (verified);
3. PATCH the flag with `Content-Type: application/json; domain-model=launchdarkly.semanticpatch`
   (without it the body is read as a JSON Patch and refused) and
   `{"environmentKey": ..., "comment": "responder: rule ..., run ...", "instructions":
   [{"kind": "turnFlagOff"}]}` (`turnFlagOn` to enable);
4. GET again: `environments.<environment>.on` must read the wanted value.

The token goes in `Authorization` as is (no `Bearer`). 409 (conflicting change) and 429 are
retried (429 after `Retry-After`/`X-Ratelimit-Reset`); an instruction already in effect is a
no-op for LaunchDarkly, so a retry is harmless. 400 names `ignore_conflicts` (pending scheduled
changes or approvals refuse direct changes).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.base import ActionContext, StepResult
from responder.actions.calls import auth_headers, check_env_name, describe_headers, fitted
from responder.actions.feature_flags.services import (
    audit_comment,
    fail_common,
    flag_key,
    json_document,
    retry_delay,
    send,
    server_message,
)
from responder.core.host_allowlists import check_url, plain_base_url
from responder.core.redaction import redact
from responder.errors import PermanentError, TemporaryError

SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"
API_VERSION = "20240415"
_AUTH_HINT = (
    "check the access token in auth_header_env (a REST API access token with writer role or "
    "a custom role allowing updateOn for this flag; SDK and mobile keys cannot call the API)"
)


class LaunchDarklyParams(BaseModel):
    """`with:` of a feature-flag step for LaunchDarkly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["launchdarkly"]
    base_url: str = Field(default="https://app.launchdarkly.com", min_length=1, max_length=2048)
    project: str
    flag: str
    environment: str
    auth_header_env: str
    comment: str = Field(default="", max_length=500)
    ignore_conflicts: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return plain_base_url(value)

    @field_validator("project", "flag", "environment")
    @classmethod
    def _key(cls, value: str) -> str:
        return flag_key(value, 256)

    @field_validator("auth_header_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return check_env_name(value)

    @property
    def flag_url(self) -> str:
        """The flag resource."""
        return f"{self.base_url}/api/v2/flags/{self.project}/{self.flag}"

    @property
    def read_url(self) -> str:
        """The flag with only the environment of interest."""
        return f"{self.flag_url}?env={self.environment}"

    @property
    def patch_url(self) -> str:
        """Where the semantic patch goes."""
        return self.flag_url + ("?ignoreConflicts=true" if self.ignore_conflicts else "")


def _instruction(on: bool) -> str:
    return "turnFlagOn" if on else "turnFlagOff"


def _body(params: LaunchDarklyParams, on: bool, comment: str) -> dict[str, Any]:
    return {
        "environmentKey": params.environment,
        "comment": comment,
        "instructions": [{"kind": _instruction(on)}],
    }


async def _read(params: LaunchDarklyParams, ctx: ActionContext) -> bool:
    """`environments.<environment>.on` (refusing unknown flags and environments)."""
    headers = {"Accept": "application/json", **auth_headers(params.auth_header_env)}
    response = await send(ctx, "GET", params.read_url, headers, params.timeout_seconds)
    what = f"GET {redact(params.read_url)}"
    fail_common(response, what, _AUTH_HINT)
    if response.status == 404:
        raise PermanentError(
            f"LaunchDarkly has no flag {params.flag!r} in project {params.project!r} "
            f"({server_message(response)}); fix the flag or project parameter"
        )
    if response.status != 200:
        raise PermanentError(f"{what} answered {response.status}: {server_message(response)}")
    environments = json_document(response, what).get("environments")
    entry = environments.get(params.environment) if isinstance(environments, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("on"), bool):
        raise PermanentError(
            f"LaunchDarkly flag {params.flag!r} has no environment {params.environment!r}; "
            "fix the environment parameter (an environment key, e.g. production)"
        )
    return bool(entry["on"])


async def _patch(params: LaunchDarklyParams, ctx: ActionContext, on: bool) -> int:
    body = json.dumps(_body(params, on, audit_comment(ctx, params.comment))).encode()
    headers = {
        "Accept": "application/json",
        "Content-Type": SEMANTIC_PATCH,
        "LD-API-Version": API_VERSION,
        **auth_headers(params.auth_header_env),
    }
    reply = await send(ctx, "PATCH", params.patch_url, headers, params.timeout_seconds, body)
    what = f"PATCH {redact(params.patch_url)}"
    fail_common(reply, what, _AUTH_HINT)
    if reply.status == 409:
        raise TemporaryError(
            f"{what} answered 409 (a conflicting change is in progress); retrying",
            delay=retry_delay(reply),
        )
    if reply.status == 400:
        raise PermanentError(
            f"{what} answered 400: {server_message(reply)}. If scheduled changes or approval "
            "requests are pending, set ignore_conflicts: true; environments that require "
            "approvals refuse direct changes"
        )
    if not 200 <= reply.status < 300:
        raise PermanentError(f"{what} answered {reply.status}: {server_message(reply)}")
    return reply.status


async def read_enabled(params: LaunchDarklyParams, ctx: ActionContext) -> bool:
    """Whether the flag is on in the environment now; read-only, for the read-back of an
    interrupted step."""
    check_url(params.flag_url, ctx.allowed_hosts)
    return await _read(params, ctx)


async def switch(params: LaunchDarklyParams, ctx: ActionContext, on: bool) -> StepResult:
    """Turn the flag on or off in one environment, then read it back."""
    check_url(params.flag_url, ctx.allowed_hosts)  # again: rendered at run time
    wanted = "on" if on else "off"
    where = f"LaunchDarkly flag {params.flag} in {params.project}/{params.environment}"
    before = await _read(params, ctx)
    output: dict[str, Any] = {
        "provider": "launchdarkly",
        "project": params.project,
        "flag": params.flag,
        "environment": params.environment,
        "wanted": wanted,
        "before": "on" if before else "off",
        "after": "on" if before else "off",
        "patched": False,
    }
    if before is on:
        output["note"] = f"already {wanted}; nothing sent"
        return fitted(ctx, True, f"{where} already {wanted}; nothing sent", output, True)
    status = await _patch(params, ctx, on)
    output.update(patched=True, instruction=_instruction(on))
    after = await _read(params, ctx)
    output["after"] = "on" if after else "off"
    if after is on:
        return fitted(
            ctx, True, f"{where}: {output['before']} -> {wanted} (verified)", output, True
        )
    summary = f"{where}: PATCH answered {status} but it reads {output['after']}"
    return fitted(ctx, False, summary + f" (expected {wanted})", output, False)


def describe(params: LaunchDarklyParams, on: bool) -> dict[str, Any]:
    """The semantic patch it would send, with the reads around it (token redacted)."""
    auth = describe_headers(params.auth_header_env)
    read = {
        "method": "GET",
        "url": redact(params.read_url),
        "headers": {"Accept": "application/json", **auth},
    }
    placeholder = "responder: rule <rule>, run <run>, step <step>"
    comment = f"{placeholder}: {params.comment}" if params.comment else placeholder
    return {
        "provider": "launchdarkly",
        "method": "PATCH",
        "url": redact(params.patch_url),
        "headers": {
            "Accept": "application/json",
            "Content-Type": SEMANTIC_PATCH,
            "LD-API-Version": API_VERSION,
            **auth,
        },
        "json": redact(_body(params, on, comment)),
        "before": read,
        "verify": {**read, "expect": {f"environments.{params.environment}.on": on}},
    }


def check(params: LaunchDarklyParams, allowed_hosts: tuple[str, ...]) -> None:
    """Plan time: the host must be allowlisted."""
    check_url(params.flag_url, allowed_hosts)
