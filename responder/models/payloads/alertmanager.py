"""Alertmanager webhook (payload version "4") as it really arrives, plus its time format.

Third-party shape: unknown keys are ignored, known keys are strictly typed. Tolerates what real
senders omit: pre-0.20 bodies (no `fingerprint`, no `truncatedAlerts`), hand-made fixtures
without per-alert `status`/`generatorURL`, and the 0.32+/0.34+ additions
(`notification_reason`, `routeLabels`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def parse_rfc3339(value: object) -> object:
    """Turn an RFC 3339 string into an aware UTC datetime; `None` for Go's zero time.

    Go writes up to nine fractional digits (amtool, old Prometheus); they are truncated to
    microseconds. A time without an offset is refused. Any time in year 1 is treated as Go's
    zero time (`0001-01-01T00:00:00Z`, "not set"), whatever its offset.
    """
    if not isinstance(value, str):
        return value  # strict validation reports the wrong type
    return _parse_text(value)


@lru_cache(maxsize=4096)
def _parse_text(value: str) -> datetime | None:
    """`parse_rfc3339` of a string, remembered: a group's alerts and every re-notification
    repeat the same few times (Go's zero `endsAt` above all). Errors are not cached."""
    found = _RFC3339.match(value)
    if found is None:
        raise ValueError("expected an RFC 3339 time such as 2026-11-23T10:39:08.29Z")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = found.groups()
    if int(year) == 1:
        return None
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
    tz = UTC if zulu or not offset else timezone(-offset if sign == "-" else offset)
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"expected a valid RFC 3339 time: {exc}") from exc


Rfc3339Time = Annotated[datetime | None, BeforeValidator(parse_rfc3339)]
"""An RFC 3339 time normalised to UTC, or `None` for Go's zero time."""

Labels = dict[str, str]
AlertStatusText = Literal["firing", "resolved"]


class AlertmanagerAlert(BaseModel):
    """One element of `alerts`."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    status: AlertStatusText | None = None
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    starts_at: Rfc3339Time = Field(default=None, alias="startsAt")
    ends_at: Rfc3339Time = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""


class AlertGroupEnvelope(BaseModel):
    """The group-level keys Alertmanager and Grafana share (everything but `alerts`)."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    version: str | None = None
    group_key: str | None = Field(default=None, alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: AlertStatusText
    receiver: str = ""
    group_labels: Labels = Field(default_factory=dict, alias="groupLabels")
    common_labels: Labels = Field(default_factory=dict, alias="commonLabels")
    common_annotations: Labels = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    notification_reason: str | None = None
    route_labels: Labels = Field(default_factory=dict, alias="routeLabels")


class AlertmanagerPayload(AlertGroupEnvelope):
    """The whole Alertmanager webhook body: one notification for one alert group."""

    alerts: list[AlertmanagerAlert]
