"""Prometheus metrics, every one registered against an injected registry (`responder_*`)."""

from __future__ import annotations

import asyncio
import platform
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)

from responder import __version__


def _task_count() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # collected outside the loop (e.g. a test's registry dump)
        return 0.0


@dataclass(frozen=True)
class Metrics:
    """All metrics of one daemon instance. Label values come from bounded sets only."""

    registry: CollectorRegistry
    alerts_received: Counter
    alerts_truncated: Counter
    webhook_rejected: Counter
    rule_matches: Counter
    runs: Counter
    steps: Counter
    step_duration: Histogram
    queue_depth: Gauge
    queue_capacity: Gauge
    rules_loaded: Gauge
    rules_reloads: Counter
    store_commit_duration: Histogram
    approvals: Counter
    _accepted: dict[str, tuple[Histogram, Counter]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def accepted(self, source: str) -> tuple[Histogram, Counter]:
        """`store_commit_duration` and `alerts_received{outcome="accepted"}` of `source`.

        Kept per source: `labels()` takes a lock and builds the child's key on every call,
        and every webhook needs both (with the queue gauge, 6% of a 1-alert delivery's CPU).
        """
        found = self._accepted.get(source)
        if found is None:
            found = (
                self.store_commit_duration.labels(source),
                self.alerts_received.labels(source, "accepted"),
            )
            self._accepted[source] = found
        return found

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """Create and register every metric on `registry` (a fresh one by default)."""
        reg = registry if registry is not None else CollectorRegistry()
        info = Info("responder_build", "Build information.", registry=reg)
        info.info({"version": __version__, "python": platform.python_version()})
        # process_resident_memory_bytes, process_open_fds, ... (Linux /proc), and the number of
        # asyncio tasks: the three figures that show a leak (docs/reliability.md, soak)
        ProcessCollector(registry=reg)
        Gauge(
            "responder_asyncio_tasks", "asyncio tasks alive in the serving loop.", registry=reg
        ).set_function(_task_count)
        return cls(
            registry=reg,
            alerts_received=Counter(
                "responder_alerts_received_total",
                "Alerts received, by source and outcome (accepted, duplicate, rejected).",
                ["source", "outcome"],
                registry=reg,
            ),
            alerts_truncated=Counter(
                "responder_alerts_truncated_total",
                "Alerts the sender dropped from a payload (Alertmanager truncatedAlerts).",
                ["source"],
                registry=reg,
            ),
            webhook_rejected=Counter(
                "responder_webhook_rejected_total",
                "Webhook requests answered with an error, by source and HTTP status.",
                ["source", "status"],
                registry=reg,
            ),
            rule_matches=Counter(
                "responder_rule_matches_total",
                "Rule matches (one per rule and alert).",
                ["rule"],
                registry=reg,
            ),
            runs=Counter(
                "responder_runs_total",
                "Runs by final state.",
                ["rule", "state"],
                registry=reg,
            ),
            steps=Counter(
                "responder_steps_total",
                "Steps by action, outcome and skip reason ('' unless skipped).",
                ["action", "outcome", "reason"],
                registry=reg,
            ),
            step_duration=Histogram(
                "responder_step_duration_seconds",
                "Time to execute one step, by action.",
                ["action"],
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                registry=reg,
            ),
            queue_depth=Gauge(
                "responder_queue_depth", "Alerts waiting for a worker.", registry=reg
            ),
            queue_capacity=Gauge(
                "responder_queue_capacity", "Size of the bounded alert queue.", registry=reg
            ),
            rules_loaded=Gauge("responder_rules_loaded", "Rules in the active set.", registry=reg),
            rules_reloads=Counter(
                "responder_rules_reloads_total",
                "Rule reload attempts by outcome (applied, rejected, unchanged).",
                ["outcome"],
                registry=reg,
            ),
            store_commit_duration=Histogram(
                "responder_store_write_duration_seconds",
                "Time from webhook parse to durable receipt.",
                ["source"],
                registry=reg,
            ),
            approvals=Counter(
                "responder_approvals_total",
                "Approval requests (reason: rule, storm_brake) and how they ended (granted, "
                "rejected, expired, stale; reason '').",
                ["event", "reason"],
                registry=reg,
            ),
        )
