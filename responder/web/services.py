"""Cleanup contexts that open and close each resource of the app, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from responder.actions.base import ActionContext
from responder.adapters.coordination.memory import MemoryCoordinator
from responder.adapters.flag_files import LocalFlagFiles
from responder.adapters.http_client import AiohttpHttpApi
from responder.adapters.store.sqlite.store import SqliteStore
from responder.engine.approval_notifier import ApprovalNotifier, Sink
from responder.engine.approvals import ApprovalDesk
from responder.engine.containment_guard import ContainmentGuard, StormAction, StormPolicy
from responder.engine.delays import DelayPoller
from responder.engine.executor import Executor
from responder.engine.gating import Gate
from responder.engine.intake import AlertQueue, Intake
from responder.engine.leases import Leases
from responder.engine.pipeline import Pipeline
from responder.engine.recording import RunRecorder
from responder.engine.recovery import start_requeue, unprocessed_at_start
from responder.engine.resuming import Resumer
from responder.engine.workers import WorkerPool
from responder.errors import CoordinationUnavailableError
from responder.ports.store import Store
from responder.settings import Settings
from responder.web import keys

if TYPE_CHECKING:  # imported when configured: the Kubernetes client alone takes ~1-2 s
    from responder.adapters.kubernetes.api import KubernetesApi
    from responder.adapters.targets.postgres import PsycopgSqlApi
    from responder.adapters.targets.redis import RedisInfoApi

log = structlog.get_logger("responder.web")


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    """PostgreSQL when RESPONDER_DATABASE_URL is set, else the embedded SQLite file."""
    settings = app[keys.SETTINGS]
    if settings.store.database_url is not None:
        from responder.adapters.store.postgres.store import PostgresStore

        store: Store = await PostgresStore.open(
            settings.store.database_url.get_secret_value(),
            timeout_seconds=settings.store.store_timeout_seconds,
            pool_max=settings.store.database_pool_max,
            batch_max=settings.store.store_batch_max,
            migrate=settings.store.migrate_on_start,
        )
        log.info("store_opened", kind="postgresql", migrated=settings.store.migrate_on_start)
    else:
        store = await SqliteStore.open(
            settings.store.sqlite_path,
            timeout_seconds=settings.store.store_timeout_seconds,
            batch_max=settings.store.store_batch_max,
        )
        log.info("store_opened", kind="sqlite", path=str(settings.store.sqlite_path))
    app[keys.STORE] = store
    yield
    await store.close()


async def coordinator_ctx(app: web.Application) -> AsyncIterator[None]:
    """Redis when RESPONDER_REDIS_URL is set (many replicas), else in-process (one)."""
    settings = app[keys.SETTINGS]
    if settings.coordination.redis_url is not None:
        from responder.adapters.coordination.redis import RedisCoordinator

        coordinator: MemoryCoordinator | RedisCoordinator = await RedisCoordinator.open(
            settings.coordination.redis_url.get_secret_value(),
            prefix=settings.coordination.redis_prefix,
            timeout_seconds=settings.coordination.coordination_timeout_seconds,
            require=False,
        )
        try:
            await coordinator.ping()
            log.info("coordinator_opened", kind="redis", prefix=settings.coordination.redis_prefix)
        except CoordinationUnavailableError as exc:
            hint = "containment is skipped until Redis answers; diagnostics run"
            log.warning("coordinator_unavailable", reason=str(exc), hint=hint)
    else:
        coordinator = MemoryCoordinator()
    app[keys.COORDINATOR] = coordinator
    yield
    await coordinator.close()


def open_kube(settings: Settings) -> KubernetesApi | None:
    """The Kubernetes client configured by settings, or None (k8s.* steps then fail clearly).

    Raises ValueError when RESPONDER_KUBECONFIG does not load, or RESPONDER_K8S_IN_CLUSTER is
    set outside a pod: a broken configuration stops the start, it is not found at 3 a.m.
    """
    if settings.kubernetes.kubeconfig is None and not settings.kubernetes.k8s_in_cluster:
        return None
    from responder.adapters.kubernetes.api import KubernetesApi

    if settings.kubernetes.kubeconfig is not None:
        return KubernetesApi.from_kubeconfig(
            settings.kubernetes.kubeconfig,
            context=settings.kubernetes.k8s_context,
            allowed_namespaces=settings.kubernetes.k8s_allowed_namespaces,
            request_timeout_seconds=settings.kubernetes.k8s_request_timeout_seconds,
            instance_id=settings.coordination.instance_id,
        )
    if settings.kubernetes.k8s_in_cluster:
        return KubernetesApi.in_cluster(
            allowed_namespaces=settings.kubernetes.k8s_allowed_namespaces,
            request_timeout_seconds=settings.kubernetes.k8s_request_timeout_seconds,
            instance_id=settings.coordination.instance_id,
        )
    return None


async def kube_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Kubernetes API client of the k8s.* actions, when a cluster is configured."""
    settings = app[keys.SETTINGS]
    kube = open_kube(settings)
    if kube is not None:
        app[keys.KUBE] = kube
        kubernetes = settings.kubernetes
        namespaces = ",".join(kubernetes.k8s_allowed_namespaces)
        log.info("kube_configured", in_cluster=kubernetes.k8s_in_cluster, namespaces=namespaces)
        if not kubernetes.k8s_allowed_namespaces:
            hint = "k8s.* steps are refused until RESPONDER_K8S_ALLOWED_NAMESPACES is set"
            log.warning("kube_namespaces_missing", hint=hint)
    yield
    if kube is not None:
        await kube.close()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outgoing HTTP client used by actions."""
    http = await AiohttpHttpApi.create()
    app[keys.HTTP] = http
    yield
    await http.close()


def _storm(settings: Settings) -> StormPolicy:
    return StormPolicy(
        limit=settings.runs.storm_max,
        window=timedelta(seconds=settings.runs.storm_window_seconds),
        action=StormAction(settings.runs.storm_action),
    )


def _monitored(settings: Settings) -> tuple[PsycopgSqlApi | None, RedisInfoApi | None]:
    """The monitored PostgreSQL and Redis targets' clients, when any are configured."""
    sql = redis_api = None
    targets = settings.targets
    if targets.postgres_targets:
        from responder.adapters.targets.postgres import PsycopgSqlApi

        sql = PsycopgSqlApi({k: v.get_secret_value() for k, v in targets.postgres_targets.items()})
    if targets.redis_targets:
        from responder.adapters.targets.redis import RedisInfoApi

        redis_api = RedisInfoApi(
            {k: v.get_secret_value() for k, v in targets.redis_targets.items()}
        )
    return sql, redis_api


async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
    """Queue, pipeline, workers, `for:` poller and leases; recovery at start, drain at stop."""
    settings = app[keys.SETTINGS]
    metrics, clock, store = app[keys.METRICS], app[keys.CLOCK], app[keys.STORE]
    catalog, http, coordinator = app[keys.CATALOG], app[keys.HTTP], app[keys.COORDINATOR]
    recorder = RunRecorder(run_store=store, audit_log=store, metrics=metrics, clock=clock)

    sql, redis_api = _monitored(settings)
    flag_dirs = settings.targets.flagd_file_dirs
    flag_files = LocalFlagFiles(flag_dirs) if flag_dirs else None
    kube = app.get(keys.KUBE)

    def contexts(run_id: str, rule_id: str, step_id: str) -> ActionContext:
        return ActionContext(
            http=http,
            allowed_hosts=settings.targets.http_allowed_hosts,
            run_id=run_id,
            rule_id=rule_id,
            step_id=step_id,
            output_max_bytes=settings.runs.output_max_bytes,
            sql=sql,
            redis=redis_api,
            flag_files=flag_files,
            kube=kube,
            allowed_namespaces=settings.kubernetes.k8s_allowed_namespaces,
        )

    executor = Executor(
        catalog,
        contexts,
        recorder,
        clock,
        ContainmentGuard(coordinator, _storm(settings)),
        max_attempts=settings.runs.step_max_attempts,
        output_max_bytes=settings.runs.output_max_bytes,
        instance_id=settings.coordination.instance_id,
    )
    gate = Gate(coordinator, dedup_ttl=timedelta(seconds=settings.intake.dedup_ttl_seconds))
    resumer = Resumer(
        run_store=store,
        alert_log=store,
        rulebook=app[keys.RULEBOOK],
        catalog=catalog,
        gate=gate,
        executor=executor,
        recorder=recorder,
        clock=clock,
        instance_id=settings.coordination.instance_id,
        dry_run=settings.runs.dry_run,
    )
    pipeline = Pipeline(
        rulebook=app[keys.RULEBOOK],
        catalog=catalog,
        gate=gate,
        executor=executor,
        resumer=resumer,
        recorder=recorder,
        alert_log=store,
        run_store=store,
        clock=clock,
        metrics=metrics,
        dry_run=settings.runs.dry_run,
        instance_id=settings.coordination.instance_id,
    )
    notifier = None
    if settings.approvals.approval_notify:
        sinks = [Sink(s.action, dict(s.with_)) for s in settings.approvals.approval_notify]
        notifier = ApprovalNotifier(sinks, catalog, contexts)
    desk = ApprovalDesk(
        approval_store=store,
        run_store=store,
        recorder=recorder,
        clock=clock,
        resumer=resumer,
        notifier=notifier,
        public_url=settings.approvals.public_url,
    )
    executor.on_park = desk.request
    pipeline.on_cancel = desk.cancel_for_run
    app[keys.DESK] = desk
    queue = AlertQueue(settings.intake.queue_size, metrics)
    intake = Intake(
        alert_log=store,
        queue=queue,
        metrics=metrics,
        clock=clock,
        retry_after=settings.intake.retry_after_seconds,
        needs_processing=pipeline.needs_processing,
    )
    workers = WorkerPool(queue, pipeline, settings.intake.workers)
    delays = DelayPoller(pipeline, settings.runs.timer_poll_seconds, desk.expire_due)
    leases = Leases(
        coordinator=coordinator,
        run_store=store,
        clock=clock,
        resumer=resumer,
        instance_id=settings.coordination.instance_id,
        lease=timedelta(seconds=settings.coordination.lease_seconds),
    )
    app[keys.QUEUE] = queue
    app[keys.INTAKE] = intake
    app[keys.PIPELINE] = pipeline
    app[keys.WORKERS] = workers
    try:
        await leases.renew()
        taken = await leases.sweep(at_start=True)  # continued in the background
        if taken:
            log.warning("runs_taken_over", count=taken)
    except CoordinationUnavailableError as exc:
        log.warning("recovery_deferred", reason=str(exc), hint="the lease loop retries")
    recovered = await unprocessed_at_start(alert_log=store)
    pipeline.recovered = {stored.alert_id for stored in recovered}
    pipeline.claims_are_durable = settings.coordination.redis_url is not None
    leases.start()
    workers.start()
    delays.start()
    requeue = start_requeue(queue, recovered)
    yield
    requeue.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await requeue
    finished = await workers.drain(intake, settings.http.drain_seconds)
    await delays.close(settings.http.drain_seconds)
    await desk.close(settings.http.drain_seconds)
    await leases.close(settings.http.drain_seconds)
    log.info("drained", finished=finished)
