"""Sentry webhook bodies: integration-platform resources and the legacy webhooks plugin.

Integration-platform bodies are `{action, installation: {uuid}, data: {...}, actor}`; `data`
depends on the `Sentry-Hook-Resource` header (issue, error, event_alert, metric_alert, and the
acknowledged-only installation and comment). The legacy plugin posts the issue and its latest
event at the top level. Only the keys used for normalising are modelled; Sentry ids arrive as
numbers or strings and are kept as strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from responder.models.payloads.alertmanager import Rfc3339Time


def _id_text(value: object) -> object:
    """Sentry sends ids as numbers in some places and strings in others."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _epoch_time(value: object) -> object:
    """Seconds since the epoch (float) to an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value  # strict validation reports the wrong type
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"expected seconds since the epoch: {exc}") from exc


SentryId = Annotated[str, BeforeValidator(_id_text), Field(min_length=1)]
EpochTime = Annotated[datetime | None, BeforeValidator(_epoch_time)]

_THIRD_PARTY = ConfigDict(frozen=True, extra="ignore", strict=True)


class SentryProject(BaseModel):
    """The project an issue belongs to."""

    model_config = _THIRD_PARTY

    id: SentryId | None = None
    slug: str | None = None
    name: str | None = None
    platform: str | None = None


class SentryIssue(BaseModel):
    """`data.issue`: the serialized group plus its URLs."""

    model_config = _THIRD_PARTY

    id: SentryId
    title: str = ""
    short_id: str | None = Field(default=None, alias="shortId")
    culprit: str | None = None
    level: str | None = None
    status: str | None = None
    substatus: str | None = None
    issue_type: str | None = Field(default=None, alias="type")
    platform: str | None = None
    project: SentryProject | None = None
    first_seen: Rfc3339Time = Field(default=None, alias="firstSeen")
    last_seen: Rfc3339Time = Field(default=None, alias="lastSeen")
    permalink: str | None = None
    web_url: str | None = None
    url: str | None = None
    project_url: str | None = None


class SentryEvent(BaseModel):
    """`data.error`, `data.event`, or the legacy plugin's `event`: one event plus URLs."""

    model_config = _THIRD_PARTY

    event_id: str | None = None
    id: SentryId | None = None
    title: str | None = None
    message: str | None = None
    culprit: str | None = None
    level: str | None = None
    platform: str | None = None
    environment: str | None = None
    release: str | None = None
    occurred_at: Rfc3339Time = Field(default=None, alias="datetime")
    timestamp: EpochTime = None
    received: EpochTime = None
    project: SentryId | None = None
    issue_id: SentryId | None = None
    issue_url: str | None = None
    url: str | None = None
    web_url: str | None = None


class SentryAlertRule(BaseModel):
    """`data.metric_alert.alert_rule`."""

    model_config = _THIRD_PARTY

    id: SentryId | None = None
    name: str | None = None
    environment: str | None = None
    dataset: str | None = None
    aggregate: str | None = None
    query: str | None = None
    projects: list[str] = Field(default_factory=list)


class SentryIncident(BaseModel):
    """`data.metric_alert`: the incident. `status` is 1 open, 2 closed, 10 warning, 20 critical."""

    model_config = _THIRD_PARTY

    id: SentryId | None = None
    identifier: SentryId | None = None
    title: str | None = None
    status: int | None = None
    date_started: Rfc3339Time = None
    date_detected: Rfc3339Time = None
    date_closed: Rfc3339Time = None
    alert_rule: SentryAlertRule | None = None
    projects: list[str] = Field(default_factory=list)


class SentryIssueAlert(BaseModel):
    """`data.issue_alert`, present when the alert action has UI-component settings."""

    model_config = _THIRD_PARTY

    id: SentryId | None = None
    title: str | None = None


class SentryIssueData(BaseModel):
    """`data` of an `issue` webhook."""

    model_config = _THIRD_PARTY

    issue: SentryIssue
    resolution_type: str | None = None


class SentryErrorData(BaseModel):
    """`data` of an `error` webhook."""

    model_config = _THIRD_PARTY

    error: SentryEvent


class SentryEventAlertData(BaseModel):
    """`data` of an `event_alert` webhook (an issue alert rule fired)."""

    model_config = _THIRD_PARTY

    event: SentryEvent
    triggered_rule: str | None = None
    issue_alert: SentryIssueAlert | None = None


class SentryMetricAlertData(BaseModel):
    """`data` of a `metric_alert` webhook."""

    model_config = _THIRD_PARTY

    metric_alert: SentryIncident
    description_text: str | None = None
    description_title: str | None = None
    web_url: str | None = None


class SentryInstallationRef(BaseModel):
    """`installation`: which installation of the integration sent this."""

    model_config = _THIRD_PARTY

    uuid: str


class SentryActor(BaseModel):
    """`actor`: the user or application (`sentry`) behind the event."""

    model_config = _THIRD_PARTY

    type: str | None = None
    id: SentryId | None = None
    name: str | None = None


class SentryWebhookBase(BaseModel):
    """The integration-platform keys every resource shares; subclasses type `data`."""

    model_config = _THIRD_PARTY

    action: str
    installation: SentryInstallationRef | None = None
    actor: SentryActor | None = None


class SentryAckWebhook(SentryWebhookBase):
    """Resources that are acknowledged and ignored (installation, comment)."""

    data: dict[str, Any] = Field(default_factory=dict)


class SentryIssueWebhook(SentryWebhookBase):
    """Resource `issue`: created, resolved, assigned, ignored (archived), unresolved."""

    data: SentryIssueData


class SentryErrorWebhook(SentryWebhookBase):
    """Resource `error`: created."""

    data: SentryErrorData


class SentryEventAlertWebhook(SentryWebhookBase):
    """Resource `event_alert`: triggered."""

    data: SentryEventAlertData


class SentryMetricAlertWebhook(SentryWebhookBase):
    """Resource `metric_alert`: critical, warning, resolved, open."""

    data: SentryMetricAlertData


class SentryLegacyWebhook(BaseModel):
    """The legacy webhooks plugin body: issue fields at the top level, plus its latest event."""

    model_config = _THIRD_PARTY

    id: SentryId
    project: SentryId | None = None
    project_slug: str | None = None
    project_name: str | None = None
    logger: str | None = None
    level: str | None = None
    culprit: str | None = None
    message: str | None = None
    url: str | None = None
    triggering_rules: list[str] = Field(default_factory=list)
    event: SentryEvent | None = None
