"""The in-process Coordinator: dedup claims, cooldowns, run budgets and locks for ONE process.

Claims, cooldowns and locks are separate namespaces. They expire on a monotonic clock
(`time.monotonic` unless one is injected), so wall-clock jumps neither extend nor cut them short.

Budgets are sliding windows. `Budget(max=3, per=1h)` means: at most 3 counted runs whose
timestamps t satisfy `now - 1h < t` (t is the `now` passed to `take_budget`; a run exactly one
window old no longer counts). Each (key, window length) keeps its own list of timestamps. A run
counts against every window it fits: `take_budget` checks all budgets of the call and, only
if all allow, records the run in each of them, so "3 per 1h and 7 per 1d" reads as both at once.

Every method is `async` but never awaits, so each one, `take_budget`'s check-and-count in
particular, is atomic on the event loop. Not thread-safe: use it from one event loop.

Locks carry a random owner token: `release_lock` deletes only while that token still owns the
lock (compare and delete), and a lock always expires, so a holder that never releases blocks
nobody past its ttl.

Memory: expired claims, cooldowns and locks are dropped lazily when read and, on every call,
from the front of an expiry heap (amortised O(log n)); budget timestamps are pruned as they age out
of their window and a window with nothing left is dropped the same way. What is live is bounded
by the call rate times the longest TTL or window; there is no hard cap, because evicting a live
claim would silently let a duplicate run through.
"""

from __future__ import annotations

import heapq
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from responder.errors import CoordinationUnavailableError
from responder.models.rules import Budget

_Window = tuple[str, timedelta]  # (key, window length)


class MemoryCoordinator:
    """`Coordinator` in a dict: one replica only (use the Redis coordinator for more)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._claims: dict[str, float] = {}  # key -> expiry on `clock`
        self._cooldowns: dict[str, float] = {}
        self._locks: dict[str, float] = {}
        self._lock_owners: dict[str, str] = {}  # key -> token of the live lock
        self._expiries: list[tuple[float, str, str]] = []  # heap of (expiry, kind, key)
        self._windows: dict[_Window, list[datetime]] = {}  # run timestamps, oldest first
        self._window_ends: list[tuple[datetime, str, timedelta]] = []  # heap: when to recheck
        self._tables = {"claim": self._claims, "cooldown": self._cooldowns, "lock": self._locks}
        self._closed = False

    async def claim(self, key: str, ttl: timedelta) -> bool:
        """Claim `key` for `ttl`; True only for the first caller while the claim lives."""
        now = self._tick()
        expiry = self._claims.get(key)
        if expiry is not None and expiry > now:
            return False
        self._set(self._claims, "claim", key, now + _seconds(ttl))
        return True

    async def cooldown_remaining(self, key: str) -> timedelta | None:
        """Time left on the cooldown of `key`, or None when not cooling down."""
        now = self._tick()
        expiry = self._cooldowns.get(key)
        if expiry is None or expiry <= now:
            return None
        return timedelta(seconds=expiry - now)

    async def start_cooldown(self, key: str, ttl: timedelta) -> None:
        """Start (or restart) the cooldown of `key` for `ttl` from now."""
        now = self._tick()
        self._set(self._cooldowns, "cooldown", key, now + _seconds(ttl))

    async def begin_cooldown(self, key: str, ttl: timedelta) -> timedelta | None:
        """Start the cooldown of `key` unless one is running (then: the time left)."""
        remaining = await self.cooldown_remaining(key)
        if remaining is None:
            await self.start_cooldown(key, ttl)  # no await point in between: atomic here
        return remaining

    async def take_budget(self, key: str, budgets: Sequence[Budget], now: datetime) -> bool:
        """If every window of `key` has room at `now`, count one run in each; else count none."""
        self._tick()
        self._prune_windows(_aware(now))
        if not self._fits(key, budgets, now):
            return False
        for per in {budget.per for budget in budgets}:
            window = self._windows.setdefault((key, per), [])
            window.append(now)
            window.sort()  # `now` may go backwards across callers; keep oldest first
            heapq.heappush(self._window_ends, (window[-1] + per, key, per))
        return True

    async def budget_allows(self, key: str, budgets: Sequence[Budget], now: datetime) -> bool:
        """Whether `take_budget(key, budgets, now)` would succeed (changes nothing)."""
        self._tick()
        return self._fits(key, budgets, _aware(now))

    async def acquire_lock(self, key: str, ttl: timedelta) -> str | None:
        """Take the lock `key` for `ttl` (it always expires); the owner token, or None if held."""
        now = self._tick()
        expiry = self._locks.get(key)
        if expiry is not None and expiry > now:
            return None
        token = secrets.token_hex(16)
        self._set(self._locks, "lock", key, now + _seconds(ttl))
        self._lock_owners[key] = token
        return token

    async def release_lock(self, key: str, token: str) -> bool:
        """Release the lock only if `token` still owns it (compare and delete)."""
        now = self._tick()
        expiry = self._locks.get(key)
        if expiry is None or expiry <= now or self._lock_owners.get(key) != token:
            return False
        del self._locks[key], self._lock_owners[key]
        return True

    async def ping(self) -> None:
        """Raise CoordinationUnavailableError once closed; otherwise it always answers."""
        self._tick()

    @property
    def live_entries(self) -> int:
        """Claims, cooldowns, locks and budget windows held now (for metrics and tests)."""
        return len(self._claims) + len(self._cooldowns) + len(self._locks) + len(self._windows)

    async def close(self) -> None:
        """Forget everything; later calls raise CoordinationUnavailableError."""
        self._closed = True
        self._claims.clear()
        self._cooldowns.clear()
        self._locks.clear()
        self._lock_owners.clear()
        self._expiries.clear()
        self._windows.clear()
        self._window_ends.clear()

    def _fits(self, key: str, budgets: Sequence[Budget], now: datetime) -> bool:
        for budget in budgets:
            start = now - budget.per
            counted = sum(1 for t in self._windows.get((key, budget.per), ()) if t > start)
            if counted >= budget.max:
                return False
        return True

    def _tick(self) -> float:
        """Refuse calls after close, drop expired claims, cooldowns and locks; return the time."""
        if self._closed:
            raise CoordinationUnavailableError(
                "the in-process coordinator is closed (shutting down?); retry after restart"
            )
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            expiry, kind, key = heapq.heappop(self._expiries)
            table = self._tables[kind]
            if table.get(key) == expiry:  # not renewed since this heap entry was pushed
                del table[key]
                if kind == "lock":
                    del self._lock_owners[key]
        return now

    def _set(self, table: dict[str, float], kind: str, key: str, expiry: float) -> None:
        table[key] = expiry
        heapq.heappush(self._expiries, (expiry, kind, key))

    def _prune_windows(self, now: datetime) -> None:
        """Drop timestamps that left their window; drop windows left empty."""
        while self._window_ends and self._window_ends[0][0] <= now:
            _, key, per = heapq.heappop(self._window_ends)
            window = self._windows.get((key, per))
            if window is None:
                continue
            window[:] = [t for t in window if t > now - per]
            if not window:
                del self._windows[(key, per)]


def _seconds(ttl: timedelta) -> float:
    seconds = ttl.total_seconds()
    if seconds <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    return seconds


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware (UTC) time")
    return now
