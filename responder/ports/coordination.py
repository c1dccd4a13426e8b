"""The Coordinator port: dedup claims, cooldowns, run budgets and short locks shared by replicas."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from responder.models.rules import Budget


class Coordinator(Protocol):
    """Dedup claims, cooldowns and run budgets shared by every replica."""

    async def claim(self, key: str, ttl: timedelta) -> bool:
        """Claim `key` for `ttl`; True only for the first caller (SET NX PX)."""
        ...

    async def cooldown_remaining(self, key: str) -> timedelta | None:
        """Time left on the cooldown of `key`, or None when not cooling down."""
        ...

    async def start_cooldown(self, key: str, ttl: timedelta) -> None:
        """Start (or restart) the cooldown of `key`."""
        ...

    async def begin_cooldown(self, key: str, ttl: timedelta) -> timedelta | None:
        """Atomically start the cooldown of `key` unless one is running.

        None when this caller started it (exactly one of concurrent callers, across
        replicas); otherwise the time left on the running cooldown.
        """
        ...

    async def take_budget(self, key: str, budgets: Sequence[Budget], now: datetime) -> bool:
        """Atomically check every budget window of `key` and, if all allow, count one run.

        Windows slide: a run counted at time t uses a slot while `now - per < t`. A run is
        counted in every window or in none.
        """
        ...

    async def budget_allows(self, key: str, budgets: Sequence[Budget], now: datetime) -> bool:
        """Whether a run would fit every budget window of `key` (no side effect)."""
        ...

    async def acquire_lock(self, key: str, ttl: timedelta) -> str | None:
        """Take a short lock (always expiring); returns the owner token, or None if held."""
        ...

    async def release_lock(self, key: str, token: str) -> bool:
        """Release the lock only if `token` still owns it (compare and delete)."""
        ...

    async def ping(self) -> None:
        """Raise CoordinationUnavailableError unless the coordinator answers now."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
