"""Alertmanager v4 webhook bodies for the benches, shaped like the captured ones.

Each alert carries a fingerprint (as Alertmanager >= 0.20 sends), five labels, two
annotations, a generator URL and a fixed `startsAt`, so the same alert sent again has the
same identity (as Alertmanager's repeat notifications and retries do).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

STARTS_AT = "2026-01-01T00:00:00Z"


SEQ = "__SEQ__"  # replaced by the request's sequence number by the open-loop generator


def fingerprint(key: str) -> str:
    """16 hex digits derived from `key` (a stand-in for Alertmanager's label hash).

    A templated key keeps the placeholder, so every request of a templated body gets a
    fingerprint of its own.
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return digest[: 16 - len(SEQ)] + SEQ if SEQ in key else digest


def alert(name: str, instance: str, **labels: str) -> dict[str, Any]:
    """One firing alert of an Alertmanager payload."""
    all_labels = {
        "alertname": name,
        "instance": instance,
        "job": "node",
        "service": labels.pop("service", "db"),
        "severity": "critical",
        **labels,
    }
    identity = ",".join(f"{k}={v}" for k, v in sorted(all_labels.items()))
    return {
        "status": "firing",
        "labels": all_labels,
        "annotations": {
            "summary": f"{name} on {instance}",
            "runbook_url": "https://runbooks.example/disk",
        },
        "startsAt": STARTS_AT,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=disk_free_bytes+%3C+1e9",
        "fingerprint": fingerprint(identity),
    }


def body(alerts: list[dict[str, Any]], *, receiver: str = "responder") -> bytes:
    """A whole webhook body for `alerts` (one group, named after the first alert)."""
    name = alerts[0]["labels"]["alertname"]
    return json.dumps(
        {
            "receiver": receiver,
            "status": "firing",
            "alerts": alerts,
            "groupLabels": {"alertname": name},
            "commonLabels": {"alertname": name, "severity": "critical"},
            "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{name}"}}',
            "truncatedAlerts": 0,
        },
        separators=(",", ":"),
    ).encode()


def group(name: str, size: int, *, first: int = 0, **labels: str) -> bytes:
    """A body of `size` alerts named `name` on instances `host-<first>` and up."""
    return body([alert(name, f"host-{first + i}:9100", **labels) for i in range(size)])
