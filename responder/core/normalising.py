"""Normalising webhook bodies: the one entry point from raw bytes to `Delivery`/`Alert` values.

Pure functions, no IO. Each raises only `PayloadError` (with `field` set to the JSON path at
fault) for input it cannot accept:

- `parse_alertmanager(body)` and `parse_grafana(body)`: one `Alert` per element of `alerts`
  (rules in `normalising_alertmanager`).
- `parse_sentry(body, resource=..., request_id=...)`: one `Alert`, or `None` for the
  acknowledged-only resources (rules in `normalising_sentry` and
  `normalising_sentry_resources`).
"""

from __future__ import annotations

from responder.core.normalising_alertmanager import (
    label_fingerprint,
    parse_alertmanager,
    parse_grafana,
)
from responder.core.normalising_sentry import parse_sentry, sentry_resource

__all__ = [
    "label_fingerprint",
    "parse_alertmanager",
    "parse_grafana",
    "parse_sentry",
    "sentry_resource",
]
