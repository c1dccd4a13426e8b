"""How database actions reach their named targets: the name pattern and the configured ports.

A target is named by the rule (`target: orders-db`) and resolved by the adapter from
RESPONDER_POSTGRES_TARGETS or RESPONDER_REDIS_TARGETS; a rule never carries a connection URL.
"""

from __future__ import annotations

from responder.actions.base import ActionContext
from responder.errors import PermanentError
from responder.ports.targets import RedisApi, SqlApi

TARGET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
NO_POSTGRES_TARGETS = "no monitored PostgreSQL targets configured: set RESPONDER_POSTGRES_TARGETS"
NO_REDIS_TARGETS = "no monitored Redis targets configured: set RESPONDER_REDIS_TARGETS"


def require_sql(ctx: ActionContext) -> SqlApi:
    """The SqlApi port, or PermanentError saying how to configure it."""
    if ctx.sql is None:
        raise PermanentError(NO_POSTGRES_TARGETS)
    return ctx.sql


def require_redis(ctx: ActionContext) -> RedisApi:
    """The RedisApi port, or PermanentError saying how to configure it."""
    if ctx.redis is None:
        raise PermanentError(NO_REDIS_TARGETS)
    return ctx.redis
