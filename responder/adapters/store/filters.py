"""The WHERE and ORDER BY clauses that select runs and approvals, written once for both stores.

Conditions are written with `?` placeholders. Each store passes its `Dialect`: the placeholder
its driver binds (`?` for sqlite3, `%s` for psycopg), how it turns a model value into a
parameter, and how it tests a column against a list of values. A condition whose value is None
is left out; values are always bound, never spliced into the SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from responder.models.alerts import Source
from responder.models.approvals import ApprovalState
from responder.models.runs import TERMINAL_RUN_STATES, RunQuery, RunState

Filter = tuple[str, list[Any]]
"""A WHERE clause (empty for no condition) and its parameters, in order."""

RUNS_NEWEST_FIRST = "ORDER BY created_at DESC, run_id DESC"
RUNS_OLDEST_FIRST = "ORDER BY created_at, run_id"
RUNS_DUE_FIRST = "ORDER BY not_before, created_at, run_id"
APPROVALS_NEWEST_FIRST = "ORDER BY requested_at DESC, approval_id DESC"
APPROVALS_EXPIRING_FIRST = "ORDER BY expires_at, approval_id"
OPEN_RUN_STATES = tuple(s.value for s in RunState if s not in TERMINAL_RUN_STATES)


@dataclass(frozen=True)
class Dialect:
    """What differs between the stores' drivers when binding a filter."""

    mark: str  # the placeholder: "?" or "%s"
    encode: Callable[[Any], Any]  # a model value as a parameter
    one_of: Callable[[str, Sequence[str]], Filter]  # `column` is one of the values

    def where(self, *conditions: tuple[str, Any]) -> Filter:
        """`WHERE a AND b` of the conditions whose value is not None, and their parameters."""
        used = [(clause, self.encode(value)) for clause, value in conditions if value is not None]
        clause = " AND ".join(c.replace("?", self.mark) for c, _ in used)
        return (f"WHERE {clause}" if clause else ""), [value for _, value in used]


def runs_filter(dialect: Dialect, query: RunQuery) -> Filter:
    """The filter of `list_runs` (keyset `before` on (created_at, run_id))."""
    return dialect.where(
        ("rule_id = ?", query.rule_id),
        ("state = ?", query.state),
        ("source = ?", query.source),
        ("fingerprint = ?", query.fingerprint),
        ("created_at >= ?", query.since),
        (
            "(created_at, run_id) < (SELECT created_at, run_id FROM runs WHERE run_id = ?)",
            query.before,
        ),
    )


def open_runs_filter(dialect: Dialect, source: Source | None, fingerprint: str | None) -> Filter:
    """Runs not in a terminal state, of one alert when `source` and `fingerprint` are given."""
    where, params = dialect.where(("source = ?", source), ("fingerprint = ?", fingerprint))
    in_open, states = dialect.one_of("state", OPEN_RUN_STATES)
    return (f"{where} AND {in_open}" if where else f"WHERE {in_open}"), [*params, *states]


def due_runs_filter(dialect: Dialect, now: datetime) -> Filter:
    """Pending runs whose `not_before` is at or before `now`."""
    return dialect.where(("state = 'pending' AND not_before <= ?", now))


def approvals_filter(dialect: Dialect, state: ApprovalState | None, run_id: str | None) -> Filter:
    """The filter of `list_approvals`: by state and/or run."""
    return dialect.where(("state = ?", state), ("run_id = ?", run_id))


def expired_approvals_filter(dialect: Dialect, now: datetime) -> Filter:
    """Pending approvals whose `expires_at` is at or before `now`."""
    return dialect.where(("state = 'pending' AND expires_at <= ?", now))
