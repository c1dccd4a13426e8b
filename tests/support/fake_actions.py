"""A containment action for engine tests: POSTs to a local target through the real HttpApi."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from responder.actions.base import ActionContext, ActionRegistry, ActionSpec, StepResult
from responder.actions.shipped import shipped_actions
from responder.core.host_allowlists import check_url
from responder.errors import TemporaryError
from responder.models.http import HttpRequest
from responder.models.plans import ActionClass


class ContainParams(BaseModel):
    """Where to POST, and a key the target records."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    key: str = ""


async def _contain(params: ContainParams, ctx: ActionContext) -> StepResult:
    check_url(params.url, ctx.allowed_hosts)
    response = await ctx.http.send(
        HttpRequest(
            method="POST",
            url=params.url,
            headers={"Content-Type": "application/json", "Idempotency-Key": ctx.run_id},
            body=json.dumps({"key": params.key, "run": ctx.run_id}).encode(),
            timeout_seconds=5,
        )
    )
    if response.status >= 500:
        raise TemporaryError(f"target answered {response.status}", delay=0.01)
    return StepResult(
        ok=response.status < 300,
        summary=f"contained {params.key} ({response.status})",
        output={"status": response.status, "key": params.key},
        verified=response.status < 300,
    )


def _describe(params: ContainParams) -> dict[str, Any]:
    return {"method": "POST", "url": params.url, "json": {"key": params.key}}


def _check(params: ContainParams, allowed: tuple[str, ...]) -> None:
    check_url(params.url, allowed)


CONTAIN = ActionSpec(
    name="test.contain",
    params_model=ContainParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=5),
    blast_radius="the local test target only",
    description="POST to a local test target (tests only)",
    run=_contain,
    describe=_describe,
    check=_check,
)


def registry_with_containment(extra: ActionSpec[Any] = CONTAIN) -> ActionRegistry:
    """The shipped actions plus the test containment action."""
    return ActionRegistry([*shipped_actions(), extra])
