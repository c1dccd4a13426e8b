"""Every endpoint with no, wrong, webhook-only, reader and approver credentials.

The matrix is the contract: webhooks take only the webhook token (Sentry also its signature),
the operator API's read side only reader or approver tokens, decisions only approvers, and the
probes, metrics, OpenAPI document and UI shell are open (they hold no alert data). Afterwards
no token or secret appears in the logs, the audit rows or the stored step outputs.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from tests.support.apps import AUTH, JSON, READ, READER_TOKEN, TOKEN, AppFactory
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.targets import Target

APPROVER_TOKEN = "approver-secret-token"
TARGET_SECRET = "target-secret-value"
CREDENTIALS: dict[str, dict[str, str]] = {
    "none": {},
    "wrong": {"Authorization": "Bearer not-a-token"},
    "webhook": AUTH,
    "reader": READ,
    "approver": {"Authorization": f"Bearer {APPROVER_TOKEN}"},
}
OPEN = {"none", "wrong", "webhook", "reader", "approver"}


def _rule(target: Target) -> str:
    return f"""
id: guarded
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - id: look
    action: http.probe
    with: {{url: "{target.base_url}/look", auth_header_env: TARGET_AUTH}}
  - id: act
    action: test.contain
    approval: {{required: true, ttl: 10m}}
    with: {{url: "{target.base_url}/act"}}
"""


@pytest.fixture
async def client(
    make_client: AppFactory, rules_dir: Path, target: Target, monkeypatch: pytest.MonkeyPatch
) -> TestClient[Any, Any]:
    monkeypatch.setenv("TARGET_AUTH", f"Bearer {TARGET_SECRET}")
    (rules_dir / "guarded.yaml").write_text(_rule(target))
    built = await make_client(
        http_allowed_hosts=(target.host,),
        approver_tokens=SecretStr(f"alice:{APPROVER_TOKEN}"),
    )
    response = await built.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert()), headers={**AUTH, **JSON}
    )
    assert response.status == 202
    return built


async def _pending(client: TestClient[Any, Any]) -> dict[str, Any]:
    return await OperatorApi.in_process(client, READ).pending_approval()


async def test_every_endpoint_admits_exactly_the_right_credentials(
    client: TestClient[Any, Any],
) -> None:
    approval = await _pending(client)
    run_id, approval_id = approval["run_id"], approval["approval_id"]
    webhook = am_body(am_alert(fingerprint="other"))
    # (method, path, body, who is admitted, status when admitted)
    matrix: list[tuple[str, str, bytes | None, set[str], int]] = [
        ("POST", "/v1/webhooks/alertmanager", webhook, {"webhook"}, 202),
        ("POST", "/v1/webhooks/grafana", webhook, {"webhook"}, 202),  # same alert shape
        ("GET", "/v1/runs", None, {"reader", "approver"}, 200),
        ("GET", f"/v1/runs/{run_id}", None, {"reader", "approver"}, 200),
        ("GET", f"/v1/runs/{run_id}/timeline", None, {"reader", "approver"}, 200),
        ("GET", "/v1/approvals", None, {"reader", "approver"}, 200),
        ("GET", "/v1/rules", None, {"reader", "approver"}, 200),
        ("POST", "/v1/approvals/unknown-id/approve", b"{}", {"approver"}, 404),
        ("POST", "/v1/approvals/unknown-id/reject", b"{}", {"approver"}, 404),
        ("GET", "/healthz", None, OPEN, 200),
        ("GET", "/readyz", None, OPEN, 200),
        ("GET", "/metrics", None, OPEN, 200),
        ("GET", "/openapi.json", None, OPEN, 200),
        ("GET", "/ui", None, OPEN, 200),
    ]
    for method, path, body, admitted, ok_status in matrix:
        for who, headers in CREDENTIALS.items():
            response = await client.request(
                method, path, data=body, headers={**headers, **(JSON if body else {})}
            )
            expected = ok_status if who in admitted else 401
            assert response.status == expected, (method, path, who, await response.text())
            if expected == 401:
                assert response.content_type == "application/problem+json"
                assert "WWW-Authenticate" in response.headers or path.startswith("/v1/")

    # the one real decision: the webhook and reader tokens cannot, the approver can, once
    url = f"/v1/approvals/{approval_id}/approve"
    for who in ("webhook", "reader"):
        assert (await client.post(url, headers=CREDENTIALS[who])).status == 401
    assert (await client.post(url, headers=CREDENTIALS["approver"])).status == 200
    assert (await client.post(url, headers=CREDENTIALS["approver"])).status == 409


async def test_sentry_takes_its_signature_or_the_webhook_token_only(
    client: TestClient[Any, Any],
) -> None:
    body = b'{"action": "created", "data": {}}'
    for who, headers in CREDENTIALS.items():
        sentry = {**headers, **JSON, "Sentry-Hook-Resource": "issue"}
        response = await client.post("/v1/webhooks/sentry", data=body, headers=sentry)
        # the webhook token is admitted (legacy plugin) and then the body is judged: 400
        assert response.status == (400 if who == "webhook" else 401), who


async def test_no_secret_reaches_logs_audit_rows_or_step_outputs(
    client: TestClient[Any, Any], target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approval = await _pending(client)
    sent = target.requests[0].headers["Authorization"]
    assert sent == f"Bearer {TARGET_SECRET}"  # the secret did go to the target
    decided = await client.post(
        f"/v1/approvals/{approval['approval_id']}/approve",
        data=json.dumps({"comment": "ok"}),
        headers={**CREDENTIALS["approver"], **JSON},
    )
    assert decided.status == 200
    await OperatorApi.in_process(client, READ).run_reaches(approval["run_id"], "succeeded")
    await client.close()  # flush the store and the logs

    secrets = (TOKEN, READER_TOKEN, APPROVER_TOKEN, TARGET_SECRET, "test-client-secret")
    database = tmp_path / "data" / "responder.sqlite3"
    with sqlite3.connect(database) as conn:
        dumped = "\n".join(conn.iterdump())
    assert "approval_decided" in dumped or "approved" in dumped  # the rows are there
    logs = capsys.readouterr()
    assert "step_succeeded" in logs.out  # the log lines were captured
    for secret in secrets:
        assert secret not in dumped, f"{secret!r} stored in the database"
        assert secret not in logs.out + logs.err, f"{secret!r} written to the logs"
