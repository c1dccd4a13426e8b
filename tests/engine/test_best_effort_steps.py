"""A failing notification never fails containment: notify.* steps are best effort by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.targets import Target, running_target


def _rule(chat: Target, target: Target, notify_policy: str = "") -> str:
    return f"""
id: contain-and-tell
match: {{matchers: ['alertname="DiskFull"']}}
steps:
  - id: tell
    action: notify.webhook
    {notify_policy}
    with: {{url: "{chat.base_url}/hook", json: {{text: "containing {{{{ labels.instance }}}}"}}}}
  - {{id: act, action: test.contain, with: {{url: "{target.base_url}/act"}}}}
"""


async def _finished_run(client: TestClient[Any, Any]) -> dict[str, Any]:
    return await OperatorApi.in_process(client).settled_run()


async def _fire(make_client: AppFactory, chat: Target, target: Target) -> dict[str, Any]:
    client = await make_client(http_allowed_hosts=(target.host, chat.host))
    response = await client.post(
        "/v1/webhooks/alertmanager", data=am_body(am_alert()), headers={**AUTH, **JSON}
    )
    assert response.status == 202
    return await _finished_run(client)


async def test_a_failing_notification_does_not_stop_or_fail_containment(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    async with running_target() as chat:
        chat.status = 400  # the chat service refuses the message
        (rules_dir / "r.yaml").write_text(_rule(chat, target))
        run = await _fire(make_client, chat, target)
    steps = {s["step_id"]: s for s in run["steps"]}
    assert chat.hits("/hook") == 1
    assert steps["tell"]["state"] == "failed"
    assert "400" in steps["tell"]["error"]
    assert steps["act"]["state"] == "succeeded"
    assert target.hits("/act") == 1
    assert run["state"] == "succeeded"  # the tolerated failure is visible on its step only


async def test_a_rule_may_make_a_notification_mandatory(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    async with running_target() as chat:
        chat.status = 400
        (rules_dir / "r.yaml").write_text(_rule(chat, target, "continue_on_failure: false"))
        run = await _fire(make_client, chat, target)
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["tell"]["state"] == "failed"
    assert steps["act"]["state"] == "skipped"
    assert steps["act"]["reason"] == "previous_step_failed"
    assert target.hits("/act") == 0
    assert run["state"] == "failed"
