"""Turns each typed Sentry webhook (issue, error, event_alert, metric_alert, legacy) into an Alert.

Every Sentry alert has `alertname` (= name), `sentry_resource` and `sentry_action` labels, plus
the scalar identifiers the body carries (`project` slug, `level`, `issue_id`, `event_id`,
`platform`, `culprit`, `environment`...), all strings; empty ones are left out. Links: `web`
(the page in Sentry), `api` (the resource's API URL), `issue` (the issue's API URL),
`project`. Annotations: `summary` and `description` when the body has text for them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from responder.core.normalising.bodies import first_text, http_link
from responder.errors import PayloadError
from responder.models.alerts import Alert, AlertStatus, Source
from responder.models.payloads.sentry import (
    SentryErrorWebhook,
    SentryEvent,
    SentryEventAlertWebhook,
    SentryIncident,
    SentryIssueWebhook,
    SentryLegacyWebhook,
    SentryMetricAlertWebhook,
)

FIRING, RESOLVED = AlertStatus.FIRING, AlertStatus.RESOLVED
ISSUE_ACTIONS = {
    "created": FIRING,
    "unresolved": FIRING,
    "assigned": FIRING,
    "resolved": RESOLVED,
    "ignored": RESOLVED,  # what the code sends for the docs' "archived"
    "archived": RESOLVED,
}
METRIC_ACTIONS = {"critical": FIRING, "warning": FIRING, "open": FIRING, "resolved": RESOLVED}
_INCIDENT_SEVERITY = {20: "critical", 10: "warning"}  # sentry IncidentStatus CRITICAL, WARNING
_ISSUE_IN_URL = re.compile(r"/issues/(\d+)/")
_PROJECT_IN_API_URL = re.compile(r"/api/0/projects/[^/]+/([^/]+)/events/")


def issue_alert(hook: SentryIssueWebhook, raw: dict[str, Any]) -> Alert:
    """`issue`: one alert per Sentry issue (fingerprint `issue:<id>`)."""
    status = _action_status(hook.action, ISSUE_ACTIONS, "issue")
    issue = hook.data.issue
    project = issue.project
    name = first_text(issue.title, issue.short_id) or "unnamed"
    labels = {
        "project": project.slug if project else None,
        "level": issue.level,
        "issue_id": issue.id,
        "short_id": issue.short_id,
        "platform": first_text(issue.platform, project.platform if project else None),
        "culprit": issue.culprit,
        "issue_status": issue.status,
        "issue_type": issue.issue_type,
    }
    # A regression ("unresolved") is a new firing episode: it starts at the latest event.
    started = issue.last_seen if hook.action == "unresolved" else issue.first_seen
    return sentry_alert(
        resource="issue",
        action=hook.action,
        name=name,
        status=status,
        labels=labels,
        severity=issue.level,
        fingerprint=f"issue:{issue.id}",
        starts_at=started or issue.last_seen,
        links={
            "web": first_text(issue.web_url, issue.permalink),
            "api": issue.url,
            "project": issue.project_url,
        },
        annotations={"summary": issue.title, "description": issue.culprit},
        raw=raw,
    )


def error_alert(hook: SentryErrorWebhook, raw: dict[str, Any]) -> Alert:
    """`error`: one event; its fingerprint is its issue's, else the event's own."""
    _action_status(hook.action, {"created": FIRING}, "error")
    event = hook.data.error
    name = first_text(event.title, event.message) or "unnamed"
    return _event_alert("error", hook.action, name, event, "data.error", {}, raw)


def event_alert(hook: SentryEventAlertWebhook, raw: dict[str, Any]) -> Alert:
    """`event_alert`: an issue alert rule fired for an event; named after the rule."""
    _action_status(hook.action, {"triggered": FIRING}, "event_alert")
    data = hook.data
    rule = first_text(data.triggered_rule, data.issue_alert.title if data.issue_alert else None)
    name = first_text(data.triggered_rule, data.event.title) or "unnamed"
    extra = {"triggered_rule": rule}
    return _event_alert("event_alert", hook.action, name, data.event, "data.event", extra, raw)


def metric_alert(hook: SentryMetricAlertWebhook, raw: dict[str, Any]) -> Alert:
    """`metric_alert`: one alert per alert rule (fingerprint `metric_alert:<rule id>`)."""
    status = _action_status(hook.action, METRIC_ACTIONS, "metric_alert")
    data = hook.data
    incident = data.metric_alert
    rule = incident.alert_rule
    key = first_text(rule.id if rule else None, incident.id)
    if key is None:
        raise PayloadError(
            "expected an alert rule id or an incident id", field="data.metric_alert.alert_rule.id"
        )
    severity = _metric_severity(hook.action, incident, data.description_title)
    projects = (rule.projects if rule else []) or incident.projects
    labels = {
        "project": projects[0] if len(projects) == 1 else None,
        "level": severity,
        "alert_rule_id": rule.id if rule else None,
        "incident_id": incident.id,
        "environment": rule.environment if rule else None,
        "dataset": rule.dataset if rule else None,
    }
    name = first_text(rule.name if rule else None, data.description_title, incident.title)
    return sentry_alert(
        resource="metric_alert",
        action=hook.action,
        name=name or "unnamed",
        status=status,
        labels=labels,
        severity=severity,
        fingerprint=f"metric_alert:{key}",
        starts_at=incident.date_started or incident.date_detected,
        ends_at=incident.date_closed if status is RESOLVED else None,
        links={"web": data.web_url},
        annotations={"summary": data.description_title, "description": data.description_text},
        raw=raw,
    )


def legacy_alert(hook: SentryLegacyWebhook, raw: dict[str, Any]) -> Alert:
    """Legacy webhooks plugin: fingerprint `legacy:<project>:<issue id>`, always firing."""
    project = first_text(hook.project_slug, hook.project)
    if project is None:
        raise PayloadError("expected the project slug", field="project_slug")
    event = hook.event or SentryEvent()
    name = first_text(hook.message, hook.culprit, event.title) or "unnamed"
    level = first_text(hook.level, event.level)
    labels = {
        "project": project,
        "level": level,
        "issue_id": hook.id,
        "event_id": first_text(event.event_id, event.id),
        "culprit": first_text(hook.culprit, event.culprit),
        "platform": event.platform,
        "environment": event.environment,
        "logger": hook.logger,
    }
    return sentry_alert(
        resource="legacy",
        action="triggered",
        name=name,
        status=FIRING,
        labels=labels,
        severity=level,
        fingerprint=f"legacy:{project}:{hook.id}",
        starts_at=event.occurred_at or event.timestamp or event.received,
        links={"web": hook.url},
        annotations={"summary": first_text(event.title, hook.message), "description": hook.culprit},
        raw=raw,
    )


def _event_alert(
    resource: str,
    action: str,
    name: str,
    event: SentryEvent,
    path: str,
    extra: dict[str, str | None],
    raw: dict[str, Any],
) -> Alert:
    """Shared by `error` and `event_alert`, whose `data` carries one event."""
    found = _ISSUE_IN_URL.search(event.issue_url or "")
    issue_id = first_text(event.issue_id, found.group(1) if found else None)
    if issue_id is not None:
        fingerprint = f"issue:{issue_id}"
    elif event.event_id:
        fingerprint = f"event:{event.event_id}"
    else:
        raise PayloadError("expected an issue_id, issue_url or event_id", field=f"{path}.event_id")
    slug = _PROJECT_IN_API_URL.search(event.url or "")
    labels = {
        "project": slug.group(1) if slug else None,
        "project_id": event.project,
        "level": event.level,
        "issue_id": issue_id,
        "event_id": event.event_id,
        "platform": event.platform,
        "culprit": event.culprit,
        "environment": event.environment,
        "release": event.release,
        **extra,
    }
    return sentry_alert(
        resource=resource,
        action=action,
        name=name,
        status=FIRING,
        labels=labels,
        severity=event.level,
        fingerprint=fingerprint,
        starts_at=event.occurred_at or event.timestamp or event.received,
        links={"web": event.web_url, "api": event.url, "issue": event.issue_url},
        annotations={"summary": event.title, "description": event.culprit},
        raw=raw,
    )


def sentry_alert(
    *,
    resource: str,
    action: str,
    name: str,
    status: AlertStatus,
    labels: dict[str, str | None],
    severity: str | None,
    fingerprint: str,
    starts_at: datetime | None,
    links: dict[str, str | None],
    annotations: dict[str, str | None],
    raw: dict[str, Any],
    ends_at: datetime | None = None,
) -> Alert:
    """Build the Alert, dropping empty labels, annotations and non-http(s) links."""
    kept = {"alertname": name, "sentry_resource": resource, "sentry_action": action}
    kept |= {key: value for key, value in labels.items() if value and key not in kept}
    urls = {key: link for key, url in links.items() if (link := http_link(url)) is not None}
    return Alert(
        source=Source.SENTRY,
        name=name,
        status=status,
        labels=kept,
        annotations={key: value for key, value in annotations.items() if value},
        severity=severity or None,
        fingerprint=fingerprint,
        starts_at=starts_at,
        ends_at=ends_at,
        links=urls,
        raw=raw,
    )


def _action_status(action: str, known: dict[str, AlertStatus], resource: str) -> AlertStatus:
    """The status an action means; an action we do not know is refused, not guessed."""
    if action not in known:
        supported = ", ".join(sorted(known))
        raise PayloadError(
            f"unsupported {resource} action {action[:40]!r}; expected one of: {supported}",
            field="action",
        )
    return known[action]


def _metric_severity(action: str, incident: SentryIncident, title: str | None) -> str | None:
    """`critical`/`warning` from the action, else the last level the incident reached."""
    if action in ("critical", "warning"):
        return action
    if incident.status is not None and incident.status in _INCIDENT_SEVERITY:
        return _INCIDENT_SEVERITY[incident.status]
    prefix = (title or "").partition(":")[0].strip().lower()
    return prefix if prefix in ("critical", "warning") else None
