"""The `redis.info` action: INFO sections and SLOWLOG of a named Redis, plus derived flags.

Read-only (INFO and SLOWLOG GET only). Output:
- `sections`: one dict per requested section, every field as Redis reports it;
- `slowlog`: the newest `slowlog` entries (`[]` when `slowlog: 0`);
- `flags`, each null when its section was not requested:
  `maxmemory_near` (used_memory / maxmemory > 0.9, false when maxmemory is 0 = unlimited),
  `replication_link_down` (a replica whose master_link_status is not `up`),
  `rejected_connections` (stats.rejected_connections > 0 since the server started);
- `memory_usage_ratio` (used_memory / maxmemory, null when unlimited or not requested).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.databases.targets import TARGET_PATTERN, require_redis
from responder.core.redaction import truncate
from responder.models.plans import ActionClass

MAXMEMORY_NEAR_RATIO = 0.9

Section = Literal["memory", "clients", "replication", "persistence", "stats"]
ALL_SECTIONS: tuple[Section, ...] = ("memory", "clients", "replication", "persistence", "stats")


class RedisInfoParams(BaseModel):
    """Parameters of `redis.info`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(pattern=TARGET_PATTERN)
    sections: tuple[Section, ...] = Field(default=ALL_SECTIONS, min_length=1)
    slowlog: int = Field(default=10, ge=0, le=128)
    timeout_seconds: float = Field(default=3.0, gt=0, le=30)

    @field_validator("sections")
    @classmethod
    def _distinct(cls, value: tuple[Section, ...]) -> tuple[Section, ...]:
        return tuple(dict.fromkeys(value))


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def memory_ratio(memory: dict[str, object]) -> float | None:
    """used_memory / maxmemory, or None when maxmemory is 0 (unlimited) or unknown."""
    used, limit = _number(memory.get("used_memory")), _number(memory.get("maxmemory"))
    if used is None or limit is None or limit <= 0:
        return None
    return round(used / limit, 4)


def derive_flags(sections: dict[str, dict[str, object]]) -> dict[str, bool | None]:
    """The derived flags (None for a section that was not read)."""
    flags: dict[str, bool | None] = {
        "maxmemory_near": None,
        "replication_link_down": None,
        "rejected_connections": None,
    }
    if "memory" in sections:
        ratio = memory_ratio(sections["memory"])
        flags["maxmemory_near"] = ratio is not None and ratio > MAXMEMORY_NEAR_RATIO
    if "replication" in sections:
        replication = sections["replication"]
        flags["replication_link_down"] = (
            replication.get("role") == "slave" and replication.get("master_link_status") != "up"
        )
    if "stats" in sections:
        rejected = _number(sections["stats"].get("rejected_connections"))
        flags["rejected_connections"] = rejected is not None and rejected > 0
    return flags


def _summary(params: RedisInfoParams, output: dict[str, Any]) -> str:
    raised = [name for name, value in output["flags"].items() if value]
    parts = [f"redis {params.target}: {len(params.sections)} section(s)"]
    memory = output["sections"].get("memory")
    if memory is not None:
        human = memory.get("used_memory_human", memory.get("used_memory"))
        ratio = output["memory_usage_ratio"]
        parts.append(f"used {human}" + (f" ({ratio:.0%} of maxmemory)" if ratio else ""))
    replication = output["sections"].get("replication")
    if replication is not None:
        parts.append(f"role {replication.get('role')}")
    parts.append(f"{len(output['slowlog'])} slowlog entries")
    parts.append("flags: " + (", ".join(raised) if raised else "none"))
    return "; ".join(parts)


async def _run(params: RedisInfoParams, ctx: ActionContext) -> StepResult:
    redis = require_redis(ctx)
    sections: dict[str, dict[str, object]] = {}
    for section in params.sections:
        sections[section] = await redis.info(
            params.target, section, timeout_seconds=params.timeout_seconds
        )
    slowlog = (
        await redis.slowlog(params.target, params.slowlog, timeout_seconds=params.timeout_seconds)
        if params.slowlog > 0
        else []
    )
    output: dict[str, Any] = {
        "target": params.target,
        "sections": sections,
        "slowlog": slowlog,
        "flags": derive_flags(sections),
        "memory_usage_ratio": memory_ratio(sections["memory"]) if "memory" in sections else None,
    }
    summary = _summary(params, output)
    shown: dict[str, Any] = truncate(output, ctx.output_max_bytes)
    return StepResult(ok=True, summary=summary, output=shown)


def _describe(params: RedisInfoParams) -> dict[str, Any]:
    commands = [f"INFO {section}" for section in params.sections]
    if params.slowlog:
        commands.append(f"SLOWLOG GET {params.slowlog}")
    return {"target": params.target, "commands": commands}


REDIS_INFO: ActionSpec[RedisInfoParams] = ActionSpec(
    name="redis.info",
    params_model=RedisInfoParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=30),
    blast_radius="read-only INFO and SLOWLOG GET on a named Redis target",
    description="Read Redis INFO sections and the slow log; flag memory near maxmemory, a "
    "down replication link and rejected connections.",
    run=_run,
    describe=_describe,
)
