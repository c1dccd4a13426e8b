"""Parsing of human durations used in rules and settings: `30s`, `2m`, `1h30m`, `7d`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m`-style text (units ms, s, m, h, d, w) into a timedelta.

    Raises ValueError with a message that shows the accepted syntax.
    """
    cleaned = text.strip().replace(" ", "")
    if not cleaned:
        raise ValueError("empty duration; write e.g. 30s, 2m, 1h30m or 7d")
    pos = 0
    seconds = 0.0
    for found in _PART.finditer(cleaned):
        if found.start() != pos:
            break
        seconds += float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
        pos = found.end()
    if pos != len(cleaned):
        raise ValueError(f"invalid duration {text!r}; write e.g. 30s, 2m, 1h30m or 7d")
    return _seconds(seconds)


def format_duration(value: timedelta) -> str:
    """Render a timedelta back in the shortest `1h30m` form."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        whole = int(total // size)
        if whole:
            parts.append(f"{whole}{unit}")
            total -= whole * size
    if total:
        parts.append(f"{total:g}s")
    return "".join(parts)


def _coerce(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _seconds(value)
    return value


def _seconds(value: float) -> timedelta:
    """`value` seconds; ValueError (not OverflowError) past what a timedelta holds."""
    try:
        return timedelta(seconds=value)
    except (OverflowError, ValueError):
        raise ValueError(
            f"duration of {value!r} seconds is out of range; write e.g. 30s, 2m, 1h30m or 7d"
        ) from None


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str),
]
"""A timedelta field that accepts `2m`-style strings or seconds and serialises back to text."""
