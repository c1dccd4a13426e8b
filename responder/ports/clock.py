"""The Clock port: time as an argument, so the engine never reads the wall clock itself."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Time as an argument: the engine never reads the wall clock directly."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...
