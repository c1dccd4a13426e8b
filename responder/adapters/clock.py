"""The wall clock behind the Clock port (UTC, timezone-aware)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """Reads the system time; tests inject their own clock instead."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)
