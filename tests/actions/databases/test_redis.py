"""`redis.info` end to end: RedisInfoApi against the session's real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from responder.actions.base import ActionContext
from responder.actions.databases.redis_info import REDIS_INFO, RedisInfoParams, derive_flags
from responder.adapters.http_client import AiohttpHttpApi
from responder.adapters.targets.redis import RedisInfoApi, parse_targets
from responder.errors import NotAllowedError, PermanentError, TemporaryError


@pytest.fixture
async def ctx(redis_url: str) -> AsyncIterator[ActionContext]:
    async with await AiohttpHttpApi.create() as http:
        yield ActionContext(
            http=http,
            allowed_hosts=(),
            run_id="run-1",
            rule_id="redis-memory",
            step_id="info",
            output_max_bytes=1_000_000,
            redis=RedisInfoApi({"cache": redis_url}),
        )


def _params(**extra: Any) -> RedisInfoParams:
    return RedisInfoParams.model_validate({"target": "cache", **extra})


async def test_info_reads_every_section_and_flags(ctx: ActionContext, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:  # a Lua busy loop of ~30 ms: over the default 10 ms slowlog threshold
        client.eval("local i = 0 while i < 3000000 do i = i + 1 end return i", 0)
    finally:
        client.close()
    result = await REDIS_INFO.run(_params(slowlog=5), ctx)
    assert result.ok
    sections = result.output["sections"]
    assert set(sections) == {"memory", "clients", "replication", "persistence", "stats"}
    assert isinstance(sections["memory"]["used_memory"], int)
    assert "maxmemory" in sections["memory"]
    assert sections["clients"]["connected_clients"] >= 1
    assert sections["replication"]["role"] in ("master", "slave")
    assert "rdb_last_bgsave_status" in sections["persistence"]
    assert "rejected_connections" in sections["stats"]
    flags = result.output["flags"]
    assert set(flags) == {"maxmemory_near", "replication_link_down", "rejected_connections"}
    assert all(isinstance(value, bool) for value in flags.values())
    assert flags["rejected_connections"] is (sections["stats"]["rejected_connections"] > 0)
    slowlog = result.output["slowlog"]
    assert 1 <= len(slowlog) <= 5
    assert {"id", "start_time", "duration_us", "command"} <= set(slowlog[0])
    assert isinstance(slowlog[0]["command"], str)
    assert "flags:" in result.summary


async def test_sections_subset_and_no_slowlog(ctx: ActionContext) -> None:
    result = await REDIS_INFO.run(_params(sections=["memory", "memory"], slowlog=0), ctx)
    assert list(result.output["sections"]) == ["memory"]
    assert result.output["slowlog"] == []
    assert result.output["flags"]["replication_link_down"] is None
    assert result.output["flags"]["maxmemory_near"] is not None
    assert REDIS_INFO.describe(_params(sections=["stats"], slowlog=3)) == {
        "target": "cache",
        "commands": ["INFO stats", "SLOWLOG GET 3"],
    }


def test_derived_flags() -> None:
    flags = derive_flags(
        {
            "memory": {"used_memory": 95, "maxmemory": 100},
            "replication": {"role": "slave", "master_link_status": "down"},
            "stats": {"rejected_connections": 3},
        }
    )
    assert flags == {
        "maxmemory_near": True,
        "replication_link_down": True,
        "rejected_connections": True,
    }
    unlimited = derive_flags(
        {"memory": {"used_memory": 95, "maxmemory": 0}, "replication": {"role": "master"}}
    )
    assert unlimited == {
        "maxmemory_near": False,
        "replication_link_down": False,
        "rejected_connections": None,
    }


def test_params_are_bounded() -> None:
    with pytest.raises(ValueError, match="less than or equal to 128"):
        _params(slowlog=129)
    with pytest.raises(ValueError, match="sections"):
        _params(sections=["keyspace"])
    with pytest.raises(ValueError, match="sections"):
        _params(sections=[])


async def test_unknown_target_and_missing_port(ctx: ActionContext) -> None:
    with pytest.raises(NotAllowedError, match="known targets: cache"):
        await REDIS_INFO.run(RedisInfoParams(target="sessions"), ctx)
    bare = ActionContext(
        http=ctx.http, allowed_hosts=(), run_id="r", rule_id="r", step_id="s", output_max_bytes=1
    )
    with pytest.raises(PermanentError, match="RESPONDER_REDIS_TARGETS"):
        await REDIS_INFO.run(_params(), bare)


async def test_unreachable_is_temporary_without_password() -> None:
    api = RedisInfoApi({"down": "redis://:hunter2secret@127.0.0.1:9/0"})
    with pytest.raises(TemporaryError, match=r"127\.0\.0\.1:9") as caught:
        await api.info("down", "memory", timeout_seconds=0.5)
    assert "hunter2secret" not in str(caught.value)


async def test_wrong_password_is_permanent(redis_url: str) -> None:
    api = RedisInfoApi({"cache": redis_url.replace("redis://", "redis://nobody:wrong-pw@", 1)})
    with pytest.raises(PermanentError) as caught:
        await api.info("cache", "memory", timeout_seconds=2)
    assert "wrong-pw" not in str(caught.value)


def test_parse_targets() -> None:
    assert parse_targets('{"cache": "redis://h:6379/0"}') == {"cache": "redis://h:6379/0"}
    assert parse_targets("  ") == {}
    for bad in ("[]", "nope", '{"a": "http://h/"}', '{"a": 5}'):
        with pytest.raises(ValueError, match=r"RESPONDER_REDIS_TARGETS|URL"):
            parse_targets(bad)
