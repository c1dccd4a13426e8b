"""postgres.* actions end to end: PsycopgSqlApi against the real local PostgreSQL.

A real blocking scenario: one session takes ACCESS EXCLUSIVE on a table and sits idle in
transaction, another blocks on `SELECT * FROM t`; the actions find, refuse to cancel (the
trap) and terminate the blocker, and the blocked query completes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from responder.actions.base import ActionContext, StepResult
from responder.actions.databases.postgres_checks import POSTGRES_QUERY, PostgresQueryParams
from responder.actions.databases.postgres_signals import (
    POSTGRES_CANCEL_QUERY,
    POSTGRES_TERMINATE_BACKEND,
    SignalParams,
)
from responder.adapters.http_client import AiohttpHttpApi
from responder.adapters.targets.postgres import PsycopgSqlApi, parse_targets
from responder.errors import NotAllowedError, PermanentError, TemporaryError

Conn = psycopg.AsyncConnection[Any]


@pytest.fixture
async def ctx(postgres_database: str) -> AsyncIterator[ActionContext]:
    async with await AiohttpHttpApi.create() as http:
        yield ActionContext(
            http=http,
            allowed_hosts=(),
            run_id="run-1",
            rule_id="pg-blocking",
            step_id="blockers",
            output_max_bytes=1_000_000,
            sql=PsycopgSqlApi({"db": postgres_database}),
        )


async def _query(ctx: ActionContext, check: str, **extra: Any) -> StepResult:
    params = PostgresQueryParams.model_validate({"target": "db", "check": check, **extra})
    return await POSTGRES_QUERY.run(params, ctx)


async def _cancel(ctx: ActionContext, pid: int, **extra: Any) -> StepResult:
    params = SignalParams.model_validate({"target": "db", "pid": pid, **extra})
    return await POSTGRES_CANCEL_QUERY.run(params, ctx)


async def _terminate(ctx: ActionContext, pid: int, **extra: Any) -> StepResult:
    params = SignalParams.model_validate({"target": "db", "pid": pid, **extra})
    return await POSTGRES_TERMINATE_BACKEND.run(params, ctx)


async def _until(
    probe: Callable[[], Awaitable[StepResult]],
    found: Callable[[StepResult], bool],
    timeout: float = 10.0,
) -> StepResult:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if found(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not found in time: {result.output}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def table(postgres_database: str) -> str:
    async with await psycopg.AsyncConnection.connect(postgres_database, autocommit=True) as conn:
        await conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO t SELECT generate_series(1, 10)")
    return postgres_database


async def test_blocking_chain_trap_and_terminate(ctx: ActionContext, table: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        blocker = await psycopg.AsyncConnection.connect(table)
        stack.push_async_callback(blocker.close)  # closed, never committed: it is terminated
        waiter = await psycopg.AsyncConnection.connect(table, autocommit=True)
        stack.push_async_callback(waiter.close)
        await blocker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # now idle in transaction
        blocker_pid, waiter_pid = blocker.info.backend_pid, waiter.info.backend_pid
        blocked = asyncio.create_task(waiter.execute("SELECT count(*) FROM t"), name="blocked")
        try:
            chains = await _until(
                lambda: _query(ctx, "blocking_chains"),
                lambda r: any(row["blocked_pid"] == waiter_pid for row in r.output["rows"]),
            )
            mine = [row for row in chains.output["rows"] if row["blocked_pid"] == waiter_pid]
            assert mine[0]["blocking_pid"] == blocker_pid
            assert mine[0]["blocking_state"] == "idle in transaction"
            assert isinstance(mine[0]["blocking_xact_age"], float)
            blocker_entry = next(b for b in chains.output["blockers"] if b["pid"] == blocker_pid)
            assert blocker_entry["state"] == "idle in transaction"
            assert blocker_entry["blocked_count"] >= 1
            assert chains.ok
            assert "blockers:" in chains.summary

            trap = await _cancel(ctx, blocker_pid)
            assert trap.ok is False
            assert trap.verified is False
            assert trap.output["signalled"] is False
            assert "terminate" in trap.output["note"]
            assert "locks" in trap.output["note"]
            await asyncio.sleep(0.3)
            assert not blocked.done()  # the lock stays

            done = await _terminate(ctx, blocker_pid, expect_state="idle in transaction")
            assert done.ok
            assert done.verified is True
            assert done.output["signalled"] is True
            assert done.output["after"] is None
            assert done.output["before"]["state"] == "idle in transaction"
            cursor = await asyncio.wait_for(blocked, 10)
            assert await cursor.fetchone() == (10,)
        finally:
            blocked.cancel()
            await asyncio.gather(blocked, return_exceptions=True)


async def test_long_running_query_found_and_cancelled(ctx: ActionContext, table: str) -> None:
    async with await psycopg.AsyncConnection.connect(table, autocommit=True) as slow:
        pid = slow.info.backend_pid
        sleeping = asyncio.create_task(slow.execute("SELECT pg_sleep(5)"), name="sleeping")
        try:
            found = await _until(
                lambda: _query(ctx, "long_running_queries", min_age_seconds=1),
                lambda r: any(row["pid"] == pid for row in r.output["rows"]),
            )
            row = next(row for row in found.output["rows"] if row["pid"] == pid)
            assert row["state"] == "active"
            assert "pg_sleep" in row["query"]
            assert row["query_age"] > 1
            result = await _cancel(ctx, pid, expect_state="active")
            assert result.ok, result.summary
            assert result.verified is True
            assert result.output["after"]["state"] == "idle"
            with pytest.raises(psycopg.errors.QueryCanceled):
                await asyncio.wait_for(sleeping, 5)
        finally:
            sleeping.cancel()
            await asyncio.gather(sleeping, return_exceptions=True)


async def test_expect_state_mismatch_signals_nothing(ctx: ActionContext, table: str) -> None:
    async with await psycopg.AsyncConnection.connect(table, autocommit=True) as idle:
        result = await _terminate(ctx, idle.info.backend_pid, expect_state="active")
        assert not result.ok
        assert result.output["signalled"] is False
        assert "not the expected 'active'" in result.summary
        await idle.execute("SELECT 1")  # still alive


async def test_missing_pid_is_a_clear_failure(ctx: ActionContext) -> None:
    for run in (_cancel, _terminate):
        result = await run(ctx, 2_147_483_000)
        assert result.ok is False
        assert result.verified is False
        assert "no backend with pid 2147483000" in result.summary


async def test_refuses_non_client_and_own_backends(ctx: ActionContext, table: str) -> None:
    assert ctx.sql is not None
    rows = await ctx.sql.fetch(
        "db",
        "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend' LIMIT 1",
        {},
        read_only=True,
        timeout_seconds=5,
    )
    with pytest.raises(NotAllowedError, match="not a client backend"):
        await _terminate(ctx, int(str(rows[0]["pid"])))
    own = make_conninfo(table, application_name="responder")
    async with await psycopg.AsyncConnection.connect(own, autocommit=True) as conn:
        with pytest.raises(NotAllowedError, match="responder's own"):
            await _terminate(ctx, conn.info.backend_pid)


async def test_other_checks(ctx: ActionContext, table: str) -> None:
    schema = conninfo_to_dict(table)["application_name"]
    async with await psycopg.AsyncConnection.connect(table, autocommit=True) as conn:
        for _ in range(3):
            await conn.execute("SELECT * FROM t WHERE id + 0 = 1")  # a sequential scan
    # the backend has exited: its statistics are flushed
    heavy = await _until(
        lambda: _query(ctx, "seq_scan_heavy_tables", min_seq_scans=2, limit=100),
        lambda r: any(row["schema"] == schema for row in r.output["rows"]),
    )
    assert next(r for r in heavy.output["rows"] if r["schema"] == schema)["seq_scan"] >= 3
    sizes = await _query(ctx, "table_sizes", limit=5)
    assert 0 < sizes.output["row_count"] <= 5
    assert {"schema", "table", "total_bytes", "total_size"} <= set(sizes.output["rows"][0])
    conns = await _query(ctx, "connections_by_state")
    assert conns.output["max_connections"] >= conns.output["total_connections"] >= 1
    assert 0 < conns.output["usage_ratio"] <= 1.5
    assert "connections" in conns.summary


async def test_unknown_target_and_missing_port(ctx: ActionContext) -> None:
    params = PostgresQueryParams.model_validate({"target": "orders", "check": "table_sizes"})
    with pytest.raises(NotAllowedError, match="known targets: db"):
        await POSTGRES_QUERY.run(params, ctx)
    bare = ActionContext(
        http=ctx.http, allowed_hosts=(), run_id="r", rule_id="r", step_id="s", output_max_bytes=1024
    )
    with pytest.raises(PermanentError, match="RESPONDER_POSTGRES_TARGETS"):
        await POSTGRES_QUERY.run(params, bare)
    with pytest.raises(PermanentError, match="RESPONDER_POSTGRES_TARGETS"):
        await _cancel(bare, 1)


def test_rules_cannot_send_sql() -> None:
    with pytest.raises(ValueError, match="check"):
        PostgresQueryParams.model_validate({"target": "db", "check": "SELECT 1"})
    with pytest.raises(ValueError, match="sql"):
        PostgresQueryParams.model_validate({"target": "db", "check": "table_sizes", "sql": "x"})
    with pytest.raises(ValueError, match="greater than 0"):
        SignalParams.model_validate({"target": "db", "pid": 0})
    described = POSTGRES_CANCEL_QUERY.describe(SignalParams(target="db", pid=42))
    assert described["sql"] == "SELECT pg_cancel_backend(42)"


async def test_adapter_values_read_only_and_errors(postgres_database: str) -> None:
    api = PsycopgSqlApi({"db": postgres_database})
    rows = await api.fetch(
        "db",
        "SELECT interval '1.5 seconds' AS i, timestamptz '2024-01-02 03:04:05+00' AS ts, "
        "inet '10.0.0.1' AS ip, 12.50::numeric AS n, 3::numeric AS whole, "
        "'\\x0102'::bytea AS b, %(x)s::int AS x, current_setting('application_name') AS app",
        {"x": 7},
        read_only=True,
        timeout_seconds=5,
    )
    assert rows == [
        {
            "i": 1.5,
            "ts": "2024-01-02T03:04:05+00:00",
            "ip": "10.0.0.1",
            "n": 12.5,
            "whole": 3,
            "b": "0102",
            "x": 7,
            "app": "responder-monitor",
        },
    ]
    with pytest.raises(PermanentError, match="25006"):
        await api.fetch("db", "CREATE TABLE nope (id int)", {}, read_only=True, timeout_seconds=5)
    with pytest.raises(TemporaryError, match="57014"):
        await api.fetch("db", "SELECT pg_sleep(3)", {}, read_only=True, timeout_seconds=0.3)
    with pytest.raises(PermanentError, match="42601"):
        await api.fetch("db", "SELEC 1", {}, read_only=True, timeout_seconds=5)
    with pytest.raises(PermanentError, match="no SQLSTATE"):
        await api.fetch("db", "SELECT %(missing)s", {}, read_only=True, timeout_seconds=5)


async def test_unreachable_server_is_temporary_without_password() -> None:
    api = PsycopgSqlApi({"down": "postgresql://watcher:hunter2secret@127.0.0.1:9/app"})
    with pytest.raises(TemporaryError) as caught:
        await api.fetch("down", "SELECT 1", {}, read_only=True, timeout_seconds=2)
    assert "hunter2secret" not in str(caught.value)
    assert "postgresql://watcher@127.0.0.1:9/app" in str(caught.value)


def test_parse_targets() -> None:
    assert parse_targets('{"orders": "postgresql://u@h/db"}') == {"orders": "postgresql://u@h/db"}
    assert parse_targets("") == {}
    for bad in ("[1]", "{", '{"a": 1}', '{"": "postgresql://h/db"}'):
        with pytest.raises(ValueError, match=r"target|JSON"):
            parse_targets(bad)
    with pytest.raises(ValueError, match="does not parse") as caught:
        parse_targets('{"a": "host=h password=s3cr3t-pw port=notaport x"}')
    assert "s3cr3t-pw" not in str(caught.value)
