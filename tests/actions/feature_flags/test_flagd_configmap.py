"""`feature_flag.disable`/`enable` with `provider: flagd` on a ConfigMap source: the real
KubernetesApi adapter and client against the fake API server (tests/support/kubernetes/), and
the written document read by the real OpenFeature flagd provider."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from responder.actions.base import ActionContext
from responder.actions.catalog import PolicyCatalog
from responder.actions.feature_flags.switches import (
    FEATURE_FLAG_DISABLE,
    FEATURE_FLAG_ENABLE,
    FeatureFlagParams,
)
from responder.actions.shipped import default_registry
from responder.adapters.kubernetes.api import KubernetesApi
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from tests.support.kubernetes.fixtures import context_for
from tests.support.kubernetes.server import FakeKube

NAME, KEY = "feature-flags", "flags.flagd.json"
PATH = f"/api/v1/namespaces/shop/configmaps/{NAME}"
EVENTS = "/api/v1/namespaces/shop/events"
TARGETING = {"if": [{"==": [{"var": "tier"}, "gold"]}, "on", "off"]}
OTHER_KEY = "other.flagd.json"
OTHER_TEXT = '{"flags": {"legacy": {"state": "ENABLED", "variants": {"on": true}, ' + (
    '"defaultVariant": "on", "targeting": {"if": [true, "on"]}}}}'
)
ANNOTATIONS = {"owner": "team-shop", "kubectl.kubernetes.io/last-applied-configuration": "{}"}
BINARY = {"logo.png": "iVBORw0KGgo="}


def _flags() -> dict[str, Any]:
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            "checkout-v2": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "on",
                "targeting": TARGETING,
            },
            "banner": {
                "state": "ENABLED",
                "variants": {"plain": "hello", "sale": "50% off"},
                "defaultVariant": "sale",
            },
        },
    }


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


@dataclass
class RacingKube(FakeKube):
    """The fake, with a hook that runs once before each PUT (someone else's change, made
    after responder read the ConfigMap and before its write arrives)."""

    before_put: Callable[[], Awaitable[None]] | None = None
    _in_hook: bool = False

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method == "PUT" and self.before_put is not None and not self._in_hook:
            self._in_hook = True
            try:
                await self.before_put()
            finally:
                self._in_hook = False
        return await super()._dispatch(request)


@pytest.fixture
async def fake_kube() -> AsyncIterator[RacingKube]:
    """The fake API server holding `shop/feature-flags` (two data keys, labels, annotations
    and binaryData)."""
    fake = RacingKube()
    await fake.start()
    stored = fake.add_config_map("shop", NAME, {KEY: _text(_flags()), OTHER_KEY: OTHER_TEXT})
    stored["metadata"]["annotations"] = dict(ANNOTATIONS)
    stored["binaryData"] = dict(BINARY)
    try:
        yield fake
    finally:
        await fake.close()


def _params(flag: str = "checkout-v2", **extra: Any) -> FeatureFlagParams:
    values = {
        "provider": "flagd",
        "namespace": "shop",
        "config_map": NAME,
        "key": KEY,
        "flag": flag,
        **extra,
    }
    return FeatureFlagParams.model_validate(values)


def _stored(fake: FakeKube) -> dict[str, Any]:
    return fake.must("", "configmaps", "shop", NAME)


def _document(fake: FakeKube) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_stored(fake)["data"][KEY])
    return loaded


def _calls(fake: FakeKube) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests]


async def test_disable_rewrites_only_the_flag_and_verifies_it(
    fake_kube: RacingKube, kube_ctx: ActionContext
) -> None:
    read_version = _stored(fake_kube)["metadata"]["resourceVersion"]
    result = await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)

    assert (result.ok, result.verified) == (True, True), result
    assert result.summary == (
        f"flagd flag checkout-v2 in ConfigMap shop/{NAME} ({KEY}): on -> off (verified)"
    )
    assert result.output["written"] is True
    assert result.output["conflicts"] == 0
    assert result.output["removed_targeting"] == TARGETING
    assert result.output["before"] == {
        "state": "ENABLED",
        "default_variant": "on",
        "targeting": True,
    }
    assert result.output["after"] == {
        "state": "ENABLED",
        "default_variant": "off",
        "targeting": False,
    }
    expected = _flags()
    del expected["flags"]["checkout-v2"]["targeting"]
    expected["flags"]["checkout-v2"]["defaultVariant"] = "off"
    stored = _stored(fake_kube)
    assert stored["data"] == {KEY: _text(expected), OTHER_KEY: OTHER_TEXT}  # layout kept
    assert stored["metadata"]["labels"] == {"app": "flags"}
    assert stored["metadata"]["annotations"] == ANNOTATIONS
    assert stored["binaryData"] == BINARY
    assert result.output["resource_version"] == {
        "read": read_version,
        "written": stored["metadata"]["resourceVersion"],
    }
    assert _calls(fake_kube) == [
        f"GET {PATH}",  # the action reads the document
        f"GET {PATH}",  # the adapter reads the object it PUTs back whole
        f"PUT {PATH}",
        f"POST {EVENTS}",
        f"GET {PATH}",  # the read-back
    ]
    [put] = fake_kube.seen("PUT", PATH)
    assert put.query == {"fieldManager": "responder"}
    assert put.content_type is None  # the client sends JSON without one; the server defaults
    assert put.json()["metadata"]["resourceVersion"] == read_version


async def test_enable_serves_on_to_everyone(fake_kube: RacingKube, kube_ctx: ActionContext) -> None:
    await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)
    result = await FEATURE_FLAG_ENABLE.run(_params(), kube_ctx)
    assert (result.ok, result.verified) == (True, True), result
    assert result.output["variant"] == "on"
    assert "removed_targeting" not in result.output  # disable took it out already
    flag = _document(fake_kube)["flags"]["checkout-v2"]
    assert flag == {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
    }
    assert _document(fake_kube)["flags"]["banner"] == _flags()["flags"]["banner"]


async def test_a_named_variant_is_used(fake_kube: RacingKube, kube_ctx: ActionContext) -> None:
    result = await FEATURE_FLAG_DISABLE.run(_params("banner", variant="plain"), kube_ctx)
    assert (result.ok, result.verified) == (True, True)
    assert _document(fake_kube)["flags"]["banner"]["defaultVariant"] == "plain"
    assert _document(fake_kube)["flags"]["checkout-v2"] == _flags()["flags"]["checkout-v2"]


async def test_an_event_on_the_config_map_names_rule_run_flag_and_variant(
    fake_kube: RacingKube, kube_ctx: ActionContext
) -> None:
    uid = _stored(fake_kube)["metadata"]["uid"]
    result = await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)
    [event] = fake_kube.listed("", "events", "shop")
    assert event["reason"] == "ResponderFeatureFlag"
    assert event["type"] == "Normal"
    assert event["action"] == "FeatureFlagDisable"
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": NAME,
        "namespace": "shop",
        "uid": uid,
    }
    assert event["message"] == (
        "rule web-broken, run run-42, step contain: feature_flag.disable: flagd flag "
        f"checkout-v2 (data key {KEY}) serves variant off to every client (default was on; "
        "targeting removed)"
    )
    assert event["source"] == {"component": "responder"}
    assert result.output["event"]["recorded"] is True
    assert result.output["event"]["name"] == event["metadata"]["name"]


async def test_a_forbidden_event_never_fails_the_switch(
    fake_kube: RacingKube, kube_ctx: ActionContext
) -> None:
    fake_kube.fail("POST", EVENTS, 403)
    result = await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)
    assert (result.ok, result.verified) == (True, True)
    assert result.output["event"]["recorded"] is False
    assert 'RBAC verb "create" on resource "events"' in result.output["event"]["error"]
    assert _document(fake_kube)["flags"]["checkout-v2"]["defaultVariant"] == "off"


async def test_already_serving_the_variant_writes_nothing(
    fake_kube: RacingKube, kube_ctx: ActionContext
) -> None:
    await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)
    version = _stored(fake_kube)["metadata"]["resourceVersion"]
    fake_kube.requests.clear()
    result = await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)
    assert (result.ok, result.verified) == (True, True)
    assert result.output["written"] is False
    assert result.summary.endswith("already serves off; not written")
    assert _calls(fake_kube) == [f"GET {PATH}"]  # no PUT, no second Event
    assert _stored(fake_kube)["metadata"]["resourceVersion"] == version
    assert len(fake_kube.listed("", "events", "shop")) == 1


async def test_unknown_flag_variant_and_key_are_refused_untouched(
    fake_kube: RacingKube, kube_ctx: ActionContext
) -> None:
    original = copy.deepcopy(_stored(fake_kube))
    with pytest.raises(PermanentError, match=r"'checkout' is not defined .*banner, checkout-v2"):
        await FEATURE_FLAG_DISABLE.run(_params("checkout"), kube_ctx)
    with pytest.raises(PermanentError, match=r"variants: plain, sale\)"):
        await FEATURE_FLAG_DISABLE.run(_params("banner"), kube_ctx)
    with pytest.raises(PermanentError, match=rf"no data key 'flags.json' \(keys: {KEY}, other"):
        await FEATURE_FLAG_DISABLE.run(_params(key="flags.json"), kube_ctx)
    assert fake_kube.seen("PUT", PATH) == []
    assert _stored(fake_kube) == original


async def test_a_change_between_read_and_write_is_a_409_then_redone_on_the_new_document(
    fake_kube: RacingKube, kube_api: KubernetesApi, kube_ctx: ActionContext
) -> None:
    async def someone_else_edits_banner() -> None:
        fake_kube.before_put = None  # once
        current = await kube_api.get_config_map("shop", NAME)
        document = json.loads(current.data[KEY])
        document["flags"]["banner"]["defaultVariant"] = "plain"
        data = {**current.data, KEY: _text(document)}
        await kube_api.replace_config_map("shop", NAME, data, current.resource_version)

    read_version = _stored(fake_kube)["metadata"]["resourceVersion"]
    fake_kube.before_put = someone_else_edits_banner
    result = await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)

    assert (result.ok, result.verified) == (True, True), result
    assert result.output["conflicts"] == 1
    assert "conflict (409)" in result.output["conflict"]
    assert result.summary.endswith("(verified) after 1 conflicting change(s)")
    document = _document(fake_kube)
    assert document["flags"]["banner"]["defaultVariant"] == "plain"  # their change is kept
    assert document["flags"]["checkout-v2"]["defaultVariant"] == "off"  # and ours made
    assert "targeting" not in document["flags"]["checkout-v2"]
    theirs, first, second = fake_kube.seen("PUT", PATH)  # the hook runs before ours lands
    assert first.json()["metadata"]["resourceVersion"] == read_version  # refused: 409
    assert theirs.json()["metadata"]["resourceVersion"] == read_version
    assert second.json()["metadata"]["resourceVersion"] == result.output["resource_version"]["read"]
    assert result.output["resource_version"]["read"] != read_version
    assert len(fake_kube.listed("", "events", "shop")) == 1


async def test_a_config_map_that_keeps_changing_gives_up_with_a_temporary_error(
    fake_kube: RacingKube, kube_api: KubernetesApi, kube_ctx: ActionContext
) -> None:
    async def someone_else_flips_banner() -> None:
        current = await kube_api.get_config_map("shop", NAME)
        document = json.loads(current.data[KEY])
        banner = document["flags"]["banner"]
        banner["defaultVariant"] = "plain" if banner["defaultVariant"] == "sale" else "sale"
        data = {**current.data, KEY: _text(document)}
        await kube_api.replace_config_map("shop", NAME, data, current.resource_version)

    fake_kube.before_put = someone_else_flips_banner
    with pytest.raises(TemporaryError, match=rf"key '{KEY}' changed 4 times while responder"):
        await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)
    assert _document(fake_kube)["flags"]["checkout-v2"]["defaultVariant"] == "on"
    assert fake_kube.listed("", "events", "shop") == []


async def test_a_failed_write_without_a_conflict_is_raised_and_a_retry_succeeds(
    fake_kube: RacingKube, kube_ctx: ActionContext
) -> None:
    fake_kube.fail("PUT", PATH, 500)
    with pytest.raises(TemporaryError, match="answered 500"):
        await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)
    assert len(fake_kube.seen("PUT", PATH)) == 1  # the re-read showed nobody wrote: not retried
    assert _document(fake_kube)["flags"]["checkout-v2"]["defaultVariant"] == "on"
    result = await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)
    assert (result.ok, result.verified, result.output["conflicts"]) == (True, True, 0)


async def test_a_forbidden_write_names_the_rbac_verb(
    fake_kube: RacingKube, kube_ctx: ActionContext
) -> None:
    fake_kube.fail("PUT", PATH, 403)
    with pytest.raises(PermanentError, match=r'RBAC verb "update" on resource "configmaps"'):
        await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)


async def test_a_namespace_outside_the_allowlist_sends_nothing(
    fake_kube: RacingKube, kube_api: KubernetesApi
) -> None:
    fake_kube.add_config_map("payments", NAME, {KEY: _text(_flags())})
    fake_kube.requests.clear()
    with pytest.raises(NotAllowedError, match="'payments' is not in RESPONDER_K8S_ALLOWED"):
        await FEATURE_FLAG_DISABLE.run(_params(namespace="payments"), context_for(kube_api))
    with pytest.raises(NotAllowedError, match="no namespace is allowed; set RESPONDER_K8S"):
        await FEATURE_FLAG_DISABLE.run(_params(), context_for(kube_api, namespaces=()))
    assert fake_kube.requests == []


async def test_without_a_cluster_the_step_says_which_setting_to_set() -> None:
    with pytest.raises(
        PermanentError, match=r"set RESPONDER_KUBECONFIG .* RESPONDER_K8S_IN_CLUSTER"
    ):
        await FEATURE_FLAG_DISABLE.run(_params(), context_for(None))


def test_plan_time_checks_the_source_names_and_the_namespace_allowlist() -> None:
    catalog = PolicyCatalog(default_registry(), allowed_hosts=(), allowed_namespaces=("shop",))
    good = {
        "provider": "flagd",
        "namespace": "shop",
        "config_map": NAME,
        "key": KEY,
        "flag": "checkout-v2",
    }
    planned = catalog.validate_params("feature_flag.disable", good)
    assert (planned["config_map"], planned["key"], planned["path"]) == (NAME, KEY, None)
    with pytest.raises(NotAllowedError, match="'kube-system' is not in RESPONDER_K8S_ALLOWED"):
        catalog.validate_params("feature_flag.disable", {**good, "namespace": "kube-system"})
    bad: list[tuple[dict[str, Any], str]] = [
        ({"config_map": "flags/../secrets"}, r"with\.config_map: Value error"),
        ({"config_map": "Flags"}, r"with\.config_map: Value error"),
        ({"namespace": "shop/x"}, r"with\.namespace: Value error"),
        ({"key": "../flags.json"}, r"with\.key: Value error, a ConfigMap data key"),
        ({"key": ".."}, r"with\.key: Value error"),
        ({"key": "a" * 254}, r"with\.key: String should have at most 253"),
        ({"key": None}, r"with: Value error, a ConfigMap source needs namespace, config_map"),
        ({"path": "/srv/flags/f.json"}, r"with: Value error, give exactly one flag source"),
    ]
    for change, message in bad:
        with pytest.raises(PermanentError, match=message):
            catalog.validate_params("feature_flag.enable", {**good, **change})
    path_only = {"provider": "flagd", "path": "/srv/flags/f.json", "flag": "x"}
    with pytest.raises(PermanentError, match="belong to a ConfigMap source"):
        catalog.validate_params("feature_flag.enable", {**path_only, "key": KEY})
    with pytest.raises(PermanentError, match="give exactly one flag source"):
        catalog.validate_params("feature_flag.enable", {"provider": "flagd", "flag": "x"})


def test_describe_renders_the_requests_and_the_change() -> None:
    shown = FEATURE_FLAG_DISABLE.describe(_params())
    assert shown["config_map"] == {"namespace": "shop", "name": NAME, "key": KEY}
    assert shown["before"]["method"] == "GET"
    assert shown["before"]["path"] == PATH
    assert (shown["method"], shown["path"]) == ("PUT", f"{PATH}?fieldManager=responder")
    assert "headers" not in shown  # the client sends the JSON body without a Content-Type
    assert shown["json"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": "shop", "resourceVersion": "<as read>"},
        "data": {KEY: "<the document as read, flags.checkout-v2 edited>"},
    }
    assert shown["set"] == {"state": "ENABLED", "defaultVariant": "off"}
    assert shown["remove"] == ["targeting"]
    assert shown["verify"] == {
        "method": "GET",
        "path": PATH,
        "expect": {"state": "ENABLED", "defaultVariant": "off", "targeting": None},
    }
    assert "409" in shown["conflict"]
    assert shown["event"]["path"] == EVENTS
    assert shown["event"]["json"]["reason"] == "ResponderFeatureFlag"
    assert shown["event"]["json"]["involvedObject"]["kind"] == "ConfigMap"
    assert "kubelet" in shown["propagation"]
    assert FEATURE_FLAG_ENABLE.describe(_params())["set"]["defaultVariant"] == "on"
    json.dumps(shown)  # plain JSON, stored with the step


async def test_the_written_document_is_what_flagd_serves_from_the_mounted_file(
    fake_kube: RacingKube, kube_ctx: ActionContext, tmp_path: Path
) -> None:
    """The kubelet projects data[key] as a file of the volume; the real OpenFeature flagd
    provider (file mode, as flagd reading the mount) then serves the safe variant to all."""
    await FEATURE_FLAG_DISABLE.run(_params(), kube_ctx)
    mounted = tmp_path / KEY
    mounted.write_text(_stored(fake_kube)["data"][KEY])
    domain = f"responder-cm-{uuid.uuid4().hex[:8]}"
    provider = FlagdProvider(
        resolver_type=ResolverType.FILE, offline_flag_source_path=str(mounted), deadline_ms=50
    )
    await asyncio.to_thread(api.set_provider_and_wait, provider, domain=domain)
    try:
        client = api.get_client(domain=domain)
        gold = EvaluationContext(targeting_key="user-1", attributes={"tier": "gold"})
        details = client.get_boolean_details("checkout-v2", True, gold)
        assert (details.value, details.variant, details.reason) == (False, "off", Reason.STATIC)
        banner = client.get_string_details("banner", "code-default", gold)
        assert (banner.value, banner.variant) == ("50% off", "sale")
    finally:
        provider.shutdown()
