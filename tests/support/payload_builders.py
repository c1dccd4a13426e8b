"""Alertmanager webhook bodies built in tests (the same shape as the captured payloads)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any


def am_alert(
    name: str = "DiskFull",
    *,
    status: str = "firing",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    starts_at: datetime | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """One alert of an Alertmanager v4 payload."""
    all_labels = {"alertname": name, "severity": "critical", "instance": "db-1:9100"}
    all_labels.update(labels or {})
    started = starts_at or datetime.now(UTC) - timedelta(minutes=10)
    alert: dict[str, Any] = {
        "status": status,
        "labels": all_labels,
        "annotations": annotations or {"summary": f"{name} on {all_labels['instance']}"},
        "startsAt": started.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else datetime.now(UTC).isoformat(),
        "generatorURL": "http://127.0.0.1:9090/graph",
    }
    if fingerprint is not None:
        alert["fingerprint"] = fingerprint
    return alert


def am_body(*alerts: dict[str, Any], truncated: int = 0) -> bytes:
    """A whole Alertmanager v4 webhook body."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    first = alerts[0]["labels"]
    return json.dumps(
        {
            "receiver": "responder",
            "status": status,
            "alerts": list(alerts),
            "groupLabels": {"alertname": first["alertname"]},
            "commonLabels": {"alertname": first["alertname"]},
            "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{first["alertname"]}"}}',
            "truncatedAlerts": truncated,
        }
    ).encode()
