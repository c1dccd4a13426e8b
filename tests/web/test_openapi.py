"""`GET /openapi.json`: it names every route, is valid OpenAPI, and the live app conforms.

The conformance test drives the real app (SQLite store) over loopback HTTP with schemathesis:
generated inputs for the read endpoints and the approval decisions, each response checked
against the document (status code, content type, headers, body schema, no 5xx).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import SecretStr
from schemathesis.core.result import Ok

from tests.support.apps import AUTH, READ, TOKEN, AppFactory
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body

APPROVER = "alice-token"
POSITIVE = schemathesis.GenerationMode.POSITIVE
GATED_RULE = """
id: gated
match: {matchers: ['alertname="DiskFull"']}
steps:
  - {id: look, action: log, with: {message: "evidence for {{ labels.instance }}"}}
  - {id: act, action: log, approval: {required: true, ttl: 10m}, with: {message: "acted"}}
"""


async def _document(make_client: AppFactory, **overrides: Any) -> tuple[Any, dict[str, Any]]:
    client = await make_client(approver_tokens=SecretStr(f"alice:{APPROVER}"), **overrides)
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    doc: dict[str, Any] = await response.json()
    return client, doc


async def test_every_route_is_documented_and_nothing_else(make_client: AppFactory) -> None:
    client, doc = await _document(make_client)
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in client.app.router.routes()
        if r.resource is not None
    }
    gets = {path for method, path in routes if method == "get"}
    assert {path for method, path in routes if method == "head"} <= gets  # HEAD comes with GET
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == {(m, p) for m, p in routes if m != "head"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], f"{method} {path} documents no response"
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), f"{method} {path}"


async def test_document_is_valid_openapi(make_client: AppFactory) -> None:
    _, doc = await _document(make_client)
    assert doc["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(doc)
    schema.validate()
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results
    assert len(results) == sum(len(ops) for ops in doc["paths"].values())
    for name, scheme in doc["components"]["securitySchemes"].items():
        assert scheme["type"] in ("http", "apiKey"), name


async def test_live_app_conforms_to_the_document(make_client: AppFactory, rules_dir: Path) -> None:
    (rules_dir / "gated.yaml").write_text(GATED_RULE)
    client, doc = await _document(make_client)
    pending = await _seed(client)
    base_url = str(client.make_url("")).rstrip("/")
    config = schemathesis.Config.from_dict(
        {
            "auth": {
                "openapi": {
                    "webhookToken": {"bearer": TOKEN},
                    "approverToken": {"bearer": APPROVER},
                    "readerToken": {"bearer": APPROVER},
                }
            }
        }
    )
    schema = schemathesis.openapi.from_dict(doc, config=config)
    statuses = await asyncio.to_thread(_fuzz, schema, base_url, pending)
    for path in (
        "/v1/runs",
        "/v1/rules",
        "/v1/approvals",
        "/healthz",
        "/openapi.json",
        "/v1/runs/{run_id}",
        "/v1/runs/{run_id}/timeline",
    ):
        assert statuses[("GET", path, 200)], f"GET {path} never answered 200: {statuses}"
    for verb in ("approve", "reject"):
        for status in (200, 404, 409):
            assert statuses[("POST", f"/v1/approvals/{{approval_id}}/{verb}", status)], verb


async def _seed(client: Any) -> list[dict[str, Any]]:
    """Two runs parked on an approval, so the fuzzing sees real records."""
    for fingerprint in ("f1", "f2"):
        response = await client.post(
            "/v1/webhooks/alertmanager",
            headers=AUTH,
            json=json.loads(am_body(am_alert(fingerprint=fingerprint))),
        )
        assert response.status == 202
    found = await OperatorApi.in_process(client, READ).pending_approvals(2)
    assert len(found) == 2
    return found


def _fuzz(
    schema: Any, base_url: str, pending: list[dict[str, Any]]
) -> Counter[tuple[str, str, int]]:
    """Every selected operation with generated inputs (positive, then negative data), then
    the run and approval operations again on the seeded records."""
    seen: Counter[tuple[str, str, int]] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/v1/webhooks"):
            continue  # bodies are third-party payloads: covered by the webhook tests
        _run(operation, POSITIVE, base_url, seen)
        if len(operation.query) or len(operation.path_parameters) or len(operation.body):
            _run(operation, schemathesis.GenerationMode.NEGATIVE, base_url, seen)
    runs = {"run_id": pending[0]["run_id"]}
    _run(schema["/v1/runs/{run_id}"]["GET"], POSITIVE, base_url, seen, runs)
    _run(schema["/v1/runs/{run_id}/timeline"]["GET"], POSITIVE, base_url, seen, runs)
    for verb, approval in (("approve", pending[0]), ("reject", pending[1])):
        ids = {"approval_id": approval["approval_id"]}
        _run(schema[f"/v1/approvals/{{approval_id}}/{verb}"]["POST"], POSITIVE, base_url, seen, ids)
    return seen


def _run(
    operation: Any,
    mode: Any,
    base_url: str,
    seen: Counter[tuple[str, str, int]],
    path_parameters: dict[str, str] | None = None,
) -> None:
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def check(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, timeout=10)
        seen[(operation.method.upper(), operation.path, response.status_code)] += 1

    try:
        check()
    except Exception as exc:
        exc.add_note(f"{operation.method.upper()} {operation.path} ({mode.value} data)")
        raise


async def test_only_the_operator_api_asks_for_credentials(make_client: AppFactory) -> None:
    _, doc = await _document(make_client)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert bool(op["security"]) == path.startswith("/v1/"), f"{method} {path}"
