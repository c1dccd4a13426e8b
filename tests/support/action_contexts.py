"""ActionContexts for action tests: the real aiohttp HttpApi, allowed to reach 127.0.0.1 only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from responder.actions.base import ActionContext
from responder.adapters.http_client import AiohttpHttpApi


@asynccontextmanager
async def loopback_context(
    *, step_id: str, run_id: str = "run-1", rule_id: str = "rule-1", output_max_bytes: int = 4096
) -> AsyncIterator[ActionContext]:
    """A context whose HttpApi is open while the block runs, for steps against local fakes."""
    async with await AiohttpHttpApi.create() as client:
        yield ActionContext(
            http=client,
            allowed_hosts=("127.0.0.1",),
            run_id=run_id,
            rule_id=rule_id,
            step_id=step_id,
            output_max_bytes=output_max_bytes,
        )
