"""The one normalised `Alert` value every intake source is turned into."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
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

    @property
    def identity(self) -> str:
        """Stable identity of this alert occurrence: same alert, same episode, same status.

        Repeated deliveries (Alertmanager retries and repeat_interval, an HA pair of
        Alertmanagers, Sentry replays) share it; a new firing episode does not.
        """
        started = self.starts_at.isoformat() if self.starts_at else "-"
        return f"{self.source.value}:{self.fingerprint}:{started}:{self.status.value}"


class Delivery(BaseModel):
    """One accepted webhook request, normalised: what the store records before the 202."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Source
    delivery_id: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0
