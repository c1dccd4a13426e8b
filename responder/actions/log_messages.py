"""The `log` action: record a message with fields in the run (no IO; the engine logs the step).

Useful as a first step that documents why a rule fired, or as a placeholder in dry-run rules.
The message becomes the step summary (newlines folded into spaces, so it stays one line) and
the whole of it is kept in `output` for notifications and later steps.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.core.redaction import redact
from responder.models.plans import ActionClass

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_MAX_FIELDS = 32
_MAX_FIELD_VALUE = 1000


class LogParams(BaseModel):
    """Parameters of `log` (the `with:` block of a step)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: str = Field(min_length=1, max_length=2000)
    level: Literal["info", "warning", "error"] = "info"
    fields: dict[str, str] = Field(default_factory=dict, max_length=_MAX_FIELDS)

    @field_validator("fields")
    @classmethod
    def _sane_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            if not _FIELD_NAME.match(name):
                raise ValueError(
                    f"invalid field name {name[:64]!r}; use letters, digits, '_', '.', '-'"
                )
            if len(item) > _MAX_FIELD_VALUE:
                raise ValueError(f"field {name!r} is longer than {_MAX_FIELD_VALUE} characters")
        return value


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def _run(params: LogParams, ctx: ActionContext) -> StepResult:
    del ctx  # no IO: the engine writes the canonical log line for every step
    return StepResult(
        ok=True,
        summary=_one_line(params.message),
        output={"message": params.message, "level": params.level, "fields": dict(params.fields)},
    )


def _describe(params: LogParams) -> dict[str, Any]:
    described: dict[str, Any] = redact(
        {"message": params.message, "level": params.level, "fields": dict(params.fields)}
    )
    return described


LOG: ActionSpec[LogParams] = ActionSpec(
    name="log",
    params_model=LogParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=5),
    blast_radius="none: writes only to the run record and the responder log",
    description="Record a message (info, warning or error) with string fields in the run.",
    run=_run,
    describe=_describe,
)
