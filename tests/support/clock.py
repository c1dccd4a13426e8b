"""A clock for the Clock port that only moves when a test moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """`now()` stands still until `advance()`; starts at the real time unless told otherwise."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        """The current (fake) time, timezone-aware UTC."""
        return self._now

    def advance(self, delta: timedelta | float) -> None:
        """Move the time forward by `delta` (a timedelta, or seconds)."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        assert step >= timedelta(0), "time only moves forward"
        self._now += step
