"""A whole run skipped is one transition wherever it happens: refused at the gate when the
alert arrives, refused by the guards when a `for:` delay ends, or blocked on resume (its rule
disabled meanwhile). Each records `run_skipped` with its reason and a detail for humans, and
counts the same metrics: every step it skips and the run. Real app, real HTTP target."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apps import AUTH, JSON, AppFactory
from tests.support.clock import FakeClock
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import eventually, wait_for
from tests.support.targets import Target

Counts = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def rule(target: Target, *, delay: str = "", enabled: bool = True) -> str:
    guards = f"{{key: 'db', cooldown: 1h{', for: ' + delay if delay else ''}}}"
    return f"""
id: watched
enabled: {"true" if enabled else "false"}
match: {{matchers: ['alertname="DiskFull"']}}
guards: {guards}
steps:
  - {{id: look, action: log, with: {{message: "evidence for {{{{ labels.instance }}}}"}}}}
  - {{id: contain, action: test.contain, with: {{url: "{target.base_url}/contain"}}}}
"""


async def _post(client: TestClient[Any, Any], fingerprint: str, clock: FakeClock) -> None:
    body = am_body(am_alert(fingerprint=fingerprint, starts_at=clock.now()))
    response = await client.post("/v1/webhooks/alertmanager", data=body, headers={**AUTH, **JSON})
    assert response.status == 202, await response.text()


async def _counts(client: TestClient[Any, Any]) -> Counts:
    """The run and step counters as /metrics shows them now."""
    text = await (await client.get("/metrics")).text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("responder_runs_total", "responder_steps_total")
    }


async def _skipped_by(
    client: TestClient[Any, Any], act: Callable[[], Awaitable[str]]
) -> tuple[dict[str, Any], dict[str, Any], Counts]:
    """What `act` (which returns the id of the run it got skipped) changed: the run, its
    `run_skipped` audit event and the counters it moved (by how much)."""
    before = await _counts(client)
    run_id = await act()
    api = OperatorApi.in_process(client)
    run = await api.run_reaches(run_id, "skipped")

    async def audited() -> dict[str, Any] | None:
        found = await api.run(run_id)
        return next((e for e in found["audit"] if e["kind"] == "run_skipped"), None)

    event = await eventually(audited, what="run_skipped")
    after = await _counts(client)
    moved = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    return run, event, moved


def _expected(reason: str) -> Counts:
    """One run skipped, and both its steps skipped with `reason`."""
    return {
        ("responder_runs_total", (("rule", "watched"), ("state", "skipped"))): 1.0,
        **{
            (
                "responder_steps_total",
                (("action", action), ("outcome", "skipped"), ("reason", reason)),
            ): 1.0
            for action in ("log", "test.contain")
        },
    }


def _assert_skipped(run: dict[str, Any], event: dict[str, Any], reason: str, detail: str) -> None:
    assert (run["state"], run["reason"]) == ("skipped", reason)
    assert [s["reason"] for s in run["steps"]] == [reason, reason]
    assert event["reason"] == reason
    assert detail in event["details"]["detail"]


async def _runs(api: OperatorApi, state: str, count: int) -> list[dict[str, Any]] | None:
    found = [r for r in await api.runs() if r["state"] == state]
    return found if len(found) >= count else None


async def test_a_run_refused_at_the_gate_is_skipped_with_its_detail_and_counted(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(rule(target))
    clock = FakeClock()
    client = await make_client(http_allowed_hosts=(target.host,), clock=clock)
    api = OperatorApi.in_process(client)
    await _post(client, "f1", clock)
    await api.settled_runs(1)

    async def second_occurrence() -> str:
        clock.advance(timedelta(minutes=1))
        await _post(client, "f1", clock)
        [skipped] = await eventually(lambda: _runs(api, "skipped", 1), what="a skipped run")
        return str(skipped["run_id"])

    run, event, moved = await _skipped_by(client, second_occurrence)
    _assert_skipped(run, event, "cooldown", "db cooling down for")
    assert moved == _expected("cooldown")
    assert target.hits("/contain") == 1


async def test_a_run_refused_by_the_guards_after_its_delay_is_skipped_the_same_way(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(rule(target, delay="10m"))
    clock = FakeClock()
    client = await make_client(http_allowed_hosts=(target.host,), clock=clock)
    api = OperatorApi.in_process(client)
    await _post(client, "f1", clock)
    await eventually(lambda: _runs(api, "pending", 1), what="the first run pending")
    clock.advance(timedelta(minutes=10))
    await eventually(lambda: _runs(api, "succeeded", 1), what="the first run done")

    async def second_occurrence() -> str:
        clock.advance(timedelta(minutes=1))
        await _post(client, "f1", clock)
        [pending] = await eventually(lambda: _runs(api, "pending", 1), what="a pending run")
        clock.advance(timedelta(minutes=10))
        return str(pending["run_id"])

    run, event, moved = await _skipped_by(client, second_occurrence)
    _assert_skipped(run, event, "cooldown", "db cooling down for")
    assert moved == _expected("cooldown")
    assert target.hits("/contain") == 1


async def test_a_run_blocked_on_resume_is_skipped_the_same_way(
    make_client: AppFactory, rules_dir: Path, target: Target
) -> None:
    (rules_dir / "r.yaml").write_text(rule(target, delay="10m"))
    clock = FakeClock()
    client = await make_client(http_allowed_hosts=(target.host,), clock=clock)
    api = OperatorApi.in_process(client)

    async def disabled_while_waiting() -> str:
        await _post(client, "f1", clock)
        [pending] = await eventually(lambda: _runs(api, "pending", 1), what="a pending run")
        (rules_dir / "r.yaml").write_text(rule(target, delay="10m", enabled=False))

        async def reloaded() -> bool:
            return "'enabled': False" in str(await api.get_json("/v1/rules"))

        await wait_for(reloaded)
        clock.advance(timedelta(minutes=10))
        return str(pending["run_id"])

    run, event, moved = await _skipped_by(client, disabled_while_waiting)
    _assert_skipped(run, event, "rule_disabled", "rule watched was disabled while the run waited")
    assert moved == _expected("rule_disabled")
    assert target.hits("/contain") == 0
