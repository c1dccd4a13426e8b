"""Rule reloading on SIGHUP and on file changes; an invalid new set never replaces the old."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from responder.adapters.rule_files.loading import format_errors, load_rules
from responder.core.severities import SeverityScale
from responder.engine.rulebook import RuleBook, RuleSnapshot
from responder.errors import RuleSetError
from responder.metrics import Metrics
from responder.ports.clock import Clock
from responder.web import keys

log = structlog.get_logger("responder.rules")


def load_snapshot(
    directory: Path, known_actions: tuple[str, ...], scale: SeverityScale, clock: Clock
) -> RuleSnapshot:
    """Load and index the rules in `directory` (RuleSetError lists every problem).

    The cyclic garbage collector is paused meanwhile: loading only builds objects, and with
    it running each collection walked the whole growing rule set again (10,000 rules loaded
    in 5.8-6.8 s instead of 4.4 s). Whatever garbage loading made is collected afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        rules = load_rules(directory, known_actions=known_actions, severity=scale)
        return RuleSnapshot.build(rules, scale, clock.now())
    finally:
        if enabled:
            gc.enable()


def directory_state(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of the rule files: a cheap change detector."""
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
        return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    except OSError:
        return ()


def reload_rules(app: web.Application, trigger: str) -> bool:
    """Try to activate the rule files as they are now; keep the old set when they are invalid."""
    settings, metrics = app[keys.SETTINGS], app[keys.METRICS]
    rulebook = app[keys.RULEBOOK]
    known = app[keys.CATALOG].registry.names()
    try:
        snapshot = load_snapshot(
            settings.rules.rules_dir,
            known,
            SeverityScale(settings.rules.severity_levels),
            app[keys.CLOCK],
        )
    except RuleSetError as exc:
        metrics.rules_reloads.labels("rejected").inc()
        log.error(
            "rules_rejected",
            trigger=trigger,
            errors=format_errors(exc).splitlines(),
            kept=rulebook.current.digest,
            hint="fix the files; the previous rule set stays active",
        )
        return False
    if not rulebook.replace(snapshot):
        metrics.rules_reloads.labels("unchanged").inc()
        return False
    _publish(metrics, rulebook)
    metrics.rules_reloads.labels("applied").inc()
    log.info("rules_reloaded", trigger=trigger, rules=len(snapshot.rules), digest=snapshot.digest)
    return True


def _publish(metrics: Metrics, rulebook: RuleBook) -> None:
    metrics.rules_loaded.set(len(rulebook.current.rules))


async def reload_ctx(app: web.Application) -> AsyncIterator[None]:
    """Watch the rules directory (poll) and SIGHUP; reload on either."""
    settings = app[keys.SETTINGS]
    _publish(app[keys.METRICS], app[keys.RULEBOOK])
    hup = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, hup.set)

    async def watch() -> None:
        last = directory_state(settings.rules.rules_dir)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.rules.rules_poll_seconds):
                    await hup.wait()
            trigger = "sighup" if hup.is_set() else "file_change"
            hup.clear()
            state = directory_state(settings.rules.rules_dir)
            if trigger == "sighup" or state != last:
                last = state
                reload_rules(app, trigger)

    task = asyncio.create_task(watch(), name="responder-rules-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.remove_signal_handler(signal.SIGHUP)
