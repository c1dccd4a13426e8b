"""`notify.webhook` reports the Idempotency-Key it sent (its description can only name it as
`responder:<run_id>:<step_id>`), and never the header secrets it resolved from the env."""

from __future__ import annotations

import pytest

from responder.actions.notify.webhooks import NOTIFY_WEBHOOK, WebhookParams
from tests.support.action_contexts import loopback_context
from tests.support.targets import running_target

TOKEN = "hook-token-5d4c3b2a"


async def test_the_webhook_reports_the_idempotency_key_it_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    async with running_target() as target, loopback_context(step_id="notify") as ctx:
        params = WebhookParams.model_validate(
            {
                "url": f"{target.base_url}/hook",
                "headers": {"Authorization": "env:HOOK_TOKEN"},
                "json": {"event": "reset"},
            }
        )
        assert NOTIFY_WEBHOOK.describe(params)["headers"]["Idempotency-Key"] == (
            "responder:<run_id>:<step_id>"
        )
        result = await NOTIFY_WEBHOOK.run(params, ctx)
    [request] = target.requests
    assert request.headers["Authorization"] == TOKEN
    assert result.sent == {"headers": {"Idempotency-Key": "responder:run-1:notify"}}
    assert request.headers["Idempotency-Key"] == "responder:run-1:notify"
    assert TOKEN not in str(result)
