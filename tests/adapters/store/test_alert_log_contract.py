"""The AlertLog contract: both store backends must pass these (fixtures: conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from responder.models.alerts import AlertStatus
from responder.ports.store import AlertLog
from tests.adapters.store.harnesses import StoreHarness
from tests.support.records import CEST, T0, make_alert, make_delivery


async def test_record_delivery_round_trips_alerts_in_order(alert_log: AlertLog) -> None:
    alerts = (make_alert(1), make_alert(2, status=AlertStatus.RESOLVED, ends_at=T0), make_alert(3))
    received = datetime(2024, 5, 1, 14, 30, tzinfo=CEST)
    stored = await alert_log.record_delivery(make_delivery(*alerts), received)
    assert [s.alert for s in stored] == list(alerts)
    assert [s.alert_id for s in stored] == sorted({s.alert_id for s in stored})
    assert all(s.delivery_id == "d1" and s.received_at == received for s in stored)
    assert await alert_log.unprocessed_alerts(10) == stored
    again = (await alert_log.unprocessed_alerts(10))[0]
    assert again.received_at.utcoffset() is not None
    assert again.alert.starts_at is not None
    assert again.alert.starts_at.utcoffset() == timedelta(hours=2)
    assert again.alert.labels["ünï"] == "cödé ✓"
    assert again.alert.raw == alerts[0].raw


async def test_unprocessed_alerts_oldest_first_until_processed(alert_log: AlertLog) -> None:
    first = await alert_log.record_delivery(make_delivery(make_alert(1), make_alert(2)), T0)
    second = await alert_log.record_delivery(make_delivery(make_alert(3), delivery_id="d2"), T0)
    ids = [s.alert_id for s in first + second]
    await alert_log.mark_alert_processed(ids[1], T0)
    await alert_log.mark_alert_processed(ids[1], T0 + timedelta(minutes=1))  # idempotent
    await alert_log.mark_alert_processed(999_999, T0)  # unknown: ignored
    assert [s.alert_id for s in await alert_log.unprocessed_alerts(10)] == [ids[0], ids[2]]
    assert [s.alert_id for s in await alert_log.unprocessed_alerts(1)] == [ids[0]]
    with pytest.raises(ValueError, match="limit"):
        await alert_log.unprocessed_alerts(0)


async def test_concurrent_deliveries_all_succeed_and_share_commits(
    store_harness: StoreHarness, alert_log: AlertLog
) -> None:
    before = store_harness.commits(alert_log)
    batches = await asyncio.gather(
        *(alert_log.record_delivery(make_delivery(make_alert(n)), T0) for n in range(50))
    )
    ids = [s.alert_id for batch in batches for s in batch]
    assert len(set(ids)) == 50
    assert len(await alert_log.unprocessed_alerts(100)) == 50
    after = store_harness.commits(alert_log)
    if before is not None and after is not None:
        assert after - before < 50


async def test_batch_max_bounds_what_one_commit_takes(store_harness: StoreHarness) -> None:
    store = await store_harness.open(batch_max=1)
    before = store_harness.commits(store)
    await asyncio.gather(
        *(store.record_delivery(make_delivery(make_alert(n)), T0) for n in range(10))
    )
    after = store_harness.commits(store)
    if before is not None and after is not None:
        assert after - before == 10


async def test_settled_alerts_are_written_processed(alert_log: AlertLog) -> None:
    stored = await alert_log.record_delivery(
        make_delivery(make_alert(1), make_alert(2), make_alert(3)), T0, settled=[True, False]
    )
    left = await alert_log.unprocessed_alerts(10)
    assert [a.alert_id for a in left] == [stored[1].alert_id, stored[2].alert_id]
    assert await alert_log.get_alert(stored[0].alert_id) == stored[0]  # stored all the same
    # a delivery of one alert (its own INSERT shape on PostgreSQL), settled or not
    [settled] = await alert_log.record_delivery(make_delivery(make_alert(4)), T0, settled=[True])
    [queued] = await alert_log.record_delivery(make_delivery(make_alert(5)), T0, settled=[False])
    left = await alert_log.unprocessed_alerts(10)
    assert [a.alert_id for a in left] == [stored[1].alert_id, stored[2].alert_id, queued.alert_id]
    assert await alert_log.get_alert(settled.alert_id) == settled
    assert await alert_log.get_alert(queued.alert_id) == queued


async def test_get_alert_by_id(alert_log: AlertLog) -> None:
    stored = await alert_log.record_delivery(make_delivery(make_alert(1), make_alert(2)), T0)
    assert await alert_log.get_alert(stored[1].alert_id) == stored[1]
    assert await alert_log.get_alert(stored[0].alert_id) == stored[0]
    assert await alert_log.get_alert(999_999) is None


async def test_nul_characters_from_a_sender_do_not_make_a_delivery_unstorable(
    alert_log: AlertLog,
) -> None:
    nul = make_alert(1, name="Bad\x00Name", labels={"alertname": "Bad\x00Name", "k\x00": "v\x00"})
    stored = await alert_log.record_delivery(make_delivery(nul), T0)
    assert await alert_log.get_alert(stored[0].alert_id) == stored[0]
    assert stored[0].alert == nul
    grouped = make_alert(2, fingerprint="f\x00p", labels={"alertname": "A\x00"})
    both = await alert_log.record_delivery(make_delivery(grouped, nul, delivery_id="d2"), T0)
    assert [s.alert for s in both] == [grouped, nul]
    for item in both:  # a grouped delivery takes the other insert path
        assert await alert_log.get_alert(item.alert_id) == item


async def test_a_delivery_the_store_cannot_write_fails_alone(alert_log: AlertLog) -> None:
    # A lone surrogate cannot be encoded for the database (the webhook parser refuses it;
    # built here directly). Written together with concurrent deliveries, it must fail alone.
    bad = make_alert(99, labels={"alertname": "Bad", "k": "\ud800"})
    results = await asyncio.gather(
        *(
            alert_log.record_delivery(
                make_delivery(make_alert(n), make_alert(n + 100), delivery_id=f"g{n}"), T0
            )
            for n in range(4)
        ),
        alert_log.record_delivery(make_delivery(bad, delivery_id="bad"), T0),
        *(
            alert_log.record_delivery(make_delivery(make_alert(n), delivery_id=f"s{n}"), T0)
            for n in range(10, 14)
        ),
        return_exceptions=True,
    )
    assert isinstance(results[4], Exception)
    good = [r for i, r in enumerate(results) if i != 4]
    assert not [r for r in good if isinstance(r, BaseException)]
    assert len(await alert_log.unprocessed_alerts(100)) == 12
