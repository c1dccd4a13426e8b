"""Property tests: whatever bytes arrive, a parser returns a Delivery (or None) or a PayloadError.

Three generators: arbitrary bytes, arbitrary JSON values (biased towards the keys the parsers
look at), and the real conformance payloads with keys dropped or values replaced at random.
Any other exception (KeyError, TypeError, pydantic's ValidationError...) fails the test.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.core.normalising.alertmanager import parse_alertmanager, parse_grafana
from responder.core.normalising.sentry import parse_sentry
from responder.errors import PayloadError
from responder.models.alerts import Delivery
from tests.support.conformance import all_payloads

Parser = Callable[[bytes], Delivery | None]
SENTRY_RESOURCES = (
    None,
    "issue",
    "error",
    "event_alert",
    "metric_alert",
    "installation",
    "comment",
    "seer",
)
PARSERS: dict[str, Parser] = {
    "alertmanager": parse_alertmanager,
    "grafana": parse_grafana,
    **{
        f"sentry:{resource}": partial(parse_sentry, resource=resource, request_id=None)
        for resource in SENTRY_RESOURCES
    },
}
KNOWN_KEYS = (
    "status",
    "alerts",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "fingerprint",
    "generatorURL",
    "alertname",
    "severity",
    "truncatedAlerts",
    "groupKey",
    "commonLabels",
    "externalURL",
    "values",
    "silenceURL",
    "orgId",
    "action",
    "data",
    "issue",
    "error",
    "event",
    "metric_alert",
    "alert_rule",
    "installation",
    "comment",
    "id",
    "title",
    "project",
    "project_slug",
    "event_id",
    "issue_id",
    "issue_url",
    "level",
    "triggered_rule",
    "firstSeen",
    "datetime",
    "timestamp",
    "received",
    "date_started",
    "projects",
    "web_url",
)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["firing", "resolved", "2026-11-23T10:39:08.29Z", "0001-01-01T00:00:00Z"])
)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)
json_objects = st.dictionaries(keys, json_values, max_size=6)

REAL: list[tuple[str, Any]] = [
    (source, json.loads(path.read_bytes()))
    for source in ("alertmanager", "grafana", "sentry")
    for path in all_payloads(source)
]


def check(body: bytes) -> None:
    """Every parser either accepts `body` (a consistent Delivery) or raises PayloadError."""
    for name, parse in PARSERS.items():
        error: PayloadError | None = None
        try:
            result = parse(body)
        except PayloadError as exc:
            error, result = exc, None
        if error is not None:
            assert error.field is None or isinstance(error.field, str)
            assert str(error)
            continue
        if result is None:
            assert name in ("sentry:None", "sentry:installation", "sentry:comment")
            continue
        assert isinstance(result, Delivery)
        result.model_dump_json()  # everything kept is JSON again (no NaN, no surrogates)
        for alert in result.alerts:
            assert alert.labels["alertname"] == alert.name
            assert alert.fingerprint
            for moment in (alert.starts_at, alert.ends_at):
                assert moment is None or moment.utcoffset() is not None


def locations(value: Any, path: tuple[Any, ...] = (), depth: int = 4) -> list[tuple[Any, ...]]:
    """Paths to every key or index of `value`, down to `depth` levels."""
    if depth == 0 or not isinstance(value, dict | list):
        return []
    found: list[tuple[Any, ...]] = []
    for key, child in value.items() if isinstance(value, dict) else enumerate(value):
        found.append((*path, key))
        found.extend(locations(child, (*path, key), depth - 1))
    return found


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes(body: bytes) -> None:
    check(body)


@SETTINGS
@given(json_values)
def test_arbitrary_json_values(value: Any) -> None:
    check(json.dumps(value).encode())


@SETTINGS
@given(json_objects)
def test_arbitrary_json_objects(value: dict[str, Any]) -> None:
    check(json.dumps(value).encode())


@SETTINGS
@given(st.data())
def test_mutated_real_payloads(data: st.DataObject) -> None:
    _, original = data.draw(st.sampled_from(REAL), label="payload")
    document = copy.deepcopy(original)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = locations(document)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans(), label="drop"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values, label="value")
    check(json.dumps(document).encode())


def test_real_payloads_through_every_parser() -> None:
    for _, document in REAL:
        check(json.dumps(document).encode())
