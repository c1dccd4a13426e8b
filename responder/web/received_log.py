"""The log lines of accepted deliveries: one per alert a rule may act on, a summary for the rest.

Every alert is in the store under the id the 202 gives, so the log need not repeat each one.
`alert_received` is written per alert a rule may act on (or resolution): those are the
alerts an operator follows. The others, which Alertmanager re-sends with every group
notification and which in a storm are nearly all of them, go into `alerts_unmatched`
summaries: at most one line per source per `interval` seconds. A delivery that arrives when
its source wrote no summary in the last `interval` is written at once (so at a few
deliveries per second nothing changes: a line per delivery with its ids); otherwise it joins
the pending summary, which a timer writes when the interval is up. Under 4,000 deliveries/s
the per-delivery line was 14-18% of the daemon's CPU (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from responder.models.runs import StoredAlert

log = structlog.get_logger("responder.web")

MAX_IDS = 100  # ids listed per summary; `more_ids` counts the rest
MAX_NAMES = 50  # distinct alert names listed per summary; `more_names` says there were more


@dataclass
class _Summary:
    count: int = 0
    deliveries: int = 0
    ids: list[int] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    more_names: bool = False
    last_id: int = 0

    def add(self, items: Sequence[StoredAlert]) -> None:
        self.count += len(items)
        self.deliveries += 1
        room = MAX_IDS - len(self.ids)
        if room > 0:
            self.ids.extend(item.alert_id for item in items[:room])
        for item in items:
            if len(self.names) < MAX_NAMES:
                self.names.add(item.alert.name)
            elif item.alert.name not in self.names:
                self.more_names = True
        self.last_id = max(self.last_id, max(item.alert_id for item in items))


class ReceivedLog:
    """Writes `alert_received` lines and rate-limited `alerts_unmatched` summaries."""

    def __init__(
        self,
        interval: float = 1.0,
        *,
        now: Callable[[], float] = time.monotonic,
        logger: Any = None,
    ) -> None:
        self._interval = interval
        self._now = now
        self._log = log if logger is None else logger  # tests pass a recorder
        self._written: dict[str, float] = {}  # source -> when its last summary was written
        self._pending: dict[str, _Summary] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def accepted(
        self, source: str, stored: Sequence[StoredAlert], queued: Sequence[StoredAlert]
    ) -> None:
        """Log one accepted delivery: `queued` are the alerts handed to the workers."""
        for item in queued:
            self._log.info(
                "alert_received",
                source=source,
                alert_id=item.alert_id,
                alert=item.alert.name,
                status=item.alert.status.value,
                fingerprint=item.alert.fingerprint,
            )
        if len(stored) == len(queued):
            return
        wanted = {item.alert_id for item in queued}
        rest = [item for item in stored if item.alert_id not in wanted] if wanted else stored
        self._pending.setdefault(source, _Summary()).add(rest)
        if source in self._timers:
            return  # a summary is already due
        wait = self._written.get(source, float("-inf")) + self._interval - self._now()
        if wait <= 0:
            self._write(source)
        else:
            loop = asyncio.get_running_loop()
            self._timers[source] = loop.call_later(wait, self._write, source)

    @property
    def pending(self) -> int:
        """Alerts in summaries not written yet."""
        return sum(summary.count for summary in self._pending.values())

    def flush(self) -> None:
        """Write every pending summary now (at shutdown)."""
        for source in list(self._pending):
            self._write(source)

    def _write(self, source: str) -> None:
        timer = self._timers.pop(source, None)
        if timer is not None:
            timer.cancel()
        summary = self._pending.pop(source, None)
        if summary is None:
            return
        self._written[source] = self._now()
        extra: dict[str, object] = {}
        if summary.count > len(summary.ids):
            extra["more_ids"] = summary.count - len(summary.ids)
            extra["last_id"] = summary.last_id
        if summary.more_names:
            extra["more_names"] = True
        if summary.deliveries > 1:
            extra["deliveries"] = summary.deliveries
        self._log.info(
            "alerts_unmatched",
            source=source,
            count=summary.count,
            alert_ids=summary.ids,
            alerts=sorted(summary.names),
            **extra,
        )
