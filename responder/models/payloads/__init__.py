"""Typed models of the third-party webhook bodies we accept (frozen, `extra="ignore"`, strict).

These describe what senders really post, tolerant of the variants seen in the wild; turning
them into `Alert` values is `responder.core.normalising`'s job.
"""

from __future__ import annotations

from responder.models.payloads.alertmanager import (
    AlertGroupEnvelope,
    AlertmanagerAlert,
    AlertmanagerPayload,
    Rfc3339Time,
    parse_rfc3339,
)
from responder.models.payloads.grafana import GrafanaAlert, GrafanaPayload
from responder.models.payloads.sentry import (
    SentryAckWebhook,
    SentryActor,
    SentryAlertRule,
    SentryErrorData,
    SentryErrorWebhook,
    SentryEvent,
    SentryEventAlertData,
    SentryEventAlertWebhook,
    SentryIncident,
    SentryInstallationRef,
    SentryIssue,
    SentryIssueAlert,
    SentryIssueData,
    SentryIssueWebhook,
    SentryLegacyWebhook,
    SentryMetricAlertData,
    SentryMetricAlertWebhook,
    SentryProject,
    SentryWebhookBase,
)

__all__ = [
    "AlertGroupEnvelope",
    "AlertmanagerAlert",
    "AlertmanagerPayload",
    "GrafanaAlert",
    "GrafanaPayload",
    "Rfc3339Time",
    "SentryAckWebhook",
    "SentryActor",
    "SentryAlertRule",
    "SentryErrorData",
    "SentryErrorWebhook",
    "SentryEvent",
    "SentryEventAlertData",
    "SentryEventAlertWebhook",
    "SentryIncident",
    "SentryInstallationRef",
    "SentryIssue",
    "SentryIssueAlert",
    "SentryIssueData",
    "SentryIssueWebhook",
    "SentryLegacyWebhook",
    "SentryMetricAlertData",
    "SentryMetricAlertWebhook",
    "SentryProject",
    "SentryWebhookBase",
    "parse_rfc3339",
]
