"""Normalises Alertmanager and Grafana webhook bodies into a `Delivery` of one `Alert` per alert.

Rules (both sources share the Alertmanager v4 shape):

- name: `labels.alertname`, else `commonLabels.alertname`, else `"unnamed"`; the alert's labels
  always hold `alertname` (set to the name when missing or empty).
- status: the alert's own `status`, else the group's. A resolved alert inside a firing group
  stays resolved.
- fingerprint: the alert's `fingerprint`, else Prometheus' own label-set fingerprint of the
  alert's labels (FNV-1a 64 over the sorted `name 0xff value 0xff` bytes, 16 hex digits), so
  pre-0.20 bodies get the id a newer Alertmanager would have sent.
- severity: `labels.severity` when non-empty. Times are UTC; Go's zero time becomes `None`.
- links: `generator`, `alertmanager` (externalURL) and, for Grafana, `silence`, `dashboard`,
  `panel`, `image`; only non-empty http(s) URLs.
- raw: the alert's JSON object as received (less Grafana's base64 `embeddedImage`, which
  would otherwise be copied into every audit row) plus `receiver`, `groupKey`, `externalURL`.
- delivery id: SHA-256 of the body (Alertmanager retries are byte-identical).
"""

from __future__ import annotations

from typing import Any

from responder.core.normalising.bodies import (
    body_digest,
    decode_object,
    first_text,
    http_link,
    validate,
)
from responder.models.alerts import Alert, AlertStatus, Delivery, Source
from responder.models.payloads.alertmanager import AlertmanagerAlert, AlertmanagerPayload
from responder.models.payloads.grafana import GrafanaAlert, GrafanaPayload

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF
_MASK = (1 << 64) - 1
_STATUS = {status.value: status for status in AlertStatus}


def parse_alertmanager(body: bytes) -> Delivery:
    """Parse an Alertmanager webhook body (version 4); raises PayloadError for bad input."""
    document = decode_object(body)
    payload = validate(AlertmanagerPayload, document)
    return _delivery(Source.ALERTMANAGER, body, document, payload)


def parse_grafana(body: bytes) -> Delivery:
    """Parse a Grafana-managed alerting webhook body; raises PayloadError for bad input."""
    document = decode_object(body)
    payload = validate(GrafanaPayload, document)
    return _delivery(Source.GRAFANA, body, document, payload)


def label_fingerprint(labels: dict[str, str]) -> str:
    """Prometheus' `LabelSet.Fingerprint()`: FNV-1a 64 of sorted labels, as 16 hex digits."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for text in (name, labels[name]):
            for byte in text.encode("utf-8", "surrogatepass"):
                digest = ((digest ^ byte) * _FNV_PRIME) & _MASK
            digest = ((digest ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{digest:016x}"


def _delivery(
    source: Source,
    body: bytes,
    document: dict[str, Any],
    payload: AlertmanagerPayload | GrafanaPayload,
) -> Delivery:
    context = {
        "receiver": payload.receiver,
        "groupKey": payload.group_key,
        "externalURL": payload.external_url,
    }
    raw_alerts: list[dict[str, Any]] = document["alerts"]  # validated: a list of objects
    alerts = tuple(
        _alert(source, payload, alert, {**_without_blobs(raw), **context})
        for alert, raw in zip(payload.alerts, raw_alerts, strict=True)
    )
    return Delivery(
        source=source,
        delivery_id=body_digest(body),
        alerts=alerts,
        truncated_alerts=payload.truncated_alerts,
    )


def _alert(
    source: Source,
    payload: AlertmanagerPayload | GrafanaPayload,
    alert: AlertmanagerAlert,
    raw: dict[str, Any],
) -> Alert:
    name = first_text(alert.labels.get("alertname"), payload.common_labels.get("alertname"))
    name = name or "unnamed"
    return Alert.of_validated(
        source=source,
        name=name,
        status=_STATUS[alert.status or payload.status],
        labels={**alert.labels, "alertname": name},
        annotations=dict(alert.annotations),
        severity=alert.labels.get("severity") or None,
        fingerprint=alert.fingerprint or label_fingerprint(alert.labels),
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        links=_links(payload, alert),
        group_key=payload.group_key,
        raw=raw,
    )


def _links(
    payload: AlertmanagerPayload | GrafanaPayload, alert: AlertmanagerAlert
) -> dict[str, str]:
    candidates = {"generator": alert.generator_url, "alertmanager": payload.external_url}
    if isinstance(alert, GrafanaAlert):
        candidates |= {
            "silence": alert.silence_url,
            "dashboard": alert.dashboard_url,
            "panel": alert.panel_url,
            "image": alert.image_url,
        }
    links: dict[str, str] = {}
    for key, url in candidates.items():
        link = http_link(url)
        if link is not None:
            links[key] = link
    return links


_BLOBS = frozenset({"embeddedImage"})


def _without_blobs(raw: dict[str, Any]) -> dict[str, Any]:
    """The raw alert without large binary fields (kept out of the store and audit trail)."""
    if _BLOBS.isdisjoint(raw):
        return raw
    return {k: v for k, v in raw.items() if k not in _BLOBS}
