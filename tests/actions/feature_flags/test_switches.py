"""`feature_flag.*` as a whole: the provider discriminator, planning round trips, settings, and
one run through the real app (rule -> alert -> verified flagd kill switch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from responder.actions.catalog import PolicyCatalog
from responder.actions.shipped import default_registry
from responder.errors import PermanentError
from responder.models.plans import ActionClass
from responder.models.runs import AuditKind, RunQuery, RunState
from responder.settings import Settings
from responder.web import keys
from tests.support.apps import AUTH, AppFactory
from tests.support.payload_builders import am_alert, am_body
from tests.support.polling import wait_for

EXAMPLES: dict[str, dict[str, Any]] = {
    "unleash": {
        "provider": "unleash",
        "base_url": "http://unleash.tools.svc:4242/",
        "flag": "checkout-v2",
        "environment": "production",
        "auth_header_env": "UNLEASH_TOKEN",
    },
    "flagd": {"provider": "flagd", "path": "/srv/flags/shop.flags.json", "flag": "checkout-v2"},
    "launchdarkly": {
        "provider": "launchdarkly",
        "project": "shop",
        "flag": "checkout-v2",
        "environment": "production",
        "auth_header_env": "LD_TOKEN",
    },
    "http": {
        "provider": "http",
        "url": "http://config.tools.svc/v1/flags/checkout-v2",
        "json": {"enabled": False},
        "verify": {"path": "enabled", "equals": False},
    },
}
CATALOG = PolicyCatalog(
    default_registry(),
    allowed_hosts=("*.svc", "app.launchdarkly.com"),
    flag_file_dirs=("/srv/flags",),
)


def test_both_actions_are_registered_as_containment() -> None:
    registry = default_registry()
    for name in ("feature_flag.disable", "feature_flag.enable"):
        spec = registry.get(name)
        assert spec.action_class is ActionClass.CONTAINMENT
        assert spec.check is not None
        assert spec.check_files is not None


@pytest.mark.parametrize("provider", sorted(EXAMPLES))
def test_planned_params_round_trip_for_every_provider(provider: str) -> None:
    planned = CATALOG.validate_params("feature_flag.disable", EXAMPLES[provider])
    assert planned["provider"] == provider
    assert json.loads(json.dumps(planned)) == planned  # stored as JSON in the run
    spec = default_registry().get("feature_flag.disable")
    again = spec.params_model.model_validate(planned)
    assert again.model_dump(mode="json") == planned
    assert CATALOG.classify("feature_flag.disable", planned) is ActionClass.CONTAINMENT
    assert CATALOG.describe("feature_flag.disable", planned)["provider"] == provider


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "with.provider: Field required"),
        ({"provider": "growthbook"}, "with.provider: Input tag 'growthbook'"),
        ({"provider": "unleash"}, "with.base_url: Field required; with.flag: Field required"),
        ({**EXAMPLES["unleash"], "flag": "a/../b"}, "with.flag: Value error, write 1-100"),
        ({**EXAMPLES["unleash"], "environment": ".."}, "with.environment: Value error"),
        ({**EXAMPLES["unleash"], "base_url": "http://u/?x=1"}, "with.base_url: Value error"),
        ({**EXAMPLES["launchdarkly"], "token": "x"}, "with.token: Extra inputs"),
        ({**EXAMPLES["flagd"], "path": "flags.json"}, "with.path: Value error"),
        ({**EXAMPLES["flagd"], "variant": "of\nf"}, "with.variant: Value error"),
        ({**EXAMPLES["http"], "verify": {"path": "x"}}, "with.verify.equals: Field required"),
    ],
)
def test_errors_name_the_field_as_written(params: dict[str, Any], expected: str) -> None:
    with pytest.raises(PermanentError) as caught:
        default_registry().validate("feature_flag.enable", params)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("provider", "change", "refused"),
    [
        ("unleash", {"base_url": "http://unleash.example.com"}, "unleash.example.com"),
        ("launchdarkly", {"base_url": "https://app.launchdarkly.us"}, "app.launchdarkly.us"),
        ("http", {"url": "http://evil.example/x"}, "evil.example"),
        ("flagd", {"path": "/etc/flags/x.json"}, "RESPONDER_FLAGD_FILE_DIRS"),
    ],
)
def test_planning_applies_the_allowlists(
    provider: str, change: dict[str, Any], refused: str
) -> None:
    with pytest.raises(PermanentError, match=refused):
        CATALOG.validate_params("feature_flag.disable", {**EXAMPLES[provider], **change})


def test_settings_read_the_flag_directories(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPONDER_FLAGD_FILE_DIRS", "/srv/flags/, /var/lib/flagd")
    assert Settings().targets.flagd_file_dirs == ("/srv/flags", "/var/lib/flagd")
    monkeypatch.setenv("RESPONDER_FLAGD_FILE_DIRS", "/srv/../etc")
    with pytest.raises(ValidationError, match="RESPONDER_FLAGD_FILE_DIRS"):
        Settings()


RULE = """
id: checkout-kill-switch
match:
  matchers: ['alertname="CheckoutErrors"']
guards:
  key: "{{{{ labels.flag }}}}"
steps:
  - id: kill
    action: feature_flag.disable
    with: {{provider: flagd, path: "{path}", flag: "{{{{ labels.flag }}}}"}}
"""


async def test_an_alert_turns_the_flag_off_through_the_app(
    make_client: AppFactory, rules_dir: Path, tmp_path: Path
) -> None:
    flag_dir = tmp_path / "flags"
    flag_dir.mkdir()
    flag_file = flag_dir / "shop.json"
    flag_file.write_text(
        json.dumps(
            {
                "flags": {
                    "checkout-v2": {
                        "state": "ENABLED",
                        "variants": {"on": True, "off": False},
                        "defaultVariant": "on",
                    }
                }
            }
        )
    )
    (rules_dir / "kill.yaml").write_text(RULE.format(path=flag_file))
    client: TestClient[Any, Any] = await make_client(flagd_file_dirs=(str(flag_dir),))
    reply = await client.post(
        "/v1/webhooks/alertmanager",
        data=am_body(am_alert("CheckoutErrors", labels={"flag": "checkout-v2"})),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert reply.status == 202
    store = client.app[keys.STORE]

    async def finished() -> bool:
        found = await store.list_runs(RunQuery())
        return bool(found) and found[0].state is RunState.SUCCEEDED

    await wait_for(finished)
    run = (await store.list_runs(RunQuery()))[0]
    assert json.loads(flag_file.read_text())["flags"]["checkout-v2"]["defaultVariant"] == "off"
    audit = await store.audit_for_run(run.run_id)
    succeeded = [e for e in audit if e.kind is AuditKind.STEP_SUCCEEDED]
    assert [e.details.get("verified") for e in succeeded] == [True]
