"""The log lines of accepted deliveries: `alert_received` per alert a worker gets, and
`alerts_unmatched` summaries, at most one per source per interval."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from responder.models.alerts import Alert, AlertStatus, Source
from responder.models.runs import StoredAlert
from responder.web.received_log import MAX_IDS, MAX_NAMES, ReceivedLog

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Recorder:
    """Stands in for the structlog logger: keeps each line's event and fields."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, **fields})

    def named(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == event]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stored(alert_id: int, name: str = "NobodyCares") -> StoredAlert:
    alert = Alert(
        source=Source.ALERTMANAGER,
        name=name,
        status=AlertStatus.FIRING,
        labels={"alertname": name},
        fingerprint=f"{alert_id:016x}",
    )
    return StoredAlert(alert_id=alert_id, delivery_id="d", received_at=AT, alert=alert)


def make(interval: float = 1.0) -> tuple[ReceivedLog, Recorder, Clock]:
    recorder, clock = Recorder(), Clock()
    return ReceivedLog(interval, now=clock, logger=recorder), recorder, clock


async def test_sparse_deliveries_get_a_line_each_with_their_ids() -> None:
    received, recorder, clock = make()
    received.accepted("alertmanager", [stored(1), stored(2, "AlsoIgnored")], [])
    clock.now += 1.5
    received.accepted("alertmanager", [stored(3)], [])
    assert recorder.lines == [
        {
            "event": "alerts_unmatched",
            "source": "alertmanager",
            "count": 2,
            "alert_ids": [1, 2],
            "alerts": ["AlsoIgnored", "NobodyCares"],
        },
        {
            "event": "alerts_unmatched",
            "source": "alertmanager",
            "count": 1,
            "alert_ids": [3],
            "alerts": ["NobodyCares"],
        },
    ]


async def test_queued_alerts_get_their_own_line_and_stay_out_of_the_summary() -> None:
    received, recorder, _ = make()
    wanted = stored(2, "DiskFull")
    received.accepted("grafana", [stored(1), wanted, stored(3)], [wanted])
    [line] = recorder.named("alert_received")
    assert line == {
        "event": "alert_received",
        "source": "grafana",
        "alert_id": 2,
        "alert": "DiskFull",
        "status": "firing",
        "fingerprint": wanted.alert.fingerprint,
    }
    [summary] = recorder.named("alerts_unmatched")
    assert (summary["count"], summary["alert_ids"]) == (2, [1, 3])


async def test_a_delivery_wholly_queued_writes_no_summary() -> None:
    received, recorder, _ = make()
    received.accepted("alertmanager", [stored(1, "DiskFull")], [stored(1, "DiskFull")])
    assert [line["event"] for line in recorder.lines] == ["alert_received"]


async def test_a_burst_is_summed_into_one_line_when_the_interval_is_up() -> None:
    recorder = Recorder()
    received = ReceivedLog(0.05, logger=recorder)  # the real monotonic clock and loop timer
    received.accepted("alertmanager", [stored(1)], [])  # written at once
    received.accepted("alertmanager", [stored(2)], [])
    received.accepted("alertmanager", [stored(3, "Other"), stored(4)], [])
    received.accepted("sentry", [stored(5)], [])  # its own source: its own interval
    assert [line["alert_ids"] for line in recorder.lines] == [[1], [5]]
    await asyncio.sleep(0.2)
    assert recorder.lines[2] == {
        "event": "alerts_unmatched",
        "source": "alertmanager",
        "count": 3,
        "alert_ids": [2, 3, 4],
        "alerts": ["NobodyCares", "Other"],
        "deliveries": 2,
    }
    assert len(recorder.lines) == 3


async def test_a_large_summary_lists_the_first_ids_and_counts_the_rest() -> None:
    received, recorder, clock = make()
    received.accepted("alertmanager", [stored(0)], [])
    items = [stored(i, f"Name{i % (MAX_NAMES + 5)}") for i in range(1, 2 * MAX_IDS + 1)]
    received.accepted("alertmanager", items[: MAX_IDS - 10], [])
    received.accepted("alertmanager", items[MAX_IDS - 10 :], [])
    received.flush()
    summary = recorder.lines[-1]
    assert summary["count"] == 2 * MAX_IDS
    assert summary["alert_ids"] == list(range(1, MAX_IDS + 1))
    assert (summary["more_ids"], summary["last_id"]) == (MAX_IDS, 2 * MAX_IDS)
    assert len(summary["alerts"]) == MAX_NAMES
    assert summary["more_names"] is True
    assert summary["deliveries"] == 2
    clock.now += 10
    received.accepted("alertmanager", [stored(999)], [])
    assert recorder.lines[-1]["alert_ids"] == [999]


async def test_flush_writes_what_is_pending_and_its_timer_writes_nothing_more() -> None:
    recorder = Recorder()
    received = ReceivedLog(0.05, logger=recorder)
    received.accepted("alertmanager", [stored(1)], [])
    received.accepted("alertmanager", [stored(2)], [])
    received.flush()
    assert [line["alert_ids"] for line in recorder.lines] == [[1], [2]]
    await asyncio.sleep(0.15)
    received.flush()
    assert len(recorder.lines) == 2
