"""`feature_flag.disable`/`enable` with `provider: unleash` against a real unleash-server 7.5.1."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from responder.actions.base import ActionContext
from responder.actions.feature_flags.switches import (
    FEATURE_FLAG_DISABLE,
    FEATURE_FLAG_ENABLE,
    FeatureFlagParams,
)
from responder.adapters.http_client import AiohttpHttpApi
from responder.errors import NotAllowedError, PermanentError
from tests.support.recording import RecordingHttp
from tests.support.unleash_service import UnleashServer, running_unleash

# The first test also waits for npm install (once per machine) and the server's migrations.
pytestmark = pytest.mark.timeout(900)  # a real Unleash server starts (npm install the first time)
TOKEN_ENV = "UNLEASH_ADMIN_TOKEN"


@pytest.fixture(scope="session")
def unleash(postgres_dsn: str) -> Iterator[UnleashServer]:
    """One real Unleash for the session (see tests/support/unleash_service.py)."""
    with running_unleash(postgres_dsn) as server:
        yield server


class Admin:
    """Seeds and reads Unleash through its admin API, independently of the action."""

    def __init__(self, server: UnleashServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        headers = {"Authorization": token or self.server.admin_token}
        async with self.session.request(
            method, self.server.base_url + path, json=body, headers=headers
        ) as reply:
            text = await reply.text()
            assert reply.status < 300, (method, path, reply.status, text)
            return json.loads(text) if text else None

    async def create_flag(self, on_in: tuple[str, ...] = ()) -> str:
        name = f"kill-{uuid.uuid4().hex[:10]}"
        await self.call(
            "POST", "/api/admin/projects/default/features", {"name": name, "type": "kill-switch"}
        )
        for environment in on_in:
            base = f"/api/admin/projects/default/features/{name}/environments/{environment}"
            rollout = {"rollout": "100", "stickiness": "default", "groupId": name}
            strategy = {"name": "flexibleRollout", "constraints": [], "parameters": rollout}
            await self.call("POST", f"{base}/strategies", strategy)
            await self.call("POST", f"{base}/on")
        return name

    async def enabled(self, name: str) -> dict[str, bool]:
        document = await self.call("GET", f"/api/admin/projects/default/features/{name}")
        return {env["name"]: env["enabled"] for env in document["environments"]}

    async def events(self, name: str) -> list[str]:
        document = await self.call("GET", f"/api/admin/events/{name}")
        return [event["type"] for event in document["events"]]

    async def sdk_enabled(self, name: str) -> bool:
        """What a backend SDK (development token) is served for the flag."""
        document = await self.call(
            "GET", f"/api/client/features/{name}", token=self.server.backend_token
        )
        return bool(document["enabled"])


@pytest.fixture
async def admin(unleash: UnleashServer) -> AsyncIterator[Admin]:
    async with aiohttp.ClientSession() as session:
        yield Admin(unleash, session)


@pytest.fixture
async def http() -> AsyncIterator[RecordingHttp]:
    async with await AiohttpHttpApi.create() as client:
        yield RecordingHttp(client)


@pytest.fixture
def ctx(
    http: RecordingHttp, monkeypatch: pytest.MonkeyPatch, unleash: UnleashServer
) -> ActionContext:
    monkeypatch.setenv(TOKEN_ENV, unleash.admin_token)
    return ActionContext(
        http=http,
        allowed_hosts=("127.0.0.1",),
        run_id="run-7",
        rule_id="checkout-errors",
        step_id="kill",
        output_max_bytes=4096,
    )


def _params(server: UnleashServer, flag: str, **extra: Any) -> FeatureFlagParams:
    values = {
        "provider": "unleash",
        "base_url": server.base_url,
        "flag": flag,
        "environment": "development",
        "auth_header_env": TOKEN_ENV,
        **extra,
    }
    return FeatureFlagParams.model_validate(values)


async def test_disable_turns_the_environment_off_and_verifies(
    unleash: UnleashServer, admin: Admin, ctx: ActionContext, http: RecordingHttp
) -> None:
    flag = await admin.create_flag(on_in=("development", "production"))
    assert await admin.sdk_enabled(flag) is True
    result = await FEATURE_FLAG_DISABLE.run(_params(unleash, flag), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert (result.output["before"], result.output["after"]) == ("on", "off")
    assert result.output["posted"] is True
    assert "on -> off (verified)" in result.summary
    assert await admin.enabled(flag) == {"development": False, "production": True}
    assert await admin.sdk_enabled(flag) is False
    assert "feature-environment-disabled" in await admin.events(flag)
    base = f"/api/admin/projects/default/features/{flag}"
    assert http.calls() == [
        ("GET", base),
        ("POST", f"{base}/environments/development/off"),
        ("GET", base),
    ]
    assert http.requests[1].body is None
    assert {r.headers["Authorization"] for r in http.requests} == {unleash.admin_token}
    assert unleash.admin_token not in json.dumps(result.model_dump())


async def test_already_off_posts_nothing(
    unleash: UnleashServer, admin: Admin, ctx: ActionContext, http: RecordingHttp
) -> None:
    flag = await admin.create_flag()
    result = await FEATURE_FLAG_DISABLE.run(_params(unleash, flag), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert result.output["posted"] is False
    assert "already off; nothing posted" in result.summary
    assert [method for method, _ in http.calls()] == ["GET"]
    assert "feature-environment-disabled" not in await admin.events(flag)


async def test_enable_turns_it_back_on(
    unleash: UnleashServer, admin: Admin, ctx: ActionContext
) -> None:
    flag = await admin.create_flag(on_in=("development",))
    await FEATURE_FLAG_DISABLE.run(_params(unleash, flag), ctx)
    result = await FEATURE_FLAG_ENABLE.run(_params(unleash, flag), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert (result.output["before"], result.output["after"]) == ("off", "on")
    assert result.output["strategies"] == 1  # the seeded strategy is kept
    assert await admin.sdk_enabled(flag) is True


async def test_enable_without_strategies_gets_the_default_one(
    unleash: UnleashServer, admin: Admin, ctx: ActionContext
) -> None:
    """Unleash adds its default strategy (flexibleRollout 100%) to an empty environment."""
    flag = await admin.create_flag()
    result = await FEATURE_FLAG_ENABLE.run(_params(unleash, flag, environment="production"), ctx)
    assert (result.ok, result.verified) == (True, True)
    assert result.output["strategies"] == 1
    assert await admin.enabled(flag) == {"development": False, "production": True}


async def test_unknown_flag_is_refused(
    unleash: UnleashServer, ctx: ActionContext, http: RecordingHttp
) -> None:
    with pytest.raises(PermanentError, match=r"no feature named \\?\"nope-") as caught:
        await FEATURE_FLAG_DISABLE.run(_params(unleash, f"nope-{uuid.uuid4().hex[:6]}"), ctx)
    assert "Fix the flag or project parameter" in str(caught.value)
    assert [method for method, _ in http.calls()] == ["GET"]


async def test_unknown_environment_is_refused_listing_the_real_ones(
    unleash: UnleashServer, admin: Admin, ctx: ActionContext, http: RecordingHttp
) -> None:
    flag = await admin.create_flag(on_in=("development",))
    with pytest.raises(PermanentError, match="environments: development, production"):
        await FEATURE_FLAG_DISABLE.run(_params(unleash, flag, environment="prod-x"), ctx)
    assert [method for method, _ in http.calls()] == ["GET"]
    assert (await admin.enabled(flag))["development"] is True


async def test_wrong_project_is_refused(
    unleash: UnleashServer, admin: Admin, ctx: ActionContext
) -> None:
    flag = await admin.create_flag()
    with pytest.raises(PermanentError, match=r"in project \\?\"other\\?\""):
        await FEATURE_FLAG_DISABLE.run(_params(unleash, flag, project="other"), ctx)


async def test_bad_token_is_permanent_and_names_the_token_kind(
    unleash: UnleashServer, admin: Admin, ctx: ActionContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = await admin.create_flag(on_in=("development",))
    monkeypatch.setenv(TOKEN_ENV, "*:*.wrong-secret")
    with pytest.raises(PermanentError, match=r"401 .*admin API token") as caught:
        await FEATURE_FLAG_DISABLE.run(_params(unleash, flag), ctx)
    assert "wrong-secret" not in str(caught.value)


async def test_backend_token_is_refused_on_the_admin_api(
    unleash: UnleashServer, admin: Admin, ctx: ActionContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = await admin.create_flag(on_in=("development",))
    monkeypatch.setenv(TOKEN_ENV, unleash.backend_token)
    with pytest.raises(PermanentError, match="403"):
        await FEATURE_FLAG_DISABLE.run(_params(unleash, flag), ctx)
    assert (await admin.enabled(flag))["development"] is True


async def test_bearer_prefixed_token_works(
    unleash: UnleashServer, admin: Admin, ctx: ActionContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = await admin.create_flag(on_in=("development",))
    monkeypatch.setenv(TOKEN_ENV, f"Bearer {unleash.admin_token}")
    result = await FEATURE_FLAG_DISABLE.run(_params(unleash, flag), ctx)
    assert (result.ok, result.verified) == (True, True)


async def test_unset_token_variable_sends_nothing(
    unleash: UnleashServer, ctx: ActionContext, http: RecordingHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(PermanentError, match=f"{TOKEN_ENV} .* unset or empty"):
        await FEATURE_FLAG_DISABLE.run(_params(unleash, "anything"), ctx)
    assert http.requests == []


async def test_run_enforces_the_host_allowlist(
    unleash: UnleashServer, http: RecordingHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, unleash.admin_token)
    ctx = ActionContext(
        http=http,
        allowed_hosts=("unleash.internal",),
        run_id="r",
        rule_id="r",
        step_id="s",
        output_max_bytes=1024,
    )
    with pytest.raises(NotAllowedError, match="RESPONDER_HTTP_ALLOWED_HOSTS"):
        await FEATURE_FLAG_DISABLE.run(_params(unleash, "anything"), ctx)
    assert http.requests == []
