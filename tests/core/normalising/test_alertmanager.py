"""Alertmanager webhook bodies (captured and from public repos) normalised to Delivery/Alert."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from responder.core.normalising.alertmanager import label_fingerprint, parse_alertmanager
from responder.errors import PayloadError
from responder.models.alerts import AlertStatus, Source
from tests.support.conformance import all_payloads, load

F, R = AlertStatus.FIRING, AlertStatus.RESOLVED
AM = "http://127.0.0.1:47093"
LATENCY_GEN = "http://127.0.0.1:47090/graph?g0.expr=latency_p99+%3E+0.5"
ICMP_GEN = (
    "http://9ed35ff90bf8:9090/graph?g0.expr="
    "probe_success%7Bjob%3D%22blackbox-icmp%22%7D+%3D%3D+0&g0.tab=1"
)
ICMP_KEY = (
    '{}/{severity=~"^(?:^(critical|major|minor|warning|informational)$)$"}'
    ':{alertname="ICMP ping failed"}'
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Expected:
    name: str
    statuses: tuple[AlertStatus, ...]
    fingerprints: tuple[str, ...]
    severity: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    group_key: str
    links: dict[str, str]
    truncated: int = 0
    receiver: str = "responder-bearer"


EXPECTED = {
    "captured-amtool-firing.json": Expected(
        "AmtoolTest",
        (F,),
        ("9220e3e589c4fc05",),
        "info",
        at("2026-11-23T10:40:22.768121"),
        None,
        '{}:{alertname="AmtoolTest"}',
        {"alertmanager": AM},
    ),
    "captured-basic-auth.json": Expected(
        "CertExpiring",
        (F,),
        ("d3a964b1112f039c",),
        "warning",
        at("2026-11-23T10:39:33.404"),
        None,
        '{}/{test="basic"}:{alertname="CertExpiring"}',
        {"alertmanager": AM},
        receiver="responder-basic",
    ),
    "captured-firing-grouped-3.json": Expected(
        "HighLatency",
        (F, F, F),
        ("9771930b3f8bdead", "70167787986051c6", "accccd29090ee237"),
        "warning",
        at("2026-11-23T10:39:14.32"),
        None,
        '{}:{alertname="HighLatency"}',
        {"generator": LATENCY_GEN, "alertmanager": AM},
    ),
    "captured-firing-old-startsat-immediate.json": Expected(
        "BackupMissed",
        (F,),
        ("0148b3fc3d9393d5",),
        "warning",
        at("2026-11-23T10:29:46.971"),
        None,
        '{}:{alertname="BackupMissed"}',
        {"alertmanager": AM},
    ),
    "captured-firing-single.json": Expected(
        "DiskFull",
        (F,),
        ("2514e371eeb5991e",),
        "critical",
        at("2026-11-23T10:39:08.29"),
        None,
        '{}:{alertname="DiskFull"}',
        {
            "generator": "http://127.0.0.1:47090/graph?g0.expr=disk_free_bytes+%3C+1e9",
            "alertmanager": AM,
        },
    ),
    "captured-prometheus-firing.json": Expected(
        "AlwaysFiring",
        (F,),
        ("06b7c8d1f34e9ab0",),
        "info",
        at("2026-11-23T10:40:01.111"),
        None,
        '{}:{alertname="AlwaysFiring"}',
        {
            "generator": "http://127.0.0.1:47090/graph?g0.expr=vector%281%29+%3E+0&g0.tab=1",
            "alertmanager": AM,
        },
    ),
    "captured-resolved-grouped-rest.json": Expected(
        "HighLatency",
        (R, R),
        ("9771930b3f8bdead", "accccd29090ee237"),
        "warning",
        at("2026-11-23T10:39:14.32"),
        at("2026-11-23T10:39:20.348"),
        '{}:{alertname="HighLatency"}',
        {"generator": LATENCY_GEN, "alertmanager": AM},
    ),
    "captured-resolved-single.json": Expected(
        "DiskFull",
        (R,),
        ("2514e371eeb5991e",),
        "critical",
        at("2026-11-23T10:39:08.29"),
        at("2026-11-23T10:39:11.302"),
        '{}:{alertname="DiskFull"}',
        {
            "generator": "http://127.0.0.1:47090/graph?g0.expr=disk_free_bytes+%3C+1e9",
            "alertmanager": AM,
        },
    ),
    "captured-retry-route-no-send-resolved.json": Expected(
        "QueueBacklog",
        (F,),
        ("8d25a03dfea7a6b1",),
        "warning",
        at("2026-11-23T10:39:29.392"),
        None,
        '{}/{test="retry"}:{alertname="QueueBacklog"}',
        {"alertmanager": AM},
        receiver="responder-retry",
    ),
    "captured-truncated-firing.json": Expected(
        "PodCrashLooping",
        (F, F),
        ("e5678289ae84956b", "630f3e1c3061c274"),
        "critical",
        at("2026-11-23T10:39:23.363"),
        None,
        '{}/{test="truncate"}:{alertname="PodCrashLooping"}',
        {"alertmanager": AM},
        truncated=3,
        receiver="responder-truncate",
    ),
    # Pre-0.20: no fingerprint in the body, so Prometheus' label-set fingerprint is computed.
    "repo-alertmonitor-firing-grouped-3-pre-v0.20.json": Expected(
        "ICMP ping failed",
        (F, F, F),
        ("4a110cc8dbe76532", "e92130f1a362a046", "1e1c2fe4c8293484"),
        "major",
        at("2019-09-27T16:27:56.612666"),
        None,
        ICMP_KEY,
        {"generator": ICMP_GEN, "alertmanager": "http://:9093"},
        receiver="alertmonitor_swarm",
    ),
    # Hand-edited: resolved, but endsAt is still Go's zero time.
    "repo-alertmonitor-resolved-grouped-3-pre-v0.20.json": Expected(
        "ICMP ping failed",
        (R, R, R),
        ("4a110cc8dbe76532", "e92130f1a362a046", "1e1c2fe4c8293484"),
        "major",
        at("2019-09-27T16:27:56.612666"),
        None,
        ICMP_KEY,
        {"generator": ICMP_GEN, "alertmanager": "http://:9093"},
        receiver="alertmonitor_swarm",
    ),
    # No per-alert status/fingerprint/generatorURL; startsAt has nanoseconds and -05:00.
    "repo-prometheus-msteams-firing-minimal.json": Expected(
        "high_memory_load",
        (F,),
        ("b29784719d6a11e6",),
        "warning",
        at("2018-03-07T11:33:21.873077"),
        None,
        '{}:{alertname="high_memory_load"}',
        {"alertmanager": "http://docker.for.mac.host.internal:9093"},
        receiver="teams_proxy",
    ),
}


def doc(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(load(f"alertmanager/{name}"))
    return value


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_every_payload_file_has_expectations() -> None:
    names = {path.name for path in all_payloads("alertmanager")}
    assert len(names) >= 13
    assert names == set(EXPECTED)


@pytest.mark.parametrize("path", all_payloads("alertmanager"), ids=lambda p: p.name)
def test_payload_normalises_to_expected_alerts(path: Path) -> None:
    body = path.read_bytes()
    expected = EXPECTED[path.name]
    delivery = parse_alertmanager(body)
    document = json.loads(body)

    assert delivery.source is Source.ALERTMANAGER
    assert delivery.delivery_id == hashlib.sha256(body).hexdigest()
    assert delivery.truncated_alerts == expected.truncated
    assert tuple(a.status for a in delivery.alerts) == expected.statuses
    assert tuple(a.fingerprint for a in delivery.alerts) == expected.fingerprints
    for alert, raw_alert in zip(delivery.alerts, document["alerts"], strict=True):
        assert alert.source is Source.ALERTMANAGER
        assert alert.name == expected.name
        assert alert.labels == raw_alert["labels"]
        assert alert.labels["alertname"] == alert.name
        assert alert.annotations == raw_alert["annotations"]
        assert alert.severity == expected.severity
        assert alert.group_key == expected.group_key
        assert alert.links == expected.links
        assert alert.fingerprint == label_fingerprint(raw_alert["labels"])
        assert alert.starts_at is not None
        assert alert.starts_at.utcoffset() is not None
        assert alert.raw == {
            **raw_alert,
            "receiver": expected.receiver,
            "groupKey": expected.group_key,
            "externalURL": document["externalURL"],
        }
    first = delivery.alerts[0]
    assert first.starts_at == expected.starts_at
    assert first.ends_at == expected.ends_at


@pytest.mark.parametrize("path", all_payloads("alertmanager"), ids=lambda p: p.name)
def test_label_fingerprint_is_alertmanagers_own(path: Path) -> None:
    for raw_alert in json.loads(path.read_bytes())["alerts"]:
        if "fingerprint" in raw_alert:
            assert label_fingerprint(raw_alert["labels"]) == raw_alert["fingerprint"]


def test_label_fingerprint_of_no_labels_is_the_fnv_offset() -> None:
    assert label_fingerprint({}) == "cbf29ce484222325"


def test_nanosecond_start_is_truncated_to_microseconds() -> None:
    alert = parse_alertmanager(load("alertmanager/captured-amtool-firing.json")).alerts[0]
    assert alert.starts_at == datetime(2026, 11, 23, 10, 40, 22, 768121, tzinfo=UTC)
    assert "generator" not in alert.links  # generatorURL is ""


def test_go_escaped_characters_are_decoded() -> None:
    alert = parse_alertmanager(load("alertmanager/captured-prometheus-firing.json")).alerts[0]
    assert alert.annotations["summary"] == "always-firing test alert (vector(1) > 0)"
    assert alert.links["generator"].endswith("+%3E+0&g0.tab=1")


def test_minimal_fixture_takes_group_status_and_computes_fingerprint() -> None:
    alert = parse_alertmanager(load("repo-prometheus-msteams-firing-minimal.json")).alerts[0]
    assert alert.status is AlertStatus.FIRING
    assert alert.fingerprint == "b29784719d6a11e6"
    assert alert.labels["instance"] == "instance-with-hyphen_and_underscore"
    assert alert.starts_at == datetime(2018, 3, 7, 11, 33, 21, 873077, tzinfo=UTC)


def test_old_firing_and_resolved_bodies_share_fingerprints() -> None:
    firing = parse_alertmanager(load("repo-alertmonitor-firing-grouped-3-pre-v0.20.json"))
    resolved = parse_alertmanager(load("repo-alertmonitor-resolved-grouped-3-pre-v0.20.json"))
    assert [a.fingerprint for a in firing.alerts] == [a.fingerprint for a in resolved.alerts]
    assert len({a.fingerprint for a in firing.alerts}) == 3
    assert [a.labels["instance"] for a in resolved.alerts] == [
        "172.29.254.30",
        "172.29.254.50",
        "172.29.254.66",
    ]


def test_resolved_alert_inside_firing_group_stays_resolved() -> None:
    document = doc("captured-firing-grouped-3.json")
    document["alerts"][1]["status"] = "resolved"
    document["alerts"][1]["endsAt"] = "2026-11-23T10:39:20.348Z"
    delivery = parse_alertmanager(encode(document))
    assert [a.status for a in delivery.alerts] == [F, R, F]
    assert delivery.alerts[1].ends_at == at("2026-11-23T10:39:20.348")
    assert delivery.alerts[0].ends_at is None


def test_missing_alert_status_falls_back_to_resolved_group() -> None:
    document = doc("captured-resolved-single.json")
    del document["alerts"][0]["status"]
    assert parse_alertmanager(encode(document)).alerts[0].status is R


def test_name_falls_back_to_common_labels_then_unnamed() -> None:
    document = doc("captured-firing-single.json")
    del document["alerts"][0]["labels"]["alertname"]
    alert = parse_alertmanager(encode(document)).alerts[0]
    assert alert.name == "DiskFull"
    assert alert.labels["alertname"] == "DiskFull"

    document["commonLabels"] = {}
    document["alerts"][0]["labels"]["alertname"] = ""
    alert = parse_alertmanager(encode(document)).alerts[0]
    assert alert.name == "unnamed"
    assert alert.labels["alertname"] == "unnamed"


def test_no_severity_label_means_no_severity() -> None:
    document = doc("captured-firing-single.json")
    del document["alerts"][0]["labels"]["severity"]
    assert parse_alertmanager(encode(document)).alerts[0].severity is None


def test_retries_share_the_delivery_id_and_other_bodies_do_not() -> None:
    body = load("alertmanager/captured-retry-route-no-send-resolved.json")
    other = load("alertmanager/captured-firing-single.json")
    assert parse_alertmanager(body).delivery_id == parse_alertmanager(bytes(body)).delivery_id
    assert parse_alertmanager(body).delivery_id != parse_alertmanager(other).delivery_id


def test_newer_alertmanager_keys_are_accepted() -> None:
    document = doc("captured-firing-single.json")
    document["notification_reason"] = "first notification"
    document["routeLabels"] = {"team": "db"}
    document["somethingNew"] = {"nested": [1, 2]}
    assert parse_alertmanager(encode(document)).alerts[0].name == "DiskFull"


def test_non_http_links_are_dropped() -> None:
    document = doc("captured-firing-single.json")
    document["alerts"][0]["generatorURL"] = "javascript:alert(1)"
    document["externalURL"] = ""
    assert parse_alertmanager(encode(document)).alerts[0].links == {}


def test_empty_alert_list_is_an_empty_delivery() -> None:
    document = doc("captured-firing-single.json")
    document["alerts"] = []
    assert parse_alertmanager(encode(document)).alerts == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T10:39:08Z", datetime(2026, 11, 23, 10, 39, 8, tzinfo=UTC)),
        ("2026-11-23T12:39:08.5+02:00", datetime(2026, 11, 23, 10, 39, 8, 500000, tzinfo=UTC)),
        ("2026-11-23t10:39:08.123456789z", datetime(2026, 11, 23, 10, 39, 8, 123456, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("0001-01-01T00:00:00-05:00", None),
    ],
)
def test_times_are_utc_and_zero_time_is_none(text: str, expected: datetime | None) -> None:
    document = doc("captured-resolved-single.json")
    document["alerts"][0]["endsAt"] = text
    assert parse_alertmanager(encode(document)).alerts[0].ends_at == expected


def problem(body: bytes) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse_alertmanager(body)
    return caught.value


@pytest.mark.parametrize(
    ("mutate", "field", "says"),
    [
        (lambda d: d.pop("alerts"), "alerts", "required"),
        (lambda d: d.pop("status"), "status", "required"),
        (lambda d: d.update(alerts={}), "alerts", "expected an array"),
        (lambda d: d.update(status="pending"), "status", "expected 'firing' or 'resolved'"),
        (lambda d: d.update(truncatedAlerts=-1), "truncatedAlerts", "greater than or equal to 0"),
        (lambda d: d.update(truncatedAlerts="3"), "truncatedAlerts", "expected an integer"),
        (lambda d: d["alerts"].append(7), "alerts.1", "expected an object"),
        (lambda d: d["alerts"][0].pop("labels"), "alerts.0.labels", "required"),
        (lambda d: d["alerts"][0].update(labels=[]), "alerts.0.labels", "expected an object"),
        (
            lambda d: d["alerts"][0]["labels"].update(severity=3),
            "alerts.0.labels.severity",
            "expected a string (got number)",
        ),
        (lambda d: d["alerts"][0].update(status="ok"), "alerts.0.status", "expected 'firing'"),
        (lambda d: d["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt", "RFC 3339"),
        (
            lambda d: d["alerts"][0].update(startsAt="2026-11-23T10:39:08"),
            "alerts.0.startsAt",
            "RFC 3339",
        ),
        (
            lambda d: d["alerts"][0].update(startsAt="2026-13-23T10:39:08Z"),
            "alerts.0.startsAt",
            "valid RFC 3339",
        ),
        (lambda d: d["alerts"][0].update(endsAt=1700000000), "alerts.0.endsAt", "got number"),
        (lambda d: d.update(commonLabels=None), "commonLabels", "expected an object (got null)"),
    ],
)
def test_bad_fields_name_their_json_path(mutate: Any, field: str, says: str) -> None:
    document = doc("captured-firing-single.json")
    mutate(document)
    error = problem(encode(document))
    assert error.field == field
    assert says in str(error)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "malformed JSON"),
        (b"{", "malformed JSON"),
        (b'{"status": NaN}', "malformed JSON"),
        (b'{"a": 1e999}', "malformed JSON"),
        (b'{"a": "\\ud800"}', "malformed JSON"),
        (b"\xff\xfe{}", "malformed JSON"),
        (b"[" * 500 + b"]" * 500, "malformed JSON"),
        (b"[]", "expected a JSON object at the top level, got array"),
        (b'"text"', "expected a JSON object at the top level, got string"),
        (b"null", "expected a JSON object at the top level, got null"),
    ],
)
def test_undecodable_bodies_are_payload_errors(body: bytes, says: str) -> None:
    error = problem(body)
    assert says in str(error)
    assert error.field is None
