"""Normalising webhook bodies: raw bytes in, a `Delivery` of `Alert` values out (pure, no IO).

Each entry point raises only `PayloadError` (with `field` set to the JSON path at fault) for
input it cannot accept:

- `alertmanager`: `parse_alertmanager(body)` and `parse_grafana(body)`, one `Alert` per
  element of `alerts`, and `label_fingerprint` (Prometheus' label-set fingerprint).
- `sentry`: `parse_sentry(body, resource=..., request_id=...)`, one `Alert`, or `None` for the
  acknowledged-only resources; `sentry_resources` turns each typed Sentry webhook into it.
- `bodies`: what they share: JSON decoding, validation with JSON-path errors, the body digest.
"""
