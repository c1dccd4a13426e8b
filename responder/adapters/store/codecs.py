"""How both stores map our models onto table rows: the fields of each table in column order,
the JSON documents among them and their codecs, the refusal of naive times, and the one record
both compose themselves (the audit event of a prune).

A store turns a model into query parameters with `values(model, fields, encode)`: JSON fields
become pydantic JSON text (NULL stays NULL), every other field goes through the store's own
`encode` (SQLite writes times as text, PostgreSQL as timestamptz). Reading back, `load_json`
turns that text into the field's value again, so both stores decode alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter

from responder.models.runs import AuditEvent, AuditKind

RUN_FIELDS = (
    "run_id",
    "rule_id",
    "alert_id",
    "source",
    "fingerprint",
    "alert_identity",
    "guard_key",
    "idempotency_key",
    "state",
    "reason",
    "dry_run",
    "created_at",
    "updated_at",
    "not_before",
    "owner",
)
STEP_FIELDS = (
    "step_id",
    "action",
    "state",
    "reason",
    "params",
    "output",
    "error",
    "attempts",
    "started_at",
    "finished_at",
    "instance",
    "sent",
)
AUDIT_FIELDS = (
    "at",
    "kind",
    "actor",
    "run_id",
    "rule_id",
    "step_id",
    "alert_id",
    "reason",
    "details",
)
APPROVAL_FIELDS = (
    "approval_id",
    "run_id",
    "step_id",
    "rule_id",
    "state",
    "reason",
    "requested_at",
    "expires_at",
    "approvers",
    "action",
    "params",
    "decided_by",
    "decided_at",
    "comment",
    "source_ip",
)
JSON_FIELDS = frozenset(("params", "output", "sent", "details", "approvers"))
"""Fields stored as JSON documents (steps: params, output, sent; audit: details; approvals:
approvers, params)."""

_DOCUMENT: TypeAdapter[Any] = TypeAdapter(dict[str, Any])
_NAMES: TypeAdapter[Any] = TypeAdapter(tuple[str, ...])


def _adapter(field: str) -> TypeAdapter[Any]:
    return _NAMES if field == "approvers" else _DOCUMENT


def dump_json(field: str, value: Any) -> str | None:
    """The JSON text of a JSON field's value (None stays NULL)."""
    if value is None:
        return None
    return _adapter(field).dump_json(value).decode()


def load_json(field: str, text: str | None) -> Any:
    """A JSON field's value read back from its JSON text (NULL stays None)."""
    if text is None:
        return None
    return _adapter(field).validate_json(text)


def values(model: BaseModel, fields: Sequence[str], encode: Callable[[Any], Any]) -> list[Any]:
    """The query parameters of `model`'s `fields`, in order: JSON text or `encode(value)`."""
    return [
        dump_json(f, getattr(model, f)) if f in JSON_FIELDS else encode(getattr(model, f))
        for f in fields
    ]


def aware(value: datetime) -> datetime:
    """`value` itself, if it is timezone-aware; a naive datetime is refused (ValueError)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware (UTC) time")
    return value


def pruned_event(older_than: datetime, actor: str, now: datetime, count: int) -> AuditEvent:
    """The `audit_pruned` record of one retention run (both stores write this one)."""
    return AuditEvent(
        kind=AuditKind.AUDIT_PRUNED,
        at=now,
        actor=actor,
        reason="retention",
        details={"cutoff": older_than.astimezone(UTC).isoformat(), "count": count},
    )
