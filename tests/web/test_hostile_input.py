"""Hostile input: fuzzed rule files, pathological bodies and labels that try to steer actions.

Every rejection is a 4xx problem or a recorded skip/failure, never a 500, a crash or a request
to a target the rules did not allow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from responder.adapters.rule_files.loading import load_rules
from responder.core.severities import SeverityScale
from responder.errors import RuleSetError
from responder.settings import DEFAULT_SEVERITY_LEVELS
from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.targets import Target

SCALE = SeverityScale(DEFAULT_SEVERITY_LEVELS)
ACTIONS = ("log", "http.request", "http.probe", "circuit_breaker.reset")

# YAML-ish fragments a rule author (or a fuzzer) might write, well-formed or not
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    st.sampled_from(["{{ labels.x }}", "{% for %}", "{{ ''.__class__ }}", "5m", "-1s", "=~("]),
)
_KEYS = st.sampled_from(
    [
        "id",
        "match",
        "steps",
        "with",
        "action",
        "guards",
        "if",
        "approval",
        "matchers",
        "severity",
        "key",
        "for",
        "cooldown",
        "budget",
        "x",
    ]
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=15,
)
_RULES = st.fixed_dictionaries(
    {"id": _SCALARS, "match": _VALUES, "steps": st.lists(_VALUES, max_size=3)},
    optional={"guards": _VALUES, "description": _SCALARS},
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=_RULES | _VALUES, raw=st.binary(max_size=200))
def test_fuzzed_rule_files_load_or_fail_with_file_and_line(
    tmp_path_factory: Any, document: Any, raw: bytes
) -> None:
    rules = tmp_path_factory.mktemp("rules")
    (rules / "a.yaml").write_text(yaml.safe_dump(document))
    (rules / "b.yaml").write_bytes(raw)
    errors: list[Any] = []
    try:
        load_rules(rules, known_actions=ACTIONS, severity=SCALE)
    except RuleSetError as exc:  # the only way a rule set may fail
        errors = exc.errors
        assert errors
    for error in errors:
        assert error.file.endswith(".yaml")
        assert error.line >= 1
        assert str(error).startswith(f"{error.file}:{error.line}: ")


async def _client(make_client: AppFactory, target: Target) -> TestClient[Any, Any]:
    return await make_client(http_allowed_hosts=(target.host,))


async def test_pathological_bodies_are_4xx_problems(make_client: AppFactory) -> None:
    client = await make_client(max_body_bytes=4 * 1024 * 1024)
    deep = b"[" * 200_000 + b"]" * 200_000  # deeper than any JSON parser's recursion limit
    bodies = {
        "deeply nested": deep,
        "deeply nested object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "not UTF-8": b'{"alerts": [{"labels": {"x": "\xff\xfe"}}]}',
        "UTF-16": json.dumps({"alerts": []}).encode("utf-16"),
        "NUL bytes": b'{"alerts": [\x00]}',
        "huge number": b'{"version": "4", "alerts": [], "truncatedAlerts": ' + b"9" * 5000 + b"}",
    }
    for what, body in bodies.items():
        for path in ("alertmanager", "grafana", "sentry"):
            response = await client.post(
                f"/v1/webhooks/{path}", data=body, headers={**AUTH, **JSON}
            )
            assert 400 <= response.status < 500, (what, path, response.status)
            assert response.content_type == "application/problem+json", (what, path)
    oversized = await client.post(
        "/v1/webhooks/alertmanager", data=b" " * (5 * 1024 * 1024), headers={**AUTH, **JSON}
    )
    assert oversized.status == 413
    assert (await client.get("/healthz")).status == 200  # still serving


def _steered_rule(target: Target) -> str:
    return f"""
id: steered
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - id: note
    action: log
    with: {{message: "instance {{{{ labels.instance }}}}"}}
  - id: fetch
    action: http.request
    with: {{method: GET, url: "{{{{ labels.url }}}}"}}
  - id: status
    action: http.probe
    with: {{url: "{target.base_url}/status/{{{{ labels.path | path_segment }}}}"}}
"""


async def _run_of(client: TestClient[Any, Any], fingerprint: str) -> dict[str, Any]:
    return await OperatorApi.in_process(client).settled_run(fingerprint=fingerprint)


async def test_labels_cannot_inject_templates_or_reach_other_hosts(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(_steered_rule(target))
    client = await _client(make_client, target)
    hostile = {
        "instance": "{{ 7 * 7 }}{% raw %}",
        "url": "http://169.254.169.254/latest/meta-data/",  # cloud metadata, not allowlisted
        "path": "../../admin",
    }
    alert = am_alert(fingerprint="hostile", labels={"alertname": "DiskFull", **hostile})
    response = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(alert), headers={**AUTH, **JSON}
    )
    assert response.status == 202
    run = await _run_of(client, "hostile")
    # a label is data: the rendered text holds the label verbatim, it is never rendered again
    assert run["state"] == "skipped"
    assert run["reason"] == "plan_invalid"
    [skipped] = [event for event in run["audit"] if event["kind"] == "run_skipped"]
    assert "169.254.169.254" in skipped["details"]["detail"]
    assert "RESPONDER_HTTP_ALLOWED_HOSTS" in skipped["details"]["detail"]
    assert target.requests == []  # nothing was sent anywhere

    # with an allowlisted URL the same rule runs: the template text stays text and the
    # traversal stays one encoded path segment on the allowlisted host
    safe = {**hostile, "url": f"{target.base_url}/ok"}
    alert = am_alert(fingerprint="safe", labels={"alertname": "DiskFull", **safe})
    await client.post("/v1/webhooks/alertmanager", data=am_body(alert), headers={**AUTH, **JSON})
    run = await _run_of(client, "safe")
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["note"]["params"]["message"] == "instance {{ 7 * 7 }}{% raw %}"
    assert steps["status"]["params"]["url"].endswith("/status/..%2F..%2Fadmin")
    paths = [r.path for r in target.requests]
    assert "/ok" in paths
    assert all(not p.startswith("/admin") for p in paths)
    assert any(p.startswith("/status/") and "admin" in p for p in paths)
