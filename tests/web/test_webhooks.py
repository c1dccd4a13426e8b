"""Webhook endpoints over real HTTP: auth, media types, limits, parsing, durable receipt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.conformance import all_payloads
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import wait_for


def _sign(body: bytes, secret: str = "test-client-secret") -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _is_problem(response: Any) -> None:
    assert response.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", all_payloads("alertmanager"), ids=lambda p: p.name)
async def test_every_alertmanager_payload_is_accepted(make_client: AppFactory, path: Path) -> None:
    client = await make_client()
    body = path.read_bytes()
    response = await client.post("/v1/webhooks/alertmanager", data=body, headers={**AUTH, **JSON})
    assert response.status == 202
    reply = await response.json()
    count = len(json.loads(body)["alerts"])
    assert reply == {
        "status": "accepted",
        "alerts": count,
        "ids": reply["ids"],
        "truncated_alerts": json.loads(body).get("truncatedAlerts", 0),
    }
    assert len(reply["ids"]) == count
    assert all(isinstance(i, int) for i in reply["ids"])
    assert reply["ids"] == sorted(set(reply["ids"]))


@pytest.mark.parametrize("path", all_payloads("grafana"), ids=lambda p: p.name)
async def test_every_grafana_payload_is_accepted(make_client: AppFactory, path: Path) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/webhooks/grafana", data=path.read_bytes(), headers={**AUTH, **JSON}
    )
    assert response.status == 202
    assert (await response.json())["alerts"] == len(json.loads(path.read_bytes())["alerts"])


@pytest.mark.parametrize("path", all_payloads("sentry"), ids=lambda p: p.name)
async def test_every_sentry_payload_is_accepted_when_signed(
    make_client: AppFactory, path: Path
) -> None:
    client = await make_client()
    body = path.read_bytes()
    headers = {**JSON, "Sentry-Hook-Signature": _sign(body), "Request-ID": path.stem}
    response = await client.post("/v1/webhooks/sentry", data=body, headers=headers)
    assert response.status == 202
    reply = await response.json()
    if "installation" in path.name or "comment" in path.name:
        assert reply == {"status": "ignored", "alerts": 0}
    else:
        assert reply["status"] == "accepted"
        assert reply["alerts"] == 1


async def test_sentry_wrong_signature_is_401_and_secret_not_echoed(
    make_client: AppFactory,
) -> None:
    client = await make_client()
    body = all_payloads("sentry")[0].read_bytes()
    response = await client.post(
        "/v1/webhooks/sentry", data=body, headers={**JSON, "Sentry-Hook-Signature": "0" * 64}
    )
    assert response.status == 401
    _is_problem(response)
    assert "test-client-secret" not in await response.text()


async def test_sentry_signature_is_checked_on_raw_bytes(make_client: AppFactory) -> None:
    client = await make_client()
    path = next(p for p in all_payloads("sentry") if "issue-created" in p.name)
    raw = path.read_bytes()
    reserialised = json.dumps(json.loads(raw)).encode()  # ", " separators: different bytes
    response = await client.post(
        "/v1/webhooks/sentry",
        data=raw,
        headers={**JSON, "Sentry-Hook-Signature": _sign(reserialised)},
    )
    assert response.status == 401


async def test_sentry_replay_with_same_request_id_is_absorbed(make_client: AppFactory) -> None:
    client = await make_client()
    path = next(p for p in all_payloads("sentry") if "issue-created" in p.name)
    body = path.read_bytes()
    headers = {**JSON, "Sentry-Hook-Signature": _sign(body), "Request-ID": "abc123"}
    first = await client.post("/v1/webhooks/sentry", data=body, headers=headers)
    second = await client.post("/v1/webhooks/sentry", data=body, headers=headers)
    assert (await first.json())["status"] == "accepted"
    assert second.status == 202
    assert (await second.json())["status"] == "duplicate"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-token"}],
    ids=["missing", "wrong", "no-scheme"],
)
async def test_alertmanager_without_valid_token_is_401(
    make_client: AppFactory, headers: dict[str, str]
) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert()), headers={**headers, **JSON}
    )
    assert response.status == 401
    _is_problem(response)
    problem = await response.json()
    assert problem["status"] == 401
    assert "test-token" not in json.dumps(problem)


async def test_basic_auth_with_token_as_password_is_accepted(make_client: AppFactory) -> None:
    client = await make_client()
    basic = base64.b64encode(b"alertmanager:test-token").decode()
    response = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert()),
        headers={"Authorization": f"Basic {basic}", **JSON},
    )
    assert response.status == 202


async def test_malformed_json_is_400_problem(make_client: AppFactory) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/webhooks/alertmanager", data=b'{"alerts": [', headers={**AUTH, **JSON}
    )
    assert response.status == 400
    _is_problem(response)
    assert "JSON" in (await response.json())["detail"]


async def test_schema_error_names_the_field(make_client: AppFactory) -> None:
    client = await make_client()
    body = json.loads(am_body(am_alert()))
    body["alerts"][0]["labels"] = "not-a-map"
    response = await client.post(
        "/v1/webhooks/alertmanager", data=json.dumps(body), headers={**AUTH, **JSON}
    )
    assert response.status == 400
    problem = await response.json()
    assert problem["field"].startswith("alerts.0.labels")
    assert "alerts.0.labels" in problem["detail"]


async def test_not_json_is_415(make_client: AppFactory) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert()),
        headers={**AUTH, "Content-Type": "text/plain"},
    )
    assert response.status == 415
    _is_problem(response)


async def test_body_over_limit_is_413(make_client: AppFactory) -> None:
    client = await make_client(max_body_bytes=2048)
    big = am_body(am_alert(annotations={"summary": "x" * 5000}))
    response = await client.post("/v1/webhooks/alertmanager", data=big, headers={**AUTH, **JSON})
    assert response.status == 413
    _is_problem(response)
    assert "2048" in (await response.json())["detail"]


async def test_truncated_alerts_are_counted(make_client: AppFactory) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert(), truncated=3), headers={**AUTH, **JSON}
    )
    assert (await response.json())["truncated_alerts"] == 3
    metrics = await (await client.get("/metrics")).text()
    assert 'responder_alerts_truncated_total{source="alertmanager"} 3.0' in metrics


async def test_store_failure_answers_503_and_acknowledges_nothing(make_client: AppFactory) -> None:
    from responder.web import keys

    client = await make_client()
    await client.app[keys.STORE].close()
    response = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert()), headers={**AUTH, **JSON}
    )
    assert response.status == 503
    _is_problem(response)
    assert response.headers["Retry-After"]


async def test_full_queue_answers_503_with_retry_after(
    make_client: AppFactory, rules_dir: Path
) -> None:
    from responder.web import keys

    (rules_dir / "r.yaml").write_text(
        "id: disk\nmatch: {matchers: ['alertname=\"DiskFull\"']}\n"
        "steps: [{id: n, action: log, with: {message: hi}}]\n"
    )
    # nobody drains the queue, so the shutdown waits out drain_seconds: keep that short
    client = await make_client(queue_size=2, retry_after_seconds=7, drain_seconds=0.1)
    await client.app[keys.WORKERS].stop()  # nobody drains the queue
    for i in range(2):
        ok = await client.post(
            "/v1/webhooks/alertmanager",
            data=am_body(am_alert(labels={"instance": f"db-{i}"})),
            headers={**AUTH, **JSON},
        )
        assert ok.status == 202
    full = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert()), headers={**AUTH, **JSON}
    )
    assert full.status == 503
    assert full.headers["Retry-After"] == "7"
    _is_problem(full)
    # an alert no rule acts on needs no worker: written (already processed) and taken
    unrelated = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert("Unrelated")), headers={**AUTH, **JSON}
    )
    assert unrelated.status == 202
    [stored_id] = (await unrelated.json())["ids"]
    store = client.app[keys.STORE]
    assert stored_id not in [a.alert_id for a in await store.unprocessed_alerts(10)]
    assert (await store.get_alert(stored_id)) is not None


async def test_unknown_route_and_method_are_problems(make_client: AppFactory) -> None:
    client = await make_client()
    missing = await client.get("/v1/nope")
    assert missing.status == 404
    _is_problem(missing)
    wrong = await client.get("/v1/webhooks/alertmanager")
    assert wrong.status == 405
    _is_problem(wrong)


async def test_probes_and_metrics(make_client: AppFactory) -> None:
    from responder.web import keys

    client = await make_client()
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"]["store"] == "writable"
    await client.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert()), headers={**AUTH, **JSON}
    )
    unwanted = am_body(am_alert("NobodyCares"), am_alert("NobodyCares", fingerprint="f" * 16))
    await client.post("/v1/webhooks/alertmanager", data=unwanted, headers={**AUTH, **JSON})
    await client.post("/v1/webhooks/grafana", data=unwanted, headers={**AUTH, **JSON})
    text = await (await client.get("/metrics")).text()
    assert 'responder_alerts_received_total{outcome="accepted",source="alertmanager"} 3.0' in text
    assert 'responder_alerts_received_total{outcome="accepted",source="grafana"} 2.0' in text
    for source, count in (("alertmanager", 2), ("grafana", 1)):
        line = f'responder_store_write_duration_seconds_count{{source="{source}"}} {count}.0'
        assert line in text
    assert "responder_build_info" in text
    assert "responder_queue_capacity" in text
    # the leak indicators the soak watches: memory, file descriptors, asyncio tasks
    values = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert float(values["process_resident_memory_bytes"]) > 10_000_000
    assert float(values["process_open_fds"]) > 3
    assert float(values["responder_asyncio_tasks"]) >= 3  # server, workers, pollers
    client.app[keys.INTAKE].draining = True
    not_ready = await client.get("/readyz")
    assert not_ready.status == 503
    assert "intake" in (await not_ready.json())["failing"]
    refused = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert()), headers={**AUTH, **JSON}
    )
    assert refused.status == 503


async def test_accepted_alerts_are_processed(make_client: AppFactory) -> None:
    from responder.web import keys

    client = await make_client()
    store = client.app[keys.STORE]
    await client.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert()), headers={**AUTH, **JSON}
    )

    async def processed() -> bool:
        return not await store.unprocessed_alerts(10)

    await wait_for(processed)


async def test_a_burst_of_unmatched_alerts_is_logged_at_shutdown_at_the_latest(
    make_client: AppFactory,
) -> None:
    from responder.web import keys

    client = await make_client()
    received = client.app[keys.RECEIVED_LOG]
    for n in range(3):  # no rule matches NobodyCares: no worker, one summary per second
        body = am_body(am_alert("NobodyCares", fingerprint=f"{n:016x}"))
        response = await client.post(
            "/v1/webhooks/alertmanager", data=body, headers={**AUTH, **JSON}
        )
        assert response.status == 202
    assert received.pending == 2  # the first was written at once, the rest wait their second
    await client.close()
    assert received.pending == 0
