"""Cleanup contexts that open and close each resource of the app, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import structlog
from aiohttp import web

from responder.actions.registry import ActionContext
from responder.adapters.http_client import AiohttpHttpApi
from responder.adapters.memory_coordinator import MemoryCoordinator
from responder.adapters.sqlite_store import SqliteStore
from responder.engine.executor import Executor
from responder.engine.gating import Gate
from responder.engine.intake import AlertQueue, Intake
from responder.engine.pipeline import Pipeline
from responder.engine.recording import RunRecorder
from responder.engine.recovery import settle_open_runs, start_requeue
from responder.engine.workers import WorkerPool
from responder.web import keys

log = structlog.get_logger("responder.web")


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    """The embedded SQLite store (PostgreSQL arrives with its own adapter)."""
    settings = app[keys.SETTINGS]
    store = await SqliteStore.open(
        settings.sqlite_path,
        timeout_seconds=settings.store_timeout_seconds,
        batch_max=settings.store_batch_max,
    )
    app[keys.STORE] = store
    log.info("store_opened", kind="sqlite", path=str(settings.sqlite_path))
    yield
    await store.close()


async def coordinator_ctx(app: web.Application) -> AsyncIterator[None]:
    """In-process coordination (one replica)."""
    coordinator = MemoryCoordinator()
    app[keys.COORDINATOR] = coordinator
    yield
    await coordinator.close()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outgoing HTTP client used by actions."""
    http = await AiohttpHttpApi.create()
    app[keys.HTTP] = http
    yield
    await http.close()


async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
    """Queue, pipeline and workers; recovery at start, drain at stop."""
    settings = app[keys.SETTINGS]
    metrics, clock, store = app[keys.METRICS], app[keys.CLOCK], app[keys.STORE]
    catalog, http = app[keys.CATALOG], app[keys.HTTP]
    recorder = RunRecorder(store, metrics, clock)

    def contexts(run_id: str, rule_id: str, step_id: str) -> ActionContext:
        return ActionContext(
            http=http,
            allowed_hosts=settings.http_allowed_hosts,
            run_id=run_id,
            rule_id=rule_id,
            step_id=step_id,
            output_max_bytes=settings.output_max_bytes,
        )

    executor = Executor(
        catalog,
        contexts,
        recorder,
        clock,
        max_attempts=settings.step_max_attempts,
        output_max_bytes=settings.output_max_bytes,
    )
    pipeline = Pipeline(
        rulebook=app[keys.RULEBOOK],
        catalog=catalog,
        gate=Gate(app[keys.COORDINATOR], dedup_ttl=timedelta(seconds=settings.dedup_ttl_seconds)),
        executor=executor,
        recorder=recorder,
        store=store,
        clock=clock,
        metrics=metrics,
        dry_run=settings.dry_run,
    )
    queue = AlertQueue(settings.queue_size, metrics)
    intake = Intake(store, queue, metrics, clock, retry_after=settings.retry_after_seconds)
    workers = WorkerPool(queue, pipeline, settings.workers)
    app[keys.QUEUE], app[keys.INTAKE], app[keys.PIPELINE], app[keys.WORKERS] = (
        queue,
        intake,
        pipeline,
        workers,
    )
    abandoned = await settle_open_runs(store, recorder, clock)
    if abandoned:
        log.warning("runs_abandoned", count=abandoned)
    workers.start()
    requeue = start_requeue(store, queue)
    yield
    requeue.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await requeue
    finished = await workers.drain(intake, settings.drain_seconds)
    log.info("drained", finished=finished)
