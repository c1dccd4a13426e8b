"""Grafana-managed alerting webhook bodies normalised to Delivery/Alert."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from responder.core.normalising.alertmanager import label_fingerprint, parse_grafana
from responder.errors import PayloadError
from responder.models.alerts import AlertStatus, Source
from tests.support.conformance import all_payloads, load

DOCS = "grafana-docs-webhook-firing-grouped-2.json"
DEFAULT = "grafana-alerting-test-default-payload-firing-single.json"
SILENCE_DEFAULT = (
    "http://localhost/alerting/silence/new?alertmanager=grafana"
    "&matcher=alertname%3Dalert1&matcher=lbl1%3Dval1&orgId=1"
)


def doc(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(load(f"grafana/{name}"))
    return value


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_every_payload_file_is_covered_below() -> None:
    assert {path.name for path in all_payloads("grafana")} == {DOCS, DEFAULT}


@pytest.mark.parametrize("path", all_payloads("grafana"), ids=lambda p: p.name)
def test_every_payload_normalises_alert_by_alert(path: Path) -> None:
    body = path.read_bytes()
    document = json.loads(body)
    delivery = parse_grafana(body)
    assert delivery.source is Source.GRAFANA
    assert delivery.delivery_id == hashlib.sha256(body).hexdigest()
    assert delivery.truncated_alerts == 0
    assert len(delivery.alerts) == len(document["alerts"])
    for alert, raw_alert in zip(delivery.alerts, document["alerts"], strict=True):
        assert alert.source is Source.GRAFANA
        assert alert.status is AlertStatus.FIRING
        assert alert.name == raw_alert["labels"]["alertname"]
        assert alert.labels == raw_alert["labels"]
        assert alert.fingerprint == raw_alert["fingerprint"]
        assert alert.group_key == document["groupKey"]
        assert alert.ends_at is None
        assert alert.raw["values"] == raw_alert["values"]
        assert alert.raw["receiver"] == document["receiver"]
        assert alert.raw["externalURL"] == document["externalURL"]


def test_documented_webhook() -> None:
    first, second = parse_grafana(load(f"grafana/{DOCS}")).alerts
    assert (first.name, second.name) == ("High memory usage", "High CPU usage")
    assert (first.fingerprint, second.fingerprint) == ("c6eadffa33fcdf37", "bc97ff14869b13e3")
    assert first.labels == {"alertname": "High memory usage", "team": "blue", "zone": "us-1"}
    assert first.annotations["runbook_url"] == "https://myrunbook.com/runbook/1234"
    assert first.severity is None
    assert first.group_key == "{}:{}"
    # 09:51:03.157076+02:00 is 07:51:03.157076 UTC.
    assert first.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert second.starts_at == datetime(2021, 10, 12, 7, 56, 3, 157076, tzinfo=UTC)
    assert first.links == {
        "generator": "https://play.grafana.org/alerting/1afz29v7z/edit",
        "alertmanager": "https://play.grafana.org/",
        "silence": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
        "&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
    }  # dashboardURL and panelURL are "": no links
    assert first.raw["values"] == {"B": 44.23943737541908, "C": 1}


def test_default_template_payload() -> None:
    (alert,) = parse_grafana(load(f"grafana/{DEFAULT}")).alerts
    assert alert.name == "alert1"
    assert alert.labels == {"alertname": "alert1", "lbl1": "val1"}
    assert alert.annotations == {"ann1": "annv1"}
    assert alert.fingerprint == "fac0861a85de433a" == label_fingerprint(alert.labels)
    assert alert.starts_at is None  # Go's zero time
    assert alert.group_key == "alertname"
    assert alert.links == {
        "generator": "http://localhost/test?orgId=1",
        "alertmanager": "http://localhost",
        "silence": SILENCE_DEFAULT,
    }
    assert alert.raw["values"] is None
    assert alert.raw["valueString"] == ""
    assert alert.raw["orgId"] == 1


def test_resolved_notification() -> None:
    document = doc(DOCS)
    document.update(status="resolved", state="ok", title="[RESOLVED] (blue)")
    for raw_alert in document["alerts"]:
        raw_alert.update(status="resolved", endsAt="2021-10-12T10:01:03.157076+02:00")
    delivery = parse_grafana(encode(document))
    assert [a.status for a in delivery.alerts] == [AlertStatus.RESOLVED] * 2
    assert delivery.alerts[0].ends_at == datetime(2021, 10, 12, 8, 1, 3, 157076, tzinfo=UTC)


def test_all_grafana_links_and_extra_fields() -> None:
    document = doc(DEFAULT)
    document["alerts"][0].update(
        dashboardURL="http://localhost/d/abc",
        panelURL="http://localhost/d/abc?viewPanel=2",
        imageURL="https://images.example/x.png",
        ruleUID="rule-1",
        embeddedImage="aGVsbG8=",
        enrichments={"any": ["thing"]},
        values={"A": 3.5},
        valueString="[ var='A' labels={} value=3.5 ]",
    )
    document["appVersion"] = "11.0.0"
    (alert,) = parse_grafana(encode(document)).alerts
    assert alert.links["dashboard"] == "http://localhost/d/abc"
    assert alert.links["panel"] == "http://localhost/d/abc?viewPanel=2"
    assert alert.links["image"] == "https://images.example/x.png"
    assert alert.raw["values"] == {"A": 3.5}
    assert alert.raw["valueString"] == "[ var='A' labels={} value=3.5 ]"
    assert alert.raw["ruleUID"] == "rule-1"


def test_severity_label_is_used() -> None:
    document = doc(DEFAULT)
    document["alerts"][0]["labels"]["severity"] = "critical"
    assert parse_grafana(encode(document)).alerts[0].severity == "critical"


@pytest.mark.parametrize(
    ("mutate", "field", "says"),
    [
        (
            lambda d: d["alerts"][0].update(values={"B": "high"}),
            "alerts.0.values.B",
            "expected a number",
        ),
        (lambda d: d["alerts"][0].update(values=[1]), "alerts.0.values", "expected an object"),
        (lambda d: d["alerts"][0].update(orgId="1"), "alerts.0.orgId", "expected an integer"),
        (
            lambda d: d["alerts"][0].update(silenceURL=None),
            "alerts.0.silenceURL",
            "expected a string (got null)",
        ),
        (lambda d: d.update(orgId=1.5), "orgId", "expected an integer"),
        (lambda d: d.update(title=[]), "title", "expected a string (got array)"),
    ],
)
def test_bad_grafana_fields_name_their_json_path(mutate: Any, field: str, says: str) -> None:
    document = doc(DEFAULT)
    mutate(document)
    with pytest.raises(PayloadError) as caught:
        parse_grafana(encode(document))
    assert caught.value.field == field
    assert says in str(caught.value)


def test_embedded_image_is_not_kept_in_raw() -> None:
    document = json.loads(load("grafana-docs-webhook-firing-grouped-2.json"))
    document["alerts"][0]["embeddedImage"] = "iVBORw0KGgo" * 1000
    delivery = parse_grafana(json.dumps(document).encode())
    assert "embeddedImage" not in delivery.alerts[0].raw
    assert delivery.alerts[0].raw["dashboardURL"] == document["alerts"][0]["dashboardURL"]
