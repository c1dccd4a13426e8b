"""`feature_flag.disable`/`enable` with `provider: flagd`, read by the real OpenFeature flagd
provider (FILE resolver, in process) and written through the real LocalFlagFiles adapter."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason

from responder.actions.base import ActionContext
from responder.actions.catalog import PolicyCatalog
from responder.actions.feature_flags.switches import (
    FEATURE_FLAG_DISABLE,
    FEATURE_FLAG_ENABLE,
    FeatureFlagParams,
)
from responder.actions.shipped import default_registry
from responder.adapters.flag_files import LocalFlagFiles
from responder.errors import NotAllowedError, PermanentError, TemporaryError
from responder.models.http import HttpRequest, HttpResponse

GOLD = EvaluationContext(targeting_key="user-1", attributes={"tier": "gold"})
PLAIN = EvaluationContext(targeting_key="user-2", attributes={"tier": "silver"})
TARGETING = {"if": [{"==": [{"var": "tier"}, "gold"]}, "on", "off"]}


def _flags() -> dict[str, Any]:
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            "checkout-v2": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "targeting": TARGETING,
            },
            "banner": {
                "state": "ENABLED",
                "variants": {"plain": "hello", "sale": "50% off"},
                "defaultVariant": "sale",
            },
            "new-ui": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "on",
            },
        },
    }


class _NoHttp:
    async def send(self, request: HttpRequest) -> HttpResponse:
        raise AssertionError("the flagd provider must not send HTTP")


@pytest.fixture
def flag_dir(tmp_path: Path) -> Path:
    path = tmp_path / "flags"
    path.mkdir()
    return path


def _age(path: Path) -> None:
    """Move the mtime 10 s back: the provider reloads only when the mtime grows, and file
    times tick in jiffies, so the next write must not share the current one's."""
    then = time.time_ns() - 10_000_000_000
    os.utime(path, ns=(then, then))


@pytest.fixture
def flag_file(flag_dir: Path) -> Path:
    path = flag_dir / "flags.json"
    path.write_text(json.dumps(_flags(), indent=2) + "\n")
    _age(path)
    return path


def _ctx(*dirs: Path, files: bool = True) -> ActionContext:
    return ActionContext(
        http=_NoHttp(),
        allowed_hosts=(),
        run_id="run-3",
        rule_id="checkout-errors",
        step_id="kill",
        output_max_bytes=4096,
        flag_files=LocalFlagFiles([str(d) for d in dirs]) if files else None,
    )


def _params(path: Path | str, flag: str = "checkout-v2", **extra: Any) -> FeatureFlagParams:
    values = {"provider": "flagd", "path": str(path), "flag": flag, **extra}
    return FeatureFlagParams.model_validate(values)


@pytest.fixture
def client(flag_file: Path) -> Iterator[OpenFeatureClient]:
    """An application's OpenFeature client evaluating the flag file in process."""
    domain = f"responder-test-{uuid.uuid4().hex[:8]}"
    provider = FlagdProvider(
        resolver_type=ResolverType.FILE, offline_flag_source_path=str(flag_file), deadline_ms=50
    )
    api.set_provider_and_wait(provider, domain=domain)
    try:
        yield api.get_client(domain=domain)
    finally:
        provider.shutdown()


async def _until(client: OpenFeatureClient, variant: str) -> FlagEvaluationDetails[bool]:
    """The gold user's evaluation, once the provider has reloaded the file (within 5 s)."""
    for _ in range(250):
        details = client.get_boolean_details("checkout-v2", True, GOLD)
        if details.variant == variant:
            return details
        await asyncio.sleep(0.02)
    raise AssertionError(f"the provider never served {variant!r}: {details}")


def _others(client: OpenFeatureClient) -> list[tuple[Any, str | None, Any]]:
    banner = client.get_string_details("banner", "code-default", PLAIN)
    new_ui = client.get_boolean_details("new-ui", False, GOLD)
    return [(d.value, d.variant, d.reason) for d in (banner, new_ui)]


async def test_disable_makes_every_client_get_the_safe_variant(
    flag_dir: Path, flag_file: Path, client: OpenFeatureClient
) -> None:
    before = client.get_boolean_details("checkout-v2", False, GOLD)
    assert (before.value, before.variant, before.reason) == (True, "on", Reason.TARGETING_MATCH)
    others = _others(client)
    assert others == [("50% off", "sale", Reason.STATIC), (True, "on", Reason.STATIC)]

    result = await FEATURE_FLAG_DISABLE.run(_params(flag_file), _ctx(flag_dir))

    assert (result.ok, result.verified) == (True, True)
    assert result.output["written"] is True
    assert result.output["removed_targeting"] == TARGETING
    assert result.output["before"] == {
        "state": "ENABLED",
        "default_variant": "off",
        "targeting": True,
    }
    assert result.output["after"] == {
        "state": "ENABLED",
        "default_variant": "off",
        "targeting": False,
    }
    after = await _until(client, "off")
    assert (after.value, after.reason, after.error_code) == (False, Reason.STATIC, None)
    plain = client.get_boolean_details("checkout-v2", True, PLAIN)
    assert (plain.value, plain.variant) == (False, "off")
    assert _others(client) == others


async def test_enable_serves_on_to_everyone(
    flag_dir: Path, flag_file: Path, client: OpenFeatureClient
) -> None:
    await FEATURE_FLAG_DISABLE.run(_params(flag_file), _ctx(flag_dir))
    await _until(client, "off")
    _age(flag_file)
    result = await FEATURE_FLAG_ENABLE.run(_params(flag_file), _ctx(flag_dir))
    assert (result.ok, result.verified) == (True, True)
    assert result.output["variant"] == "on"
    assert (await _until(client, "on")).value is True
    assert client.get_boolean_details("checkout-v2", False, PLAIN).value is True


async def test_a_named_variant_is_used(flag_dir: Path, flag_file: Path) -> None:
    result = await FEATURE_FLAG_DISABLE.run(
        _params(flag_file, "banner", variant="plain"), _ctx(flag_dir)
    )
    assert (result.ok, result.verified) == (True, True)
    assert json.loads(flag_file.read_text())["flags"]["banner"]["defaultVariant"] == "plain"


async def test_state_disabled_would_hand_clients_their_code_default(
    flag_dir: Path, flag_file: Path, client: OpenFeatureClient
) -> None:
    """Why the kill switch never writes `state: DISABLED`: the client's code default wins."""
    document = _flags()
    document["flags"]["new-ui"]["state"] = "DISABLED"
    document["flags"]["new-ui"]["defaultVariant"] = "off"
    flag_file.write_text(json.dumps(document, indent=2) + "\n")

    async def code_default_served() -> bool:
        details = client.get_boolean_details("new-ui", True, GOLD)
        return details.variant is None and details.value is True

    for _ in range(250):
        if await code_default_served():
            break
        await asyncio.sleep(0.02)
    assert await code_default_served()  # the unsafe code default, not the "off" variant

    result = await FEATURE_FLAG_DISABLE.run(_params(flag_file, "new-ui"), _ctx(flag_dir))
    assert (result.ok, result.verified) == (True, True)
    assert result.output["before"]["state"] == "DISABLED"
    assert json.loads(flag_file.read_text())["flags"]["new-ui"]["state"] == "ENABLED"


async def test_already_serving_the_variant_writes_nothing(flag_dir: Path, flag_file: Path) -> None:
    await FEATURE_FLAG_DISABLE.run(_params(flag_file), _ctx(flag_dir))
    inode, mtime = flag_file.stat().st_ino, flag_file.stat().st_mtime_ns
    result = await FEATURE_FLAG_DISABLE.run(_params(flag_file), _ctx(flag_dir))
    assert (result.ok, result.verified) == (True, True)
    assert result.output["written"] is False
    assert "already serves off; not written" in result.summary
    assert (flag_file.stat().st_ino, flag_file.stat().st_mtime_ns) == (inode, mtime)


async def test_the_file_keeps_its_layout_mode_and_neighbours(flag_dir: Path) -> None:
    path = flag_dir / "shop.flags.json"
    original = json.dumps(_flags(), indent=4) + "\n"
    path.write_text(original)
    path.chmod(0o640)
    result = await FEATURE_FLAG_DISABLE.run(_params(path), _ctx(flag_dir))
    assert result.ok
    expected = _flags()
    del expected["flags"]["checkout-v2"]["targeting"]
    assert path.read_text() == json.dumps(expected, indent=4) + "\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in flag_dir.iterdir()) == ["shop.flags.json"]  # no temp file


async def test_unknown_flag_and_variant_are_refused_untouched(
    flag_dir: Path, flag_file: Path
) -> None:
    original = flag_file.read_bytes()
    with pytest.raises(PermanentError, match=r"flags: banner, checkout-v2, new-ui\)"):
        await FEATURE_FLAG_DISABLE.run(_params(flag_file, "checkout"), _ctx(flag_dir))
    with pytest.raises(PermanentError, match=r"variants: plain, sale\)"):
        await FEATURE_FLAG_DISABLE.run(_params(flag_file, "banner"), _ctx(flag_dir))
    assert flag_file.read_bytes() == original


async def test_files_outside_the_directories_are_refused(tmp_path: Path, flag_dir: Path) -> None:
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps(_flags()))
    with pytest.raises(NotAllowedError, match="not below any directory"):
        await FEATURE_FLAG_DISABLE.run(_params(outside), _ctx(flag_dir))
    with pytest.raises(NotAllowedError, match="RESPONDER_FLAGD_FILE_DIRS is empty"):
        await FEATURE_FLAG_DISABLE.run(_params(outside), _ctx())


async def test_symbolic_links_are_refused(tmp_path: Path, flag_dir: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text(json.dumps(_flags()))
    (flag_dir / "link.json").symlink_to(real)
    with pytest.raises(NotAllowedError, match="symbolic link"):
        await FEATURE_FLAG_DISABLE.run(_params(flag_dir / "link.json"), _ctx(flag_dir))
    (flag_dir / "sub").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(NotAllowedError, match="through a symbolic link"):
        await FEATURE_FLAG_DISABLE.run(_params(flag_dir / "sub" / "real.json"), _ctx(flag_dir))
    assert json.loads(real.read_text()) == _flags()


async def test_missing_file_and_missing_configuration_say_what_to_do(flag_dir: Path) -> None:
    with pytest.raises(PermanentError, match=r"does not exist; point the path"):
        await FEATURE_FLAG_DISABLE.run(_params(flag_dir / "nope.json"), _ctx(flag_dir))
    with pytest.raises(PermanentError, match="set RESPONDER_FLAGD_FILE_DIRS"):
        await FEATURE_FLAG_DISABLE.run(_params(flag_dir / "x.json"), _ctx(files=False))


async def test_a_file_changed_since_it_was_read_is_not_overwritten(
    flag_dir: Path, flag_file: Path
) -> None:
    files = LocalFlagFiles([str(flag_dir)])
    read = await files.read_text(str(flag_file), timeout_seconds=5)
    flag_file.write_text(read.replace('"sale"', '"plain"'))  # someone else's edit meanwhile
    changed = flag_file.read_text()
    with pytest.raises(TemporaryError, match="changed while responder was editing"):
        await files.replace_text(str(flag_file), "{}", expected=read, timeout_seconds=5)
    assert flag_file.read_text() == changed


async def test_the_adapter_refuses_oversized_and_non_utf8_files(flag_dir: Path) -> None:
    big, binary = flag_dir / "big.json", flag_dir / "binary.json"
    big.write_text(" " * 2048)
    binary.write_bytes(b'{"flags": "\xff"}')
    files = LocalFlagFiles([str(flag_dir)], max_bytes=1024)
    with pytest.raises(PermanentError, match="larger than 1024 bytes"):
        await files.read_text(str(big), timeout_seconds=5)
    with pytest.raises(PermanentError, match="not UTF-8"):
        await files.read_text(str(binary), timeout_seconds=5)


def test_plan_time_check_uses_the_flag_directories(flag_dir: Path, tmp_path: Path) -> None:
    catalog = PolicyCatalog(default_registry(), allowed_hosts=(), flag_file_dirs=(str(flag_dir),))
    inside = {"provider": "flagd", "path": str(flag_dir / "f.json"), "flag": "checkout-v2"}
    assert catalog.validate_params("feature_flag.disable", inside)["path"] == inside["path"]
    outside = dict(inside, path=str(tmp_path / "f.json"))
    with pytest.raises(NotAllowedError, match="RESPONDER_FLAGD_FILE_DIRS"):
        catalog.validate_params("feature_flag.disable", outside)
    with pytest.raises(PermanentError, match=r"with\.path: .*\*\.json"):
        catalog.validate_params("feature_flag.enable", dict(inside, path="/srv/flags/f.yaml"))


def test_describe_shows_the_edit() -> None:
    shown = FEATURE_FLAG_DISABLE.describe(_params("/srv/flags/shop.json"))
    assert shown == {
        "provider": "flagd",
        "file": "/srv/flags/shop.json",
        "flag": "checkout-v2",
        "set": {"state": "ENABLED", "defaultVariant": "off"},
        "remove": ["targeting"],
        "write": "temporary file in the same directory, then rename over the file",
        "verify": {"reread": "/srv/flags/shop.json", "expect": {"defaultVariant": "off"}},
    }
    enabled = FEATURE_FLAG_ENABLE.describe(_params("/srv/flags/shop.json"))
    assert enabled["set"]["defaultVariant"] == "on"
