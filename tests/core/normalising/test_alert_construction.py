"""`Alert.of_validated` skips pydantic's validation; validating its alerts again must change
nothing, for every captured Alertmanager and Grafana body."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.core.normalising.alertmanager import parse_alertmanager, parse_grafana
from responder.models.alerts import Alert, AlertStatus, Source
from tests.support.conformance import all_payloads

PAYLOADS = [(parse_alertmanager, p) for p in all_payloads("alertmanager")] + [
    (parse_grafana, p) for p in all_payloads("grafana")
]


@pytest.mark.parametrize(("parse", "path"), PAYLOADS, ids=lambda v: getattr(v, "name", ""))
def test_validating_a_normalised_alert_again_changes_nothing(parse: object, path: Path) -> None:
    assert callable(parse)
    delivery = parse(path.read_bytes())
    assert delivery.alerts
    for alert in delivery.alerts:
        again = Alert.model_validate(dict(alert))
        assert again == alert
        for field in Alert.model_fields:
            assert type(getattr(again, field)) is type(getattr(alert, field)), field
        assert Alert.model_validate_json(alert.model_dump_json()) == alert
        assert alert.model_fields_set == set(Alert.model_fields)
        assert isinstance(alert.status, AlertStatus)
        assert isinstance(alert.source, Source)


def test_an_alert_built_so_is_frozen_and_copies_like_any_other() -> None:
    delivery = parse_alertmanager(all_payloads("alertmanager")[0].read_bytes())
    alert = delivery.alerts[0]
    with pytest.raises(ValueError, match="frozen"):
        alert.name = "other"  # type: ignore[misc]
    resolved = alert.model_copy(update={"status": AlertStatus.RESOLVED})
    assert resolved.identity.endswith(":resolved")
    assert alert.identity.endswith(f":{alert.status}")
    assert resolved.fingerprint == alert.fingerprint
