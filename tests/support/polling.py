"""Waiting in tests: poll a condition on the running loop until it holds, or fail saying what."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 5.0,
    interval: float = 0.02,
    what: str = "condition",
    explain: Callable[[], str] = str,
) -> T:
    """Poll `check` until it returns something other than None or False, and return that.

    Fails the test after `timeout` seconds, naming `what` and adding `explain()` (a log tail,
    the state seen last)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await check()
        if found is not None and found is not False:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached in time {explain()}".rstrip())
        await asyncio.sleep(interval)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll `predicate` until it holds (fails the test after `timeout` seconds)."""
    await eventually(predicate, timeout=timeout)
