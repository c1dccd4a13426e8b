"""`postgres.cancel_query` and `postgres.terminate_backend`: signal one backend, then verify.

Both are containment and should be approval-gated in rules (`approval: {required: true}`):
terminating a session rolls back its transaction.

Run, in three short sessions on the named target:
1. read the backend from `pg_stat_activity`. No such pid -> ok=False, verified=False. Refused
   (NotAllowedError) when it is not a `client backend` (autovacuum, walsender, ...) or is
   responder's own (the signalling session, or application_name `responder` /
   `responder-monitor`). With `expect_state` set and a different state -> ok=False, nothing
   signalled (the situation changed since the alert).
2. cancel only: a backend `idle in transaction` runs no query, so pg_cancel_backend would
   return true and release nothing: ok=False, nothing signalled, and the note says to
   terminate it instead (the idle-in-transaction trap). An `idle` backend has nothing to
   cancel either. Otherwise `pg_cancel_backend(pid)` / `pg_terminate_backend(pid)`, in a
   statement that re-checks the same refusals.
3. verify by re-reading `pg_stat_activity` until `verify_seconds`: cancel is verified when the
   backend is gone, no longer `active`, or runs another query (a new `query_start`);
   terminate when the pid is gone. `ok` is `verified`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.databases.targets import TARGET_PATTERN, require_sql
from responder.errors import NotAllowedError
from responder.models.plans import ActionClass
from responder.ports.targets import SqlApi

Kind = Literal["cancel", "terminate"]
State = Literal[
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
]

OWN_APPLICATION_NAMES = ("responder", "responder-monitor")
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
TRAP_NOTE = (
    "the backend is idle in transaction: pg_cancel_backend would return true but its locks "
    "stay held (no query is running); use postgres.terminate_backend (approval-gated) to end "
    "the session and roll back its transaction"
)
_POLL_SECONDS = 0.1

_READ = """
SELECT pid, backend_type, state, usename, datname, application_name, wait_event_type,
       wait_event, query_start, now() - xact_start AS xact_age, left(query, 200) AS query,
       pid = pg_backend_pid() AS is_self
FROM pg_stat_activity
WHERE pid = %(pid)s"""

_SIGNAL = """
SELECT {function}(pid) AS signalled
FROM pg_stat_activity
WHERE pid = %(pid)s AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND coalesce(application_name, '') NOT IN ('responder', 'responder-monitor')"""

_FUNCTIONS = {"cancel": "pg_cancel_backend", "terminate": "pg_terminate_backend"}


class SignalParams(BaseModel):
    """Parameters of `postgres.cancel_query` and `postgres.terminate_backend`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(pattern=TARGET_PATTERN)
    pid: int = Field(gt=0, le=2**31 - 1)
    expect_state: State | None = None
    verify_seconds: float = Field(default=5.0, ge=0.5, le=30)
    timeout_seconds: float = Field(default=5.0, gt=0, le=30)


async def _read(sql: SqlApi, params: SignalParams) -> dict[str, object] | None:
    rows = await sql.fetch(
        params.target,
        _READ,
        {"pid": params.pid},
        read_only=True,
        timeout_seconds=params.timeout_seconds,
    )
    return rows[0] if rows else None


def _refuse(params: SignalParams, row: dict[str, object]) -> None:
    where = f"pid {params.pid} on {params.target}"
    if row["backend_type"] != "client backend":
        raise NotAllowedError(
            f"refused: {where} is a {row['backend_type']!r}, not a client backend; responder "
            "signals client sessions only"
        )
    if row["is_self"] or row["application_name"] in OWN_APPLICATION_NAMES:
        raise NotAllowedError(f"refused: {where} is one of responder's own sessions")


def _precondition(kind: Kind, params: SignalParams, state: object) -> str | None:
    """Why nothing should be signalled now, or None."""
    if params.expect_state is not None and state != params.expect_state:
        return f"its state is {state!r}, not the expected {params.expect_state!r}; not signalled"
    if kind == "terminate":
        return None
    if state in IDLE_IN_TRANSACTION:
        return TRAP_NOTE
    if state == "idle":
        return "it is idle (no query running): nothing to cancel"
    if state is None:
        return "its state is not visible to responder's role (grant pg_monitor); not signalled"
    return None


def _done(kind: Kind, before: dict[str, object], now: dict[str, object] | None) -> bool:
    if now is None:
        return True
    if kind == "terminate":
        return False
    return now["state"] != "active" or now["query_start"] != before["query_start"]


async def _verify(
    kind: Kind, sql: SqlApi, params: SignalParams, before: dict[str, object]
) -> tuple[bool, dict[str, object] | None]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + params.verify_seconds
    while True:
        now = await _read(sql, params)
        if _done(kind, before, now):
            return True, now
        if loop.time() >= deadline:
            return False, now
        await asyncio.sleep(_POLL_SECONDS)


def _result(ok: bool, summary: str, output: dict[str, Any], *, verified: bool) -> StepResult:
    return StepResult(ok=ok, summary=summary, output=output, verified=verified)


async def _signal(kind: Kind, params: SignalParams, ctx: ActionContext) -> StepResult:
    sql = require_sql(ctx)
    where = f"postgres {params.target}: pid {params.pid}"
    before = await _read(sql, params)
    output: dict[str, Any] = {"target": params.target, "pid": params.pid, "before": before}
    if before is None:
        output.update(signalled=False, after=None, verified=False)
        note = f"no backend with pid {params.pid} (already gone, or a wrong pid); not signalled"
        return _result(False, f"{where}: {note}", {**output, "note": note}, verified=False)
    _refuse(params, before)
    reason = _precondition(kind, params, before["state"])
    if reason is not None:
        output.update(signalled=False, after=before, verified=False, note=reason)
        return _result(False, f"{where}: {reason}", output, verified=False)
    rows = await sql.fetch(
        params.target,
        _SIGNAL.format(function=_FUNCTIONS[kind]),
        {"pid": params.pid},
        read_only=False,
        timeout_seconds=params.timeout_seconds,
    )
    signalled = bool(rows and rows[0]["signalled"])
    verified, after = await _verify(kind, sql, params, before)
    output.update(signalled=signalled, after=after, verified=verified)
    if verified:
        effect = "backend gone" if after is None else f"now {after['state']!r}"
        summary = f"{where}: {kind} verified ({effect})"
    else:
        state = None if after is None else after["state"]
        summary = (
            f"{where}: {kind} {'sent' if signalled else 'not delivered'} but not verified "
            f"within {params.verify_seconds:g} s (state {state!r})"
        )
    return _result(verified, summary, output, verified=verified)


async def _cancel(params: SignalParams, ctx: ActionContext) -> StepResult:
    return await _signal("cancel", params, ctx)


async def _terminate(params: SignalParams, ctx: ActionContext) -> StepResult:
    return await _signal("terminate", params, ctx)


def _describer(kind: Kind) -> Callable[[SignalParams], dict[str, Any]]:
    def describe(params: SignalParams) -> dict[str, Any]:
        return {
            "target": params.target,
            "sql": f"SELECT {_FUNCTIONS[kind]}({params.pid})",
            "expect_state": params.expect_state,
            "verify": f"re-read pg_stat_activity for up to {params.verify_seconds:g} s",
        }

    return describe


POSTGRES_CANCEL_QUERY: ActionSpec[SignalParams] = ActionSpec(
    name="postgres.cancel_query",
    params_model=SignalParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=60),
    blast_radius="cancels the running query of one client backend (the session stays)",
    description="Cancel one backend's running query (pg_cancel_backend) and verify it stopped; "
    "refuses idle-in-transaction backends (cancel does not release their locks).",
    run=_cancel,
    describe=_describer("cancel"),
)

POSTGRES_TERMINATE_BACKEND: ActionSpec[SignalParams] = ActionSpec(
    name="postgres.terminate_backend",
    params_model=SignalParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=60),
    blast_radius="ends one client session and rolls back its open transaction",
    description="Terminate one backend (pg_terminate_backend) and verify its pid is gone; "
    "use with approval.",
    run=_terminate,
    describe=_describer("terminate"),
)
