"""The `postgres.query` action: one check from a fixed catalogue, read-only, on a named target.

Rules never carry SQL: `check` names one entry of `CHECKS`, whose statement is fixed here and
whose only inputs are typed parameters (`limit`, `min_age_seconds`, `min_seq_scans`) passed as
bound values. It runs in a READ ONLY transaction with a statement and lock timeout (the SqlApi
adapter opens one bounded session per call). See docs/actions/databases.md for the SQL.

Output: `rows` (JSON-safe; intervals in seconds), `row_count`, `check`, `target`, and per check:
- blocking_chains: `blockers`, the distinct blocking pids with their state, transaction age
  and how many sessions each blocks, root blockers (not themselves waiting on a lock) first;
  rows are ordered the same way, so `steps.<id>.output.rows[0].blocking_pid` is the root;
- connections_by_state: `max_connections`, `superuser_reserved_connections`,
  `total_connections` and `usage_ratio` (total / (max - reserved)).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from responder.actions.base import ActionContext, ActionSpec, StepResult
from responder.actions.databases.targets import TARGET_PATTERN, require_sql
from responder.core.redaction import truncate
from responder.models.plans import ActionClass

Check = Literal[
    "long_running_queries",
    "blocking_chains",
    "connections_by_state",
    "table_sizes",
    "seq_scan_heavy_tables",
]

CHECKS: dict[str, str] = {
    "long_running_queries": """
SELECT pid, usename, datname, application_name, client_addr, state, wait_event_type,
       wait_event, now() - query_start AS query_age, now() - xact_start AS xact_age,
       left(query, 500) AS query
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND state <> 'idle' AND now() - query_start > make_interval(secs => %(min_age_seconds)s)
ORDER BY query_start
LIMIT %(limit)s""",
    "blocking_chains": """
SELECT w.pid AS blocked_pid, now() - w.query_start AS waiting_for,
       left(w.query, 200) AS blocked_query, bp.pid AS blocking_pid,
       b.state AS blocking_state, b.usename AS blocking_usename,
       b.application_name AS blocking_application_name,
       now() - b.xact_start AS blocking_xact_age,
       coalesce(b.wait_event_type = 'Lock', false) AS blocking_waits_for_lock,
       left(b.query, 200) AS blocking_query
FROM pg_stat_activity w
JOIN LATERAL (SELECT DISTINCT unnest(pg_blocking_pids(w.pid)) AS pid) AS bp ON true
LEFT JOIN pg_stat_activity b ON b.pid = bp.pid
WHERE w.wait_event_type = 'Lock'
ORDER BY coalesce(b.wait_event_type = 'Lock', false), b.xact_start NULLS LAST, w.pid
LIMIT %(limit)s""",
    "connections_by_state": """
SELECT datname, usename, state, count(*) AS connections,
       sum(count(*)) OVER () AS total_connections,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         AS superuser_reserved_connections
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY datname, usename, state
ORDER BY connections DESC, datname, usename, state
LIMIT %(limit)s""",
    "table_sizes": """
SELECT schemaname AS schema, relname AS table, pg_total_relation_size(relid) AS total_bytes,
       pg_relation_size(relid) AS table_bytes, pg_indexes_size(relid) AS index_bytes,
       pg_size_pretty(pg_total_relation_size(relid)) AS total_size
FROM pg_catalog.pg_statio_user_tables
ORDER BY pg_total_relation_size(relid) DESC, schemaname, relname
LIMIT %(limit)s""",
    "seq_scan_heavy_tables": """
SELECT schemaname AS schema, relname AS table, seq_scan, seq_tup_read, idx_scan, n_live_tup,
       n_tup_ins, n_tup_upd
FROM pg_stat_user_tables
WHERE seq_scan > %(min_seq_scans)s
ORDER BY seq_scan DESC, schemaname, relname
LIMIT %(limit)s""",
}


class PostgresQueryParams(BaseModel):
    """Parameters of `postgres.query`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(pattern=TARGET_PATTERN)
    check: Check
    limit: int = Field(default=20, ge=1, le=100)
    min_age_seconds: float = Field(default=30.0, ge=0, le=7 * 86400)
    min_seq_scans: int = Field(default=1000, ge=0)
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)


def _bound(params: PostgresQueryParams) -> dict[str, object]:
    return {
        "limit": params.limit,
        "min_age_seconds": params.min_age_seconds,
        "min_seq_scans": params.min_seq_scans,
    }


def _blockers(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Distinct blocking pids (first-seen order = root blockers first) with what they hold."""
    found: dict[object, dict[str, object]] = {}
    for row in rows:
        pid = row["blocking_pid"]
        if pid not in found:
            found[pid] = {
                "pid": pid,
                "state": row["blocking_state"],
                "xact_age": row["blocking_xact_age"],
                "waits_for_lock": row["blocking_waits_for_lock"],
                "prepared_transaction": pid == 0,
                "blocked_count": 0,
            }
        count = found[pid]["blocked_count"]
        found[pid]["blocked_count"] = (count if isinstance(count, int) else 0) + 1
    return list(found.values())


def _connections(rows: list[dict[str, object]]) -> dict[str, object]:
    if not rows:
        return {}
    first = rows[0]
    total, most, reserved = (
        first["total_connections"],
        first["max_connections"],
        first["superuser_reserved_connections"],
    )
    usable = most - reserved if isinstance(most, int) and isinstance(reserved, int) else 0
    ratio = round(total / usable, 3) if isinstance(total, int | float) and usable > 0 else None
    return {
        "max_connections": most,
        "superuser_reserved_connections": reserved,
        "total_connections": total,
        "usage_ratio": ratio,
    }


def _summary(params: PostgresQueryParams, output: dict[str, Any]) -> str:
    head = f"postgres {params.target}: {params.check} -> {output['row_count']} row(s)"
    if params.check == "blocking_chains" and output["blockers"]:
        pids = ", ".join(
            f"{b['pid']} ({b['state']}, blocks {b['blocked_count']})" for b in output["blockers"]
        )
        return f"{head}; blockers: {pids}"
    if params.check == "connections_by_state" and output.get("usage_ratio") is not None:
        return (
            f"{head}; {output['total_connections']} of {output['max_connections']} "
            f"connections ({output['usage_ratio']:.0%} of the non-reserved ones)"
        )
    return head


async def _run(params: PostgresQueryParams, ctx: ActionContext) -> StepResult:
    sql = require_sql(ctx)
    rows = await sql.fetch(
        params.target,
        CHECKS[params.check],
        _bound(params),
        read_only=True,
        timeout_seconds=params.timeout_seconds,
    )
    output: dict[str, Any] = {
        "target": params.target,
        "check": params.check,
        "row_count": len(rows),
        "rows": rows,
    }
    if params.check == "blocking_chains":
        output["blockers"] = _blockers(rows)
    if params.check == "connections_by_state":
        output.update(_connections(rows))
    summary = _summary(params, output)
    shown: dict[str, Any] = truncate(output, ctx.output_max_bytes)
    return StepResult(ok=True, summary=summary, output=shown)


def _describe(params: PostgresQueryParams) -> dict[str, Any]:
    return {
        "target": params.target,
        "check": params.check,
        "sql": " ".join(CHECKS[params.check].split()),
        "params": _bound(params),
        "read_only": True,
        "timeout_seconds": params.timeout_seconds,
    }


POSTGRES_QUERY: ActionSpec[PostgresQueryParams] = ActionSpec(
    name="postgres.query",
    params_model=PostgresQueryParams,
    action_class=ActionClass.DIAGNOSTIC,
    default_timeout=timedelta(seconds=30),
    blast_radius="one read-only catalogue query on a named PostgreSQL target",
    description="Run one fixed diagnostic check (long queries, blocking chains, connections, "
    "table sizes, sequential scans) read-only and return its rows.",
    run=_run,
    describe=_describe,
)
