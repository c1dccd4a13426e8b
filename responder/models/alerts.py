"""The one normalised `Alert` value every intake source is turned into."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Source(StrEnum):
    """Where an alert came from."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    SENTRY = "sentry"


class AlertStatus(StrEnum):
    """Whether the condition behind an alert holds."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(BaseModel):
    """One alert, whatever its source.

    `labels` always holds `alertname` (set to `name` when the source has no such label), so
    that Alertmanager-style matchers work for every source. `fingerprint` identifies the alert
    across deliveries (Alertmanager's fingerprint, Grafana's, or a stable hash for Sentry).
    `raw` is the part of the payload this alert came from, kept for templates and audit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Source
    name: str
    status: AlertStatus
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    severity: str | None = None
    fingerprint: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    links: dict[str, str] = Field(default_factory=dict)
    group_key: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of_validated(
        cls,
        *,
        source: Source,
        name: str,
        status: AlertStatus,
        labels: dict[str, str],
        annotations: dict[str, str],
        severity: str | None,
        fingerprint: str,
        starts_at: datetime | None,
        ends_at: datetime | None,
        links: dict[str, str],
        group_key: str | None,
        raw: dict[str, Any],
    ) -> Alert:
        """An Alert from values a payload model has already validated, without validating
        them again: a grouped delivery builds a hundred of these, and validation cost 5-8 µs
        each against about 1 µs for this. The signature is what keeps it honest (mypy
        checks every caller); the dicts passed become the alert's own. Tests check that
        validating the result again changes nothing for every captured payload.
        """
        fields = {
            "source": source,
            "name": name,
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "severity": severity,
            "fingerprint": fingerprint,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "links": links,
            "group_key": group_key,
            "raw": raw,
        }
        alert = cls.__new__(cls)
        object.__setattr__(alert, "__dict__", fields)
        object.__setattr__(alert, "__pydantic_fields_set__", set(fields))
        object.__setattr__(alert, "__pydantic_extra__", None)
        object.__setattr__(alert, "__pydantic_private__", None)
        return alert

    @property
    def identity(self) -> str:
        """Stable identity of this alert occurrence: same alert, same episode, same status.

        Repeated deliveries (Alertmanager retries and repeat_interval, an HA pair of
        Alertmanagers, Sentry replays) share it; a new firing episode does not.
        """
        started = "-"
        if self.starts_at is not None:
            started = _isoformat(self.starts_at, self.starts_at.utcoffset())
        return f"{self.source}:{self.fingerprint}:{started}:{self.status}"


@lru_cache(maxsize=1024)
def _isoformat(moment: datetime, offset: timedelta | None) -> str:
    """`moment.isoformat()`, remembered: a group's alerts mostly share their start, and the
    store, the dedup gate and the planner each ask for an alert's identity. `offset` is part
    of the key because equal instants in different offsets compare equal but print apart."""
    del offset
    return moment.isoformat()


class Delivery(BaseModel):
    """One accepted webhook request, normalised: what the store records before the 202."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Source
    delivery_id: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0
