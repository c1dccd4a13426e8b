"""The `notify.*` actions end to end: AiohttpHttpApi against Slack/PagerDuty/webhook look-alikes.

The local servers check the requests the way the real services would (method, path,
Content-Type, body shape) and answer with the real services' replies.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from responder.actions.base import ActionContext, ActionRegistry
from responder.actions.notify.pagerduty import NOTIFY_PAGERDUTY, PagerDutyParams
from responder.actions.notify.slack import NOTIFY_SLACK, SlackParams
from responder.actions.notify.webhooks import NOTIFY_WEBHOOK, WebhookParams
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from tests.support.action_contexts import loopback_context
from tests.support.recording import Recorder

ServerFactory = Callable[..., Awaitable[TestServer]]

SLACK_PATH = "/services/T0001/B0001/s3cretSlackHookToken42"
ROUTING_KEY = "R0ut1ngK3yS3cr3tAbCdEfGh12345678"
HEADER_SECRET = "hdr-s3cret-value-9876"


@dataclass
class Seen(Recorder):
    """Requests the servers received, and how each service should answer next."""

    slack: str = "ok"  # ok | invalid_payload | no_text | echo_path | 429 | 500
    pagerduty: str = "ok"  # ok | 429 | 502
    webhook: int = 200


def _slack(seen: Seen) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        if seen.slack == "429":
            return web.Response(status=429, text="rate_limited", headers={"Retry-After": "7"})
        if seen.slack == "500":
            return web.Response(status=500, text="rollup_error")
        if seen.slack == "echo_path":
            return web.Response(status=404, text=f"channel_not_found {request.path}")
        if request.content_type != "application/json":
            return web.Response(status=400, text="invalid_payload")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if seen.slack == "invalid_payload" or len(body.get("blocks", [])) > 50:
            return web.Response(status=400, text="invalid_payload")
        if seen.slack == "no_text" or (not body.get("text") and not body.get("blocks")):
            return web.Response(status=400, text="no_text")
        return web.Response(text="ok")

    return handle


def _pagerduty(seen: Seen) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        if seen.pagerduty == "429":
            return web.json_response({"status": "throttle"}, status=429)
        if seen.pagerduty == "502":
            return web.Response(status=502, text="bad gateway")
        body = json.loads(await request.read())
        errors = []
        if len(body.get("routing_key", "")) != 32:
            errors.append("'routing_key' must be 32 characters")
        if body.get("event_action") == "trigger":
            payload = body.get("payload", {})
            for name in ("summary", "source", "severity"):
                if name not in payload:
                    errors.append(f"'payload.{name}' is missing or blank")
            if payload.get("summary") == "make it fail":
                errors.append("'payload.summary' rejected by the test server")
        elif "dedup_key" not in body:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if errors:
            reply = {"status": "invalid event", "message": "Event object is invalid"}
            return web.json_response({**reply, "errors": errors}, status=400)
        dedup = body.get("dedup_key", "generated-by-pagerduty")
        reply = {"status": "success", "message": "Event processed", "dedup_key": dedup}
        return web.json_response(reply, status=202)

    return handle


def _webhook(seen: Seen) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        if seen.webhook == 429:
            return web.Response(status=429, headers={"Retry-After": "3"})
        echoed = {"got": request.headers.get("Authorization", "")}
        return web.json_response(echoed, status=seen.webhook)

    return handle


def _app(seen: Seen) -> web.Application:
    app = seen.recording_app()
    app.router.add_post(SLACK_PATH, _slack(seen))
    app.router.add_post("/v2/enqueue", _pagerduty(seen))
    app.router.add_post("/hook", _webhook(seen))
    return app


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def server(aiohttp_server: ServerFactory, seen: Seen) -> TestServer:
    test_server: TestServer = await aiohttp_server(_app(seen), host="127.0.0.1")
    return test_server


@pytest.fixture
def secrets(server: TestServer, monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    slack_url = str(server.make_url(SLACK_PATH))
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_url)
    monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("HOOK_TOKEN", HEADER_SECRET)
    return (slack_url, "s3cretSlackHookToken42", ROUTING_KEY, HEADER_SECRET)


@pytest.fixture
async def ctx() -> AsyncIterator[ActionContext]:
    async with loopback_context(step_id="notify", output_max_bytes=2048) as context:
        yield context


def assert_hidden(value: Any, secrets: tuple[str, ...]) -> None:
    text = repr(value) + json.dumps(value, default=str)
    for secret in secrets:
        assert secret not in text


def _body(seen: Seen, index: int = 0) -> Any:
    return json.loads(seen.requests[index].body)


def _slack_params(**extra: Any) -> SlackParams:
    return SlackParams.model_validate({"webhook_url_env": "SLACK_WEBHOOK_URL", **extra})


# --- notify.slack ---------------------------------------------------------------------------


async def test_slack_posts_blocks(ctx: ActionContext, seen: Seen, secrets: tuple[str, ...]) -> None:
    params = _slack_params(
        text="checkout-v2 turned OFF",
        title="INC-123 checkout 5xx",
        fields={"Severity": "critical", "Namespace": "shop"},
        link="https://grafana.example/d/x?var=1",
    )
    result = await NOTIFY_SLACK.run(params, ctx)
    sent = seen.requests[0]
    assert (sent.method, sent.path, sent.headers["Content-Type"]) == (
        "POST",
        SLACK_PATH,
        "application/json",
    )
    assert _body(seen) == {
        "text": "checkout-v2 turned OFF",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "INC-123 checkout 5xx"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "checkout-v2 turned OFF"},
                "fields": [
                    {"type": "mrkdwn", "text": "*Severity:*\ncritical"},
                    {"type": "mrkdwn", "text": "*Namespace:*\nshop"},
                ],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "responder · rule rule-1 · run run-1"}],
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open"},
                        "url": "https://grafana.example/d/x?var=1",
                    }
                ],
            },
        ],
    }
    assert result.ok
    assert result.output == {"status": 200, "response": "ok", "blocks": 4}
    assert "SLACK_WEBHOOK_URL" in result.summary
    assert_hidden((result, NOTIFY_SLACK.describe(params)), secrets)


async def test_slack_minimal_message_and_many_fields(
    ctx: ActionContext, seen: Seen, secrets: tuple[str, ...]
) -> None:
    fields = {f"f{i}": str(i) for i in range(25)}
    result = await NOTIFY_SLACK.run(_slack_params(text="t", fields=fields), ctx)
    blocks = _body(seen)["blocks"]
    assert [b["type"] for b in blocks] == ["section", "section", "section", "context"]
    assert [len(b["fields"]) for b in blocks[:3]] == [10, 10, 5]
    assert "text" not in blocks[1]
    assert result.ok


async def test_slack_escapes_alert_text(
    ctx: ActionContext, seen: Seen, secrets: tuple[str, ...]
) -> None:
    params = _slack_params(text="<!channel> a & b <http://evil|click>", fields={"<x>": "<@U1>"})
    await NOTIFY_SLACK.run(params, ctx)
    body = _body(seen)
    assert body["text"] == "&lt;!channel&gt; a &amp; b &lt;http://evil|click&gt;"
    assert body["blocks"][0]["fields"][0]["text"] == "*&lt;x&gt;:*\n&lt;@U1&gt;"


@pytest.mark.parametrize(
    ("mode", "answer"), [("invalid_payload", "invalid_payload"), ("no_text", "no_text")]
)
async def test_slack_400_is_a_failed_step(
    ctx: ActionContext, seen: Seen, secrets: tuple[str, ...], mode: str, answer: str
) -> None:
    seen.slack = mode
    result = await NOTIFY_SLACK.run(_slack_params(text="t"), ctx)
    assert not result.ok
    assert result.output["status"] == 400
    assert result.output["response"] == answer
    assert answer in result.summary


async def test_slack_error_echoing_the_url_is_scrubbed(
    ctx: ActionContext, seen: Seen, secrets: tuple[str, ...]
) -> None:
    seen.slack = "echo_path"
    result = await NOTIFY_SLACK.run(_slack_params(text="t"), ctx)
    assert not result.ok
    assert result.output["response"].startswith("channel_not_found ")
    assert_hidden(result, secrets)


@pytest.mark.parametrize(("mode", "delay"), [("429", 7.0), ("500", 2.0)])
async def test_slack_rate_limit_and_5xx_are_temporary(
    ctx: ActionContext, seen: Seen, secrets: tuple[str, ...], mode: str, delay: float
) -> None:
    seen.slack = mode
    with pytest.raises(TemporaryError) as caught:
        await NOTIFY_SLACK.run(_slack_params(text="t"), ctx)
    assert caught.value.delay == delay
    assert_hidden(str(caught.value), secrets)


async def test_slack_missing_env_is_permanent(
    ctx: ActionContext, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    with pytest.raises(PermanentError, match="SLACK_WEBHOOK_URL is not set"):
        await NOTIFY_SLACK.run(_slack_params(text="t"), ctx)
    assert seen.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T1/B1/s3cretSlackHookToken42",
        "not a url s3cretSlackHookToken42",
        "ftp://127.0.0.1/s3cretSlackHookToken42",
    ],
)
async def test_slack_url_from_env_is_allowlisted_without_showing_it(
    ctx: ActionContext, seen: Seen, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
    with pytest.raises(NotAllowedError) as caught:
        await NOTIFY_SLACK.run(_slack_params(text="t"), ctx)
    assert "s3cretSlackHookToken42" not in str(caught.value)
    assert seen.requests == []


def test_slack_describe_names_the_env_var() -> None:
    described = NOTIFY_SLACK.describe(_slack_params(text="t", title="T"))
    assert described["webhook_url"] == "[from env SLACK_WEBHOOK_URL]"
    assert described["json"]["blocks"][0]["type"] == "header"


@pytest.mark.parametrize(
    "extra",
    [
        {"webhook_url_env": "RESPONDER_WEBHOOK_TOKEN"},
        {"webhook_url_env": "BAD-NAME"},
        {"webhook_url": "https://hooks.slack.com/services/x"},
        {"link": "javascript:alert(1)"},
        {"title": "x" * 151},
        {"text": ""},
    ],
)
def test_slack_params_are_checked(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SlackParams.model_validate({"webhook_url_env": "SLACK_WEBHOOK_URL", "text": "t", **extra})


# --- notify.pagerduty -----------------------------------------------------------------------


def _pd_params(server: TestServer, **extra: Any) -> PagerDutyParams:
    values = {"routing_key_env": "PD_ROUTING_KEY", "url": str(server.make_url("/v2/enqueue"))}
    return PagerDutyParams.model_validate({**values, **extra})


async def test_pagerduty_trigger(
    server: TestServer, ctx: ActionContext, seen: Seen, secrets: tuple[str, ...]
) -> None:
    params = _pd_params(
        server,
        event_action="trigger",
        summary="checkout 5xx: flag checkout-v2 turned off",
        severity="critical",
        component="checkout",
        group="shop",
        **{"class": "containment"},
        custom_details={"run": 42},
        dedup_key="responder:fp-1",
    )
    result = await NOTIFY_PAGERDUTY.run(params, ctx)
    sent = seen.requests[0]
    assert (sent.method, sent.path, sent.headers["Content-Type"]) == (
        "POST",
        "/v2/enqueue",
        "application/json",
    )
    assert _body(seen) == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "responder:fp-1",
        "client": "responder",
        "payload": {
            "summary": "checkout 5xx: flag checkout-v2 turned off",
            "source": "responder",
            "severity": "critical",
            "component": "checkout",
            "group": "shop",
            "class": "containment",
            "custom_details": {"run": 42},
        },
    }
    assert result.ok
    assert result.output == {
        "status": 202,
        "dedup_key": "responder:fp-1",
        "message": "Event processed",
    }
    assert_hidden((result, NOTIFY_PAGERDUTY.describe(params)), secrets)


async def test_pagerduty_default_dedup_key_and_resolve(
    server: TestServer, ctx: ActionContext, seen: Seen, secrets: tuple[str, ...]
) -> None:
    trigger = _pd_params(server, event_action="trigger", summary="s", severity="info")
    assert (await NOTIFY_PAGERDUTY.run(trigger, ctx)).output[
        "dedup_key"
    ] == "responder:rule-1:run-1"
    resolve = _pd_params(server, event_action="resolve", dedup_key="responder:rule-1:run-1")
    result = await NOTIFY_PAGERDUTY.run(resolve, ctx)
    assert _body(seen, 1) == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "responder:rule-1:run-1",
        "client": "responder",
    }
    assert result.ok


async def test_pagerduty_400_reports_errors(
    server: TestServer, ctx: ActionContext, seen: Seen, secrets: tuple[str, ...]
) -> None:
    params = _pd_params(server, event_action="trigger", summary="make it fail", severity="error")
    result = await NOTIFY_PAGERDUTY.run(params, ctx)
    assert not result.ok
    assert result.output["status"] == 400
    assert result.output["errors"] == ["'payload.summary' rejected by the test server"]
    assert "rejected by the test server" in result.summary
    assert_hidden(result, secrets)


@pytest.mark.parametrize("mode", ["429", "502"])
async def test_pagerduty_throttle_and_5xx_are_temporary(
    server: TestServer, ctx: ActionContext, seen: Seen, secrets: tuple[str, ...], mode: str
) -> None:
    seen.pagerduty = mode
    params = _pd_params(server, event_action="acknowledge", dedup_key="k")
    with pytest.raises(TemporaryError, match=f"answered {mode}") as caught:
        await NOTIFY_PAGERDUTY.run(params, ctx)
    assert_hidden(str(caught.value), secrets)


@pytest.mark.parametrize(("value", "match"), [(None, "is not set"), ("short-s3cret", "32")])
async def test_pagerduty_bad_routing_key_is_permanent(
    server: TestServer,
    ctx: ActionContext,
    seen: Seen,
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
    match: str,
) -> None:
    if value is None:
        monkeypatch.delenv("PD_ROUTING_KEY", raising=False)
    else:
        monkeypatch.setenv("PD_ROUTING_KEY", value)
    params = _pd_params(server, event_action="resolve", dedup_key="k")
    with pytest.raises(PermanentError, match=match) as caught:
        await NOTIFY_PAGERDUTY.run(params, ctx)
    assert "PD_ROUTING_KEY" in str(caught.value)
    assert "short-s3cret" not in str(caught.value)
    assert seen.requests == []


def test_pagerduty_url_is_allowlisted() -> None:
    params = PagerDutyParams.model_validate(
        {"routing_key_env": "PD_ROUTING_KEY", "event_action": "resolve", "dedup_key": "k"}
    )
    assert params.url == "https://events.pagerduty.com/v2/enqueue"
    assert NOTIFY_PAGERDUTY.check is not None
    with pytest.raises(NotAllowedError, match=r"events\.pagerduty\.com"):
        NOTIFY_PAGERDUTY.check(params, ("127.0.0.1",))
    NOTIFY_PAGERDUTY.check(params, ("events.pagerduty.com",))


def test_pagerduty_describe_hides_the_key() -> None:
    params = PagerDutyParams.model_validate(
        {"routing_key_env": "PD_ROUTING_KEY", "event_action": "trigger", "summary": "s"}
        | {"severity": "warning"}
    )
    described = NOTIFY_PAGERDUTY.describe(params)
    assert described["json"]["routing_key"] == "[from env PD_ROUTING_KEY]"
    assert described["json"]["dedup_key"] == "responder:{rule_id}:{run_id}"


@pytest.mark.parametrize(
    "extra",
    [
        {"event_action": "trigger", "severity": "critical"},  # no summary
        {"event_action": "trigger", "summary": "s"},  # no severity
        {"event_action": "trigger", "summary": "x" * 1025, "severity": "info"},
        {"event_action": "page", "dedup_key": "k"},
        {"event_action": "resolve", "dedup_key": "k" * 256},
        {"event_action": "resolve", "routing_key": ROUTING_KEY},
        {"event_action": "resolve", "routing_key_env": "RESPONDER_DATABASE_URL"},
    ],
)
def test_pagerduty_params_are_checked(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PagerDutyParams.model_validate({"routing_key_env": "PD_ROUTING_KEY", **extra})


# --- notify.webhook -------------------------------------------------------------------------


def _hook_params(server: TestServer, **extra: Any) -> WebhookParams:
    values = {"url": str(server.make_url("/hook")), "json": {"event": "reset", "n": [1]}}
    return WebhookParams.model_validate({**values, **extra})


async def test_webhook_resolves_env_headers(
    server: TestServer, ctx: ActionContext, seen: Seen, secrets: tuple[str, ...]
) -> None:
    headers = {"Authorization": "env:HOOK_TOKEN", "X-Team": "sre"}
    params = _hook_params(server, headers=headers)
    result = await NOTIFY_WEBHOOK.run(params, ctx)
    sent = seen.requests[0]
    assert (sent.method, sent.path, sent.body) == ("POST", "/hook", b'{"event":"reset","n":[1]}')
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Authorization"] == HEADER_SECRET
    assert sent.headers["X-Team"] == "sre"
    assert sent.headers["Idempotency-Key"] == "responder:run-1:notify"
    assert result.ok
    assert result.output["status"] == 200
    assert "[REDACTED]" in result.output["body"]  # the receiver echoed the secret back
    described = NOTIFY_WEBHOOK.describe(params)
    assert described["headers"]["Authorization"] == "[from env HOOK_TOKEN]"
    assert_hidden((result, described), secrets)


@pytest.mark.parametrize(("status", "ok"), [(200, True), (202, True), (204, True), (404, False)])
async def test_webhook_any_2xx_is_ok(
    server: TestServer, ctx: ActionContext, seen: Seen, status: int, ok: bool
) -> None:
    seen.webhook = status
    result = await NOTIFY_WEBHOOK.run(_hook_params(server), ctx)
    assert result.ok is ok
    assert result.output["status"] == status


@pytest.mark.parametrize(("status", "delay"), [(429, 3.0), (503, 2.0)])
async def test_webhook_429_and_5xx_are_temporary(
    server: TestServer, ctx: ActionContext, seen: Seen, status: int, delay: float
) -> None:
    seen.webhook = status
    with pytest.raises(TemporaryError) as caught:
        await NOTIFY_WEBHOOK.run(_hook_params(server), ctx)
    assert caught.value.delay == delay


async def test_webhook_missing_env_is_permanent(
    server: TestServer, ctx: ActionContext, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    params = _hook_params(server, headers={"X-Token": "env:NOPE_TOKEN"})
    with pytest.raises(PermanentError, match="NOPE_TOKEN"):
        await NOTIFY_WEBHOOK.run(params, ctx)
    assert seen.requests == []


async def test_webhook_url_is_allowlisted(ctx: ActionContext) -> None:
    params = WebhookParams.model_validate({"url": "http://evil.example/x", "json": {}})
    with pytest.raises(NotAllowedError):
        await NOTIFY_WEBHOOK.run(params, ctx)
    assert NOTIFY_WEBHOOK.check is not None
    with pytest.raises(NotAllowedError):
        NOTIFY_WEBHOOK.check(params, ("127.0.0.1",))


def test_webhook_describe_redacts_literal_secrets() -> None:
    params = WebhookParams.model_validate(
        {"url": "http://a.svc/h?token=t0k", "headers": {"X-Api-Key": "k3y"}, "json": {"a": 1}}
    )
    assert NOTIFY_WEBHOOK.describe(params) == {
        "method": "POST",
        "url": "http://a.svc/h?token=[REDACTED]",
        "headers": {
            "X-Api-Key": "[REDACTED]",
            "Content-Type": "application/json",
            "Idempotency-Key": "responder:<run_id>:<step_id>",
        },
        "json": {"a": 1},
    }


@pytest.mark.parametrize(
    "extra",
    [
        {"json": [1, 2]},
        {"json": {"x": float("nan")}},
        {"headers": {"Content-Type": "text/plain"}},
        {"headers": {"X-A": "env:RESPONDER_WEBHOOK_TOKEN"}},
        {"headers": {"X-A": "env:bad name"}},
        {"headers": {"X-A": "a\r\nInjected: 1"}},
    ],
)
def test_webhook_params_are_checked(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WebhookParams.model_validate({"url": "http://a.svc/", "json": {}, **extra})


# --- all three, through a registry (the planner's round trip) -------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("notify.slack", {"webhook_url_env": "SLACK_WEBHOOK_URL", "text": "t"}),
        (
            "notify.pagerduty",
            {"routing_key_env": "K", "event_action": "trigger", "summary": "s"}
            | {"severity": "info", "class": "c"},
        ),
        ("notify.webhook", {"url": "http://a.svc/", "json": {"a": 1}}),
    ],
)
def test_params_round_trip_and_are_diagnostic(name: str, params: dict[str, Any]) -> None:
    registry = ActionRegistry([NOTIFY_SLACK, NOTIFY_PAGERDUTY, NOTIFY_WEBHOOK])
    model = registry.validate(name, params)
    dumped = model.model_dump(mode="json")
    assert registry.validate(name, dumped) == model
    assert registry.get(name).action_class == "diagnostic"
