"""Sentry integration-platform and legacy-plugin bodies normalised to Delivery/Alert (or None)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from responder.core.normalising.sentry import parse_sentry
from responder.errors import PayloadError
from responder.models.alerts import Alert, AlertStatus, Delivery, Source
from tests.support.conformance import all_payloads, load

F, R = AlertStatus.FIRING, AlertStatus.RESOLVED
IGNORED = {
    "sentry-docs-installation-created.json": "installation",
    "sentry-docs-comment-created.json": "comment",
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Expected:
    resource: str | None  # the Sentry-Hook-Resource header; None for the legacy plugin
    name: str
    status: AlertStatus
    severity: str | None
    fingerprint: str
    starts_at: datetime | None
    labels: dict[str, str]
    links: dict[str, str] = field(default_factory=dict)
    summary: str | None = None


ZULIP_ISSUE_LABELS = {
    "alertname": "Exception: program has entered an invalid state.",
    "sentry_resource": "issue",
    "project": "zulip-integration-testing",
    "level": "error",
    "issue_id": "1638821441",
    "short_id": "ZULIP-INTEGRATION-TESTING-E",
    "platform": "python",
    "culprit": "__main__ in <module>",
    "issue_type": "error",
}
ZULIP_ISSUE_TITLE = "Exception: program has entered an invalid state."
ZULIP_SEEN = at("2020-04-30T05:54:15.092476")

EXPECTED = {
    "sentry-docs-issue-created.json": Expected(
        "issue",
        "ReferenceError: blooopy is not defined",
        F,
        "error",
        "issue:1170820242",
        at("2019-08-19T20:58:37.391"),
        {
            "alertname": "ReferenceError: blooopy is not defined",
            "sentry_resource": "issue",
            "sentry_action": "created",
            "project": "front-end",
            "level": "error",
            "issue_id": "1170820242",
            "short_id": "FRONT-END-9",
            "platform": "javascript",
            "culprit": "?(runner)",
            "issue_status": "unresolved",
            "issue_type": "error",
        },
        summary="ReferenceError: blooopy is not defined",
    ),
    "zulip-issue-resolved.json": Expected(
        "issue",
        ZULIP_ISSUE_TITLE,
        R,
        "error",
        "issue:1638821441",
        ZULIP_SEEN,
        {**ZULIP_ISSUE_LABELS, "sentry_action": "resolved", "issue_status": "resolved"},
        summary=ZULIP_ISSUE_TITLE,
    ),
    "zulip-issue-ignored.json": Expected(
        "issue",
        ZULIP_ISSUE_TITLE,
        R,
        "error",
        "issue:1638821441",
        ZULIP_SEEN,
        {**ZULIP_ISSUE_LABELS, "sentry_action": "ignored", "issue_status": "ignored"},
        summary=ZULIP_ISSUE_TITLE,
    ),
    "zulip-issue-assigned-to-team.json": Expected(
        "issue",
        ZULIP_ISSUE_TITLE,
        F,
        "error",
        "issue:1638821441",
        ZULIP_SEEN,
        {**ZULIP_ISSUE_LABELS, "sentry_action": "assigned", "issue_status": "unresolved"},
        summary=ZULIP_ISSUE_TITLE,
    ),
    "sentry-docs-error-created.json": Expected(
        "error",
        "ReferenceError: blooopy is not defined",
        F,
        "error",
        "issue:1170820242",
        at("2019-08-19T20:58:37.391"),
        {
            "alertname": "ReferenceError: blooopy is not defined",
            "sentry_resource": "error",
            "sentry_action": "created",
            "project": "front-end",
            "project_id": "1",
            "level": "error",
            "issue_id": "1170820242",
            "event_id": "bb78c1407cea4519aa397afc059c793d",
            "platform": "javascript",
            "culprit": "?(runner)",
        },
        {
            "web": "https://sentry.io/organizations/test-org/issues/1170820242/events/"
            "bb78c1407cea4519aa397afc059c793d/",
            "api": "https://sentry.io/api/0/projects/test-org/front-end/events/"
            "bb78c1407cea4519aa397afc059c793d/",
            "issue": "https://sentry.io/api/0/issues/1170820242/",
        },
        summary="ReferenceError: blooopy is not defined",
    ),
    "sentry-docs-event-alert-triggered.json": Expected(
        "event_alert",
        "Very Important Alert Rule!",
        F,
        "error",
        "issue:1117540176",
        at("2019-08-19T21:06:17.677"),
        {
            "alertname": "Very Important Alert Rule!",
            "sentry_resource": "event_alert",
            "sentry_action": "triggered",
            "project": "front-end",
            "project_id": "1",
            "level": "error",
            "issue_id": "1117540176",
            "event_id": "e4874d664c3540c1a32eab185f12c5ab",
            "platform": "javascript",
            "culprit": "?(<anonymous>)",
            "triggered_rule": "Very Important Alert Rule!",
        },
        {
            "web": "https://sentry.io/organizations/test-org/issues/1117540176/events/"
            "e4874d664c3540c1a32eab185f12c5ab/",
            "api": "https://sentry.io/api/0/projects/test-org/front-end/events/"
            "e4874d664c3540c1a32eab185f12c5ab/",
            "issue": "https://sentry.io/api/0/issues/1117540176/",
        },
        summary="ReferenceError: heck is not defined",
    ),
    # A real 2020 delivery: no issue_id, so the id comes from issue_url.
    "zulip-event-alert-triggered-python.json": Expected(
        "event_alert",
        "Send a webhook payload to Webhook.site",
        F,
        "error",
        "issue:1635244907",
        at("2020-04-28T13:56:05.903736"),
        {
            "alertname": "Send a webhook payload to Webhook.site",
            "sentry_resource": "event_alert",
            "sentry_action": "triggered",
            "project": "zulip-integration-testing",
            "project_id": "5216640",
            "level": "error",
            "issue_id": "1635244907",
            "event_id": "599349254a1447a99774b5310711c1a8",
            "platform": "python",
            "culprit": "__main__ in <module>",
            "triggered_rule": "Send a webhook payload to Webhook.site",
        },
        {
            "web": "https://sentry.io/organizations/hypro999-personal-organization/issues/"
            "1635244907/events/599349254a1447a99774b5310711c1a8/",
            "api": "https://sentry.io/api/0/projects/hypro999-personal-organization/"
            "zulip-integration-testing/events/599349254a1447a99774b5310711c1a8/",
            "issue": "https://sentry.io/api/0/issues/1635244907/",
        },
        summary="Exception: Custom exception!",
    ),
    "sentry-docs-metric-alert-resolved.json": Expected(
        "metric_alert",
        "Too many errors",
        R,
        None,
        "metric_alert:7",
        at("2020-09-13T12:26:40"),
        {
            "alertname": "Too many errors",
            "sentry_resource": "metric_alert",
            "sentry_action": "resolved",
            "project": "bar",
            "alert_rule_id": "7",
            "incident_id": "4",
            "dataset": "events",
        },
        {"web": "https://sentry.io/organizations/baz/alerts/1/"},
        summary="Resolved: Too many errors",
    ),
    # name = message or culprit or event title; message is "" here.
    "zulip-legacy-webhook-plugin-javascript.json": Expected(
        None,
        "debugger eval code",
        F,
        "error",
        "legacy:live:1982047746",
        datetime(2020, 10, 26, 16, 39, 54, 648839, tzinfo=UTC),
        {
            "alertname": "debugger eval code",
            "sentry_resource": "legacy",
            "sentry_action": "triggered",
            "project": "live",
            "level": "error",
            "issue_id": "1982047746",
            "event_id": "f3bf5fc4e354451db9e885a69b2a2b51",
            "culprit": "debugger eval code",
            "platform": "javascript",
            "logger": "javascript",
        },
        {
            "web": "https://sentry.io/organizations/foo-bar-org/issues/1982047746/"
            "?referrer=webhooks_plugin"
        },
        summary='TypeError: can\'t access property "bar", x.foo is undefined',
    ),
}


def doc(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(load(f"sentry/{name}"))
    return value


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def one(body: bytes, resource: str | None, request_id: str | None = "req-1") -> Alert:
    delivery = parse_sentry(body, resource=resource, request_id=request_id)
    assert delivery is not None
    (alert,) = delivery.alerts
    return alert


def test_every_payload_file_has_expectations() -> None:
    names = {path.name for path in all_payloads("sentry")}
    assert len(names) >= 11
    assert names == set(EXPECTED) | set(IGNORED)


@pytest.mark.parametrize("path", all_payloads("sentry"), ids=lambda p: p.name)
@pytest.mark.parametrize("with_header", [True, False], ids=["header", "inferred"])
def test_payload_normalises_to_expected_alert(path: Path, with_header: bool) -> None:
    body = path.read_bytes()
    if path.name in IGNORED:
        resource = IGNORED[path.name] if with_header else None
        assert parse_sentry(body, resource=resource, request_id="r") is None
        return
    expected = EXPECTED[path.name]
    delivery = parse_sentry(
        body, resource=expected.resource if with_header else None, request_id="req-42"
    )
    assert isinstance(delivery, Delivery)
    assert delivery.source is Source.SENTRY
    assert delivery.delivery_id == "req-42"
    assert delivery.truncated_alerts == 0
    (alert,) = delivery.alerts
    assert alert.source is Source.SENTRY
    assert alert.name == expected.name
    assert alert.status is expected.status
    assert alert.severity == expected.severity
    assert alert.fingerprint == expected.fingerprint
    assert alert.starts_at == expected.starts_at
    assert alert.labels == expected.labels
    assert alert.links == expected.links
    assert alert.annotations.get("summary") == expected.summary
    assert all(isinstance(value, str) and value for value in alert.labels.values())
    assert alert.raw["sentry_resource"] == (expected.resource or "legacy")
    assert {k: v for k, v in alert.raw.items() if k != "sentry_resource"} == json.loads(body)


def test_delivery_id_is_body_digest_without_request_id() -> None:
    body = load("sentry/sentry-docs-issue-created.json")
    for request_id in (None, ""):
        delivery = parse_sentry(body, resource="issue", request_id=request_id)
        assert delivery is not None
        assert delivery.delivery_id == hashlib.sha256(body).hexdigest()


def test_resource_header_is_case_and_space_insensitive() -> None:
    body = load("sentry/zulip-issue-resolved.json")
    assert one(body, " Issue ").status is R


def test_issue_unresolved_is_a_new_firing_episode() -> None:
    document = doc("zulip-issue-resolved.json")
    document["action"] = "unresolved"
    document["data"].pop("resolution_type")
    document["data"]["issue"].update(
        status="unresolved", substatus="regressed", lastSeen="2020-05-02T08:00:00.5Z"
    )
    alert = one(encode(document), "issue")
    assert alert.status is F
    assert alert.labels["sentry_action"] == "unresolved"
    assert alert.labels["issue_status"] == "unresolved"
    assert alert.starts_at == at("2020-05-02T08:00:00.5")
    resolved = one(load("sentry/zulip-issue-resolved.json"), "issue")
    assert alert.fingerprint == resolved.fingerprint
    assert alert.identity != resolved.identity


def test_issue_archived_is_resolved() -> None:
    document = doc("zulip-issue-ignored.json")
    document["action"] = "archived"
    assert one(encode(document), "issue").status is R


@pytest.mark.parametrize(
    ("action", "status", "severity"),
    [("critical", F, "critical"), ("warning", F, "warning"), ("open", F, None)],
)
def test_metric_alert_actions(action: str, status: AlertStatus, severity: str | None) -> None:
    document = doc("sentry-docs-metric-alert-resolved.json")
    document["action"] = action
    document["data"]["metric_alert"]["status"] = 1  # open
    document["data"]["description_title"] = f"{action.title()}: Too many errors"
    alert = one(encode(document), "metric_alert")
    assert (alert.status, alert.severity) == (status, severity)
    assert alert.fingerprint == "metric_alert:7"
    assert alert.labels.get("level") == severity
    assert alert.annotations["summary"] == f"{action.title()}: Too many errors"
    assert (
        alert.annotations["description"]
        == "1000 events in the last 10 minutes\\nFilter: level:error"
    )


@pytest.mark.parametrize(("status", "severity"), [(20, "critical"), (10, "warning"), (2, None)])
def test_metric_alert_open_takes_last_known_level(status: int, severity: str | None) -> None:
    document = doc("sentry-docs-metric-alert-resolved.json")
    document["action"] = "open"
    document["data"]["metric_alert"]["status"] = status
    document["data"]["description_title"] = "Too many errors"
    assert one(encode(document), "metric_alert").severity == severity


def test_metric_alert_resolved_has_end_and_falls_back_to_incident_id() -> None:
    document = doc("sentry-docs-metric-alert-resolved.json")
    incident = document["data"]["metric_alert"]
    incident["date_closed"] = "2020-09-13T12:36:40.000000Z"
    del incident["alert_rule"]
    alert = one(encode(document), "metric_alert")
    assert alert.fingerprint == "metric_alert:4"
    assert alert.name == "Resolved: Too many errors"  # description_title fallback
    assert alert.ends_at == at("2020-09-13T12:36:40")
    assert alert.labels["project"] == "bar"  # from the incident's projects


def test_error_without_issue_uses_event_id() -> None:
    document = doc("sentry-docs-error-created.json")
    del document["data"]["error"]["issue_id"]
    del document["data"]["error"]["issue_url"]
    alert = one(encode(document), "error")
    assert alert.fingerprint == "event:bb78c1407cea4519aa397afc059c793d"
    assert "issue_id" not in alert.labels


def test_event_alert_falls_back_to_event_title() -> None:
    document = doc("zulip-event-alert-triggered-python.json")
    del document["data"]["triggered_rule"]
    alert = one(encode(document), "event_alert")
    assert alert.name == "Exception: Custom exception!"
    assert "triggered_rule" not in alert.labels


def test_legacy_body_takes_message_first_and_event_title_last() -> None:
    document = doc("zulip-legacy-webhook-plugin-javascript.json")
    document["message"] = "something broke"
    assert one(encode(document), None).name == "something broke"
    document["message"] = ""
    document["culprit"] = ""
    alert = one(encode(document), None)
    assert alert.name == 'TypeError: can\'t access property "bar", x.foo is undefined'


def test_ignored_resources_with_any_action() -> None:
    for action in ("created", "deleted", "updated"):
        document = doc("sentry-docs-comment-created.json")
        document["action"] = action
        assert parse_sentry(encode(document), resource="comment", request_id=None) is None


def problem(body: bytes, resource: str | None) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse_sentry(body, resource=resource, request_id=None)
    return caught.value


def test_unknown_resource_names_the_supported_ones() -> None:
    error = problem(load("sentry/sentry-docs-issue-created.json"), "seer")
    for name in ("comment", "error", "event_alert", "installation", "issue", "metric_alert"):
        assert name in str(error)


@pytest.mark.parametrize(
    ("name", "resource", "action"),
    [
        ("zulip-issue-resolved.json", "issue", "deleted"),
        ("sentry-docs-error-created.json", "error", "resolved"),
        ("sentry-docs-event-alert-triggered.json", "event_alert", "created"),
        ("sentry-docs-metric-alert-resolved.json", "metric_alert", "triggered"),
    ],
)
def test_unknown_action_is_refused(name: str, resource: str, action: str) -> None:
    document = doc(name)
    document["action"] = action
    error = problem(encode(document), resource)
    assert error.field == "action"
    assert "expected one of" in str(error)


@pytest.mark.parametrize(
    ("name", "resource", "mutate", "field"),
    [
        ("sentry-docs-issue-created.json", "metric_alert", lambda d: None, "data.metric_alert"),
        (
            "sentry-docs-issue-created.json",
            "issue",
            lambda d: d["data"]["issue"].pop("id"),
            "data.issue.id",
        ),
        (
            "sentry-docs-issue-created.json",
            "issue",
            lambda d: d["data"]["issue"].update(id=""),
            "data.issue.id",
        ),
        ("sentry-docs-issue-created.json", "issue", lambda d: d.pop("action"), "action"),
        (
            "sentry-docs-issue-created.json",
            "issue",
            lambda d: d["data"]["issue"].update(firstSeen="soon"),
            "data.issue.firstSeen",
        ),
        (
            "sentry-docs-issue-created.json",
            "issue",
            lambda d: d["data"]["issue"].update(project="front-end"),
            "data.issue.project",
        ),
        (
            "sentry-docs-error-created.json",
            "error",
            lambda d: d["data"]["error"].update(timestamp="x", datetime=None),
            "data.error.timestamp",
        ),
        (
            "sentry-docs-error-created.json",
            "error",
            lambda d: [d["data"]["error"].pop(k) for k in ("issue_id", "issue_url", "event_id")],
            "data.error.event_id",
        ),
        (
            "sentry-docs-metric-alert-resolved.json",
            "metric_alert",
            lambda d: d["data"]["metric_alert"].update(status="closed"),
            "data.metric_alert.status",
        ),
        (
            "sentry-docs-metric-alert-resolved.json",
            "metric_alert",
            lambda d: [d["data"]["metric_alert"].pop(k) for k in ("alert_rule", "id")],
            "data.metric_alert.alert_rule.id",
        ),
        (
            "zulip-legacy-webhook-plugin-javascript.json",
            None,
            lambda d: [d.pop(k) for k in ("project", "project_slug")],
            "project_slug",
        ),
        ("zulip-legacy-webhook-plugin-javascript.json", None, lambda d: d.pop("id"), "id"),
        ("sentry-docs-issue-created.json", None, lambda d: d.update(data={"other": 1}), "data"),
        ("sentry-docs-issue-created.json", None, lambda d: d.update(data=[]), "data"),
        ("sentry-docs-comment-created.json", "comment", lambda d: d.update(data=3), "data"),
    ],
)
def test_bad_fields_name_their_json_path(
    name: str, resource: str | None, mutate: Any, field: str
) -> None:
    document = doc(name)
    mutate(document)
    assert problem(encode(document), resource).field == field


@pytest.mark.parametrize("body", [b"", b"[1]", b"{bad", b"null"])
def test_undecodable_bodies(body: bytes) -> None:
    assert problem(body, "issue").field is None
