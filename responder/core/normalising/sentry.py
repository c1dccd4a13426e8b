"""Normalises a Sentry webhook body into a `Delivery` of one `Alert`, or `None` to ignore it.

Which resource a body is comes from the `Sentry-Hook-Resource` header; when it is missing it
is inferred from the keys of `data` (issue, error, event, metric_alert, installation,
comment), and a body with no `data` or `action` but issue fields at the top level is the
legacy webhooks plugin. `installation` and `comment` are acknowledged and ignored (`None`).
The delivery id is the `Request-ID` header, else the SHA-256 of the body.
"""

from __future__ import annotations

from typing import Any

from responder.core.normalising.bodies import body_digest, decode_object, validate
from responder.core.normalising.sentry_resources import (
    error_alert,
    event_alert,
    issue_alert,
    legacy_alert,
    metric_alert,
)
from responder.errors import PayloadError
from responder.models.alerts import Alert, Delivery, Source
from responder.models.payloads.sentry import (
    SentryAckWebhook,
    SentryErrorWebhook,
    SentryEventAlertWebhook,
    SentryIssueWebhook,
    SentryLegacyWebhook,
    SentryMetricAlertWebhook,
)

LEGACY = "legacy"
"""Pseudo-resource for the legacy webhooks plugin body (it sends no Sentry-Hook-* headers)."""
ACKNOWLEDGED = frozenset({"installation", "comment"})
ALERTING = ("issue", "error", "event_alert", "metric_alert")
SUPPORTED = tuple(sorted((*ALERTING, *ACKNOWLEDGED)))
_DATA_KEYS = (
    ("issue", "issue"),
    ("error", "error"),
    ("event", "event_alert"),
    ("metric_alert", "metric_alert"),
    ("installation", "installation"),
    ("comment", "comment"),
)
_LEGACY_KEYS = ("event", "project", "project_slug", "triggering_rules", "culprit")


def parse_sentry(body: bytes, *, resource: str | None, request_id: str | None) -> Delivery | None:
    """Parse a Sentry webhook body; `None` means acknowledged and ignored.

    `resource` is the `Sentry-Hook-Resource` header and `request_id` the `Request-ID` header,
    either absent. Raises PayloadError for bad input or an unsupported resource or action.
    """
    document = decode_object(body)
    kind = sentry_resource(document, resource)
    if kind in ACKNOWLEDGED:
        validate(SentryAckWebhook, document)
        return None
    raw = {**document, "sentry_resource": kind}
    alert = _normalise(kind, document, raw)
    return Delivery(
        source=Source.SENTRY,
        delivery_id=request_id or body_digest(body),
        alerts=(alert,),
    )


def sentry_resource(document: dict[str, Any], header: str | None) -> str:
    """The resource a body is: the header when given, else inferred from the body."""
    if header is not None and header.strip():
        name = header.strip().lower()
        if name not in SUPPORTED:
            raise PayloadError(
                f"unsupported Sentry-Hook-Resource {name[:40]!r}; "
                f"supported resources: {', '.join(SUPPORTED)}"
            )
        return name
    data = document.get("data")
    if isinstance(data, dict):
        for key, name in _DATA_KEYS:
            if key in data:
                return name
        raise PayloadError(
            "cannot tell the Sentry resource: send the Sentry-Hook-Resource header "
            f"({', '.join(SUPPORTED)}) or a data object holding one of "
            f"{', '.join(key for key, _ in _DATA_KEYS)}",
            field="data",
        )
    if data is None and "action" not in document and any(k in document for k in _LEGACY_KEYS):
        return LEGACY
    raise PayloadError(
        "expected a Sentry integration webhook (an object with action and data) "
        "or a legacy webhooks-plugin body (with id, project and event)",
        field="data",
    )


def _normalise(kind: str, document: dict[str, Any], raw: dict[str, Any]) -> Alert:
    """Validate the body against the resource's model, then build its alert."""
    match kind:
        case "issue":
            return issue_alert(validate(SentryIssueWebhook, document), raw)
        case "error":
            return error_alert(validate(SentryErrorWebhook, document), raw)
        case "event_alert":
            return event_alert(validate(SentryEventAlertWebhook, document), raw)
        case "metric_alert":
            return metric_alert(validate(SentryMetricAlertWebhook, document), raw)
        case _:
            return legacy_alert(validate(SentryLegacyWebhook, document), raw)
