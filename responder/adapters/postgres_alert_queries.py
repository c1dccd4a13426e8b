"""The `alerts` table of the PostgreSQL store: writing deliveries, marking alerts processed,
reading them back.

Each function takes an open autocommit connection and runs one statement. Scalar text goes
through `postgres_queries.encode` (or `_texts`, the same for a whole column): a NUL, which
PostgreSQL text cannot hold, becomes U+FFFD. The alert documents are `json`, read back
`::text` and validated as `Alert`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from psycopg.rows import dict_row
from pydantic import TypeAdapter

from responder.adapters.postgres_queries import Conn, encode
from responder.models.alerts import Alert, Delivery
from responder.models.runs import StoredAlert

_ALERTS = TypeAdapter(list[Alert])
# The alerts of one or several deliveries (concurrent deliveries are written together, see
# postgres_batching). The text arrays go in binary (%b): no quoting and escaping of every
# element, which in text format cost ~0.3 ms of CPU per alert. The alert documents go as ONE
# JSON array, serialised in one call and split by the server (json_array_elements), instead of
# a model_dump_json per alert and a binary array of their texts.
ALERT_INSERT = """
    INSERT INTO alerts (delivery_id, source, fingerprint, identity, status, name, received_at,
                        alert, processed_at)
    SELECT a.delivery, a.source, a.fingerprint, a.identity, a.status, a.name, a.at,
           a.alert, CASE WHEN a.settled THEN a.at END
    FROM ROWS FROM (unnest(%(delivery)b::text[]), unnest(%(source)b::text[]),
                    unnest(%(fingerprint)b::text[]), unnest(%(identity)b::text[]),
                    unnest(%(status)b::text[]), unnest(%(name)b::text[]),
                    unnest(%(at)b::timestamptz[]), json_array_elements(%(alerts)s::json),
                    unnest(%(settled)b::bool[]))
         WITH ORDINALITY AS a (delivery, source, fingerprint, identity, status, name, at, alert,
                               settled, ord)
    ORDER BY a.ord
    RETURNING id"""
# One alert (Grafana, Sentry, ungrouped Alertmanager): plain parameters cost psycopg a quarter
# less CPU than seven one-element arrays (0.30 against 0.40 ms per insert).
ALERT_INSERT_ONE = """
    INSERT INTO alerts (delivery_id, source, fingerprint, identity, status, name, received_at,
                        alert, processed_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s::json, %s)
    RETURNING id"""
_ALERT_SELECT = "SELECT id, delivery_id, received_at, alert::text AS alert FROM alerts"
# Concurrent processed marks, one UPDATE (see postgres_batching); the first mark is kept.
MARK_MANY = (
    "UPDATE alerts SET processed_at = m.at "
    "FROM unnest(%s::bigint[], %s::timestamptz[]) AS m (id, at) "
    "WHERE alerts.id = m.id AND alerts.processed_at IS NULL"
)


class DeliveryRows(NamedTuple):
    """One delivery to insert: its alerts, when it was received, and which of its alerts are
    written already processed (`settled[i]`, at `received_at`)."""

    delivery: Delivery
    received_at: datetime
    settled: Sequence[bool]


async def insert_alerts(conn: Conn, deliveries: Sequence[DeliveryRows]) -> list[list[int]]:
    """Insert every alert of `deliveries` in one statement; each delivery's ids, in order."""
    if len(deliveries) == 1 and len(deliveries[0].delivery.alerts) == 1:
        delivery, received_at, settled = deliveries[0]
        [alert] = delivery.alerts
        keys = (delivery.delivery_id, alert.source, alert.fingerprint, alert.identity)
        one = [encode(v) for v in (*keys, alert.status, alert.name, received_at)]
        one += [alert.model_dump_json(), encode(received_at) if settled[0] else None]
        cur = await conn.execute(ALERT_INSERT_ONE, one)
        return [[int(row[0]) for row in await cur.fetchall()]]
    alerts = [alert for rows in deliveries for alert in rows.delivery.alerts]
    params = {
        "delivery": _texts([r.delivery.delivery_id for r in deliveries for _ in r.delivery.alerts]),
        "source": _texts([str(a.source) for a in alerts]),
        "fingerprint": _texts([a.fingerprint for a in alerts]),
        "identity": _texts([a.identity for a in alerts]),
        "status": _texts([str(a.status) for a in alerts]),
        "name": _texts([a.name for a in alerts]),
        "at": [encode(r.received_at) for r in deliveries for _ in r.delivery.alerts],
        "alerts": _ALERTS.dump_json(alerts).decode(),
        "settled": [bool(done) for rows in deliveries for done in rows.settled],
    }
    cur = await conn.execute(ALERT_INSERT, params)
    # identities are drawn in ORDER BY ord order, so ascending ids are delivery order
    ids = sorted(int(row[0]) for row in await cur.fetchall())
    split: list[list[int]] = []
    for rows in deliveries:
        split.append(ids[: len(rows.delivery.alerts)])
        ids = ids[len(rows.delivery.alerts) :]
    return split


def _texts(values: list[str]) -> list[str]:
    """A text column of a grouped insert, as `encode` would make it, checked in one pass: a
    NUL (which PostgreSQL text cannot hold) becomes U+FFFD."""
    if "\x00" in "".join(values):
        return [value.replace("\x00", "\ufffd") for value in values]
    return values


def _stored_alert(row: dict[str, Any]) -> StoredAlert:
    return StoredAlert(
        alert_id=row["id"],
        delivery_id=row["delivery_id"],
        received_at=row["received_at"].astimezone(UTC),
        alert=Alert.model_validate_json(row["alert"]),
    )


async def select_alerts(conn: Conn, where: str, params: Sequence[Any]) -> list[StoredAlert]:
    """Alerts matching `where` (a constant clause, ORDER BY and LIMIT included)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"{_ALERT_SELECT} {where}", params)
        return [_stored_alert(row) for row in await cur.fetchall()]


async def mark_processed(conn: Conn, params: tuple[list[int], list[Any]]) -> None:
    """Mark the alerts `params[0]` processed at the times `params[1]`, unless already marked."""
    await conn.execute(MARK_MANY, params)
