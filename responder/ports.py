"""Protocols the engine and actions need; adapters implement them, tests use the real ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from responder.models.alerts import Alert, Delivery, Source
from responder.models.approvals import Approval, ApprovalState
from responder.models.http import HttpRequest, HttpResponse
from responder.models.kube import ConfigMap, Deployment, KubeEvent, NewEvent, Pod, Scale
from responder.models.rules import Budget
from responder.models.runs import AuditEvent, RunQuery, RunRecord, RunState, StoredAlert


def check_limit(limit: int) -> int:
    """The port contract for every `limit`: at least 1 (ValueError otherwise)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return limit


class Clock(Protocol):
    """Time as an argument: the engine never reads the wall clock directly."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class Store(Protocol):
    """Durable record of received alerts, runs, steps and the append-only audit log."""

    async def record_delivery(
        self, delivery: Delivery, received_at: datetime, *, settled: Sequence[bool] = ()
    ) -> list[StoredAlert]:
        """Durably write every alert of a delivery (one commit, shared by concurrent callers).

        `settled[i]` True: alert i needs no processing (no rule can act on it); it is written
        already marked processed at `received_at`, so recovery never picks it up. Missing
        entries mean False. Returns the stored alerts in delivery order. Raises
        StoreUnavailableError if the write did not happen; nothing is acknowledged then.
        """
        ...

    async def unprocessed_alerts(self, limit: int) -> list[StoredAlert]:
        """Alerts received but not yet marked processed, oldest first (start-up recovery).

        `limit` must be at least 1 (ValueError otherwise).
        """
        ...

    async def mark_alert_processed(self, alert_id: int, at: datetime) -> None:
        """Mark an alert as fully handed to the engine (its runs are recorded).

        Idempotent: the first time is kept; an unknown id is ignored.
        """
        ...

    async def get_alert(self, alert_id: int) -> StoredAlert | None:
        """One stored alert by id, or None."""
        ...

    async def save_run(self, run: RunRecord, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert or replace a run and its steps, and append `audit` events, in one
        transaction: a run's state and the audit record of how it got there land together."""
        ...

    async def replace_run_if(self, run: RunRecord, expected: RunState) -> bool:
        """Compare-and-set: save `run` only if the stored run is still in state `expected`.

        Atomic across processes sharing the store; True when saved. A run that does not
        exist is not created (False).
        """
        ...

    async def due_runs(self, now: datetime, limit: int) -> list[RunRecord]:
        """Pending runs whose `not_before` is at or before `now`, earliest first."""
        ...

    async def get_run(self, run_id: str) -> RunRecord | None:
        """One run with its steps, or None."""
        ...

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs matching the filters, newest first by (created_at, run_id).

        `query.before` is a run id: only runs strictly older than it are returned (keyset
        pagination); an unknown id gives an empty page.
        """
        ...

    async def has_run(self, rule_id: str, alert: Alert) -> bool:
        """Whether a run of `rule_id` exists for this occurrence of `alert` (its source,
        fingerprint and identity): one indexed lookup, no run is loaded."""
        ...

    async def open_runs(
        self, source: Source | None = None, fingerprint: str | None = None
    ) -> list[RunRecord]:
        """Runs not in a terminal state, optionally only those of one alert; oldest first."""
        ...

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append audit events (never updated or deleted by the application)."""
        ...

    async def audit_for_run(self, run_id: str) -> list[AuditEvent]:
        """The audit trail of one run, oldest first by (at, insertion order)."""
        ...

    async def save_approval(self, approval: Approval) -> None:
        """Insert an approval request (insert or replace by `approval_id`)."""
        ...

    async def get_approval(self, approval_id: str) -> Approval | None:
        """One approval request, or None."""
        ...

    async def replace_approval_if(self, approval: Approval, expected: ApprovalState) -> bool:
        """Compare-and-set: save `approval` only if the stored one is in state `expected`.

        Atomic across processes; True when saved (so exactly one decision wins).
        """
        ...

    async def list_approvals(
        self, state: ApprovalState | None = None, *, run_id: str | None = None, limit: int = 100
    ) -> list[Approval]:
        """Approvals filtered by state and/or run, newest `requested_at` first."""
        ...

    async def expired_approvals(self, now: datetime, limit: int) -> list[Approval]:
        """Pending approvals whose `expires_at` is at or before `now`, oldest expiry first."""
        ...

    async def prune_audit(self, older_than: datetime, actor: str) -> int:
        """Delete audit events older than `older_than` (the one retention path), and append
        an `audit_pruned` event naming `actor`, the cut-off and the count. Returns the count.
        """
        ...

    async def check_writable(self) -> None:
        """Raise StoreUnavailableError unless a write would succeed now."""
        ...

    async def close(self) -> None:
        """Flush pending writes and release the connection."""
        ...


class Coordinator(Protocol):
    """Dedup claims, cooldowns and run budgets shared by every replica."""

    async def claim(self, key: str, ttl: timedelta) -> bool:
        """Claim `key` for `ttl`; True only for the first caller (SET NX PX)."""
        ...

    async def cooldown_remaining(self, key: str) -> timedelta | None:
        """Time left on the cooldown of `key`, or None when not cooling down."""
        ...

    async def start_cooldown(self, key: str, ttl: timedelta) -> None:
        """Start (or restart) the cooldown of `key`."""
        ...

    async def begin_cooldown(self, key: str, ttl: timedelta) -> timedelta | None:
        """Atomically start the cooldown of `key` unless one is running.

        None when this caller started it (exactly one of concurrent callers, across
        replicas); otherwise the time left on the running cooldown.
        """
        ...

    async def take_budget(self, key: str, budgets: Sequence[Budget], now: datetime) -> bool:
        """Atomically check every budget window of `key` and, if all allow, count one run.

        Windows slide: a run counted at time t uses a slot while `now - per < t`. A run is
        counted in every window or in none.
        """
        ...

    async def budget_allows(self, key: str, budgets: Sequence[Budget], now: datetime) -> bool:
        """Whether a run would fit every budget window of `key` (no side effect)."""
        ...

    async def acquire_lock(self, key: str, ttl: timedelta) -> str | None:
        """Take a short lock (always expiring); returns the owner token, or None if held."""
        ...

    async def release_lock(self, key: str, token: str) -> bool:
        """Release the lock only if `token` still owns it (compare and delete)."""
        ...

    async def ping(self) -> None:
        """Raise CoordinationUnavailableError unless the coordinator answers now."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class HttpApi(Protocol):
    """Outgoing HTTP with a timeout and a response size cap on every call."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send one request. Raises TemporaryError on transport errors and timeouts."""
        ...


class SqlApi(Protocol):
    """Queries against a monitored PostgreSQL (not responder's own store), by target name."""

    async def fetch(
        self, target: str, sql: str, params: Mapping[str, object], *, read_only: bool,
        timeout_seconds: float,
    ) -> list[dict[str, object]]:  # fmt: skip
        """Run one statement on the named target (RESPONDER_POSTGRES_TARGETS) and return rows.

        `read_only` runs it in a read-only transaction. Raises NotAllowedError for an unknown
        target, TemporaryError when the server cannot be reached, PermanentError otherwise.
        """
        ...


class RedisApi(Protocol):
    """Read-only commands against a monitored Redis (not responder's coordinator), by name."""

    async def info(self, target: str, section: str, *, timeout_seconds: float) -> dict[str, object]:
        """`INFO <section>` of the named target (RESPONDER_REDIS_TARGETS)."""
        ...

    async def slowlog(
        self, target: str, count: int, *, timeout_seconds: float
    ) -> list[dict[str, object]]:
        """`SLOWLOG GET <count>` of the named target."""
        ...


class FlagFileApi(Protocol):
    """Flag definition files (flagd file sources) below the allowlisted directories."""

    async def read_text(self, path: str, *, timeout_seconds: float) -> str:
        """The whole file as UTF-8 text.

        Raises NotAllowedError outside RESPONDER_FLAGD_FILE_DIRS (symbolic links resolved) or
        for a symbolic link itself, PermanentError when the file is missing, unreadable, not
        UTF-8 or too large, TemporaryError on other IO errors and on timeout.
        """
        ...

    async def replace_text(
        self, path: str, text: str, *, expected: str, timeout_seconds: float
    ) -> None:
        """Atomically replace the file with `text` if it still holds `expected`.

        Writes a temporary file in the same directory (same permission bits), syncs it and
        renames it over the file, so readers see the old or the new text, never a mix.
        Raises TemporaryError when the file changed since it was read (read again and retry),
        and otherwise as `read_text`.
        """
        ...


class KubeApi(Protocol):
    """The Kubernetes API calls actions make, each bounded by a request timeout.

    `timeout_seconds=None` uses the adapter's configured request timeout
    (RESPONDER_K8S_REQUEST_TIMEOUT_SECONDS); a value caps this one call. Namespaces outside
    RESPONDER_K8S_ALLOWED_NAMESPACES are refused with NotAllowedError before any request.
    Errors: 5xx, 429, timeouts and unreachable servers -> TemporaryError; 409 -> TemporaryError
    (stale resourceVersion: re-read and retry); 403 -> PermanentError naming the missing RBAC
    verb and resource; 404, 401, 400/422 -> PermanentError.
    """

    async def read_deployment(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> Deployment:
        """GET an apps/v1 Deployment (RBAC: get deployments)."""
        ...

    async def restart_deployment(
        self, namespace: str, name: str, restarted_at: datetime,
        *, timeout_seconds: float | None = None,
    ) -> Deployment:  # fmt: skip
        """PATCH the pod template's `kubectl.kubernetes.io/restartedAt` annotation exactly as
        `kubectl rollout restart` does (strategic-merge patch, RFC 3339 seconds, UTC), with
        fieldManager=responder. Returns the patched Deployment (RBAC: patch deployments).
        """
        ...

    async def read_scale(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> Scale:
        """GET deployments/{name}/scale (RBAC: get deployments/scale)."""
        ...

    async def patch_scale(
        self, namespace: str, name: str, replicas: int, *, timeout_seconds: float | None = None
    ) -> Scale:
        """Merge-PATCH `{"spec":{"replicas":n}}` on the scale subresource, as `kubectl scale`
        (RBAC: patch deployments/scale).
        """
        ...

    async def list_pods(
        self, namespace: str, label_selector: str | None = None, *, limit: int = 500,
        timeout_seconds: float | None = None,
    ) -> list[Pod]:  # fmt: skip
        """Pods matching an equality label selector, at most `limit` (RBAC: list pods)."""
        ...

    async def read_pod(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> Pod:
        """GET one Pod (RBAC: get pods)."""
        ...

    async def read_pod_log(
        self, namespace: str, name: str, *, container: str | None = None, tail_lines: int,
        limit_bytes: int, previous: bool = False, timeout_seconds: float | None = None,
    ) -> str:  # fmt: skip
        """The last `tail_lines` lines (at most `limit_bytes`) of one container's log; with
        `previous`, of its terminated instance (RBAC: get pods/log).
        """
        ...

    async def list_events(
        self, namespace: str, *, kind: str | None = None, name: str | None = None,
        uid: str | None = None, limit: int = 500, timeout_seconds: float | None = None,
    ) -> list[KubeEvent]:  # fmt: skip
        """core/v1 Events of a namespace, or of one object (`involvedObject.*` field
        selectors), in server order, at most `limit` (RBAC: list events).
        """
        ...

    async def delete_pod(
        self, namespace: str, name: str, *, uid: str | None = None,
        grace_period_seconds: int | None = None, timeout_seconds: float | None = None,
    ) -> None:  # fmt: skip
        """DELETE one Pod; with `uid`, only that instance (a precondition: a replacement with
        the same name answers 409). RBAC: delete pods.
        """
        ...

    async def create_event(
        self, namespace: str, event: NewEvent, *, timeout_seconds: float | None = None
    ) -> KubeEvent:
        """POST a core/v1 Event on `event.regarding` (source and reportingComponent
        `responder`), so `kubectl describe` shows it (RBAC: create events).
        """
        ...

    async def get_config_map(
        self, namespace: str, name: str, *, timeout_seconds: float | None = None
    ) -> ConfigMap:
        """GET one ConfigMap with its resourceVersion (RBAC: get configmaps)."""
        ...

    async def replace_config_map(
        self, namespace: str, name: str, data: Mapping[str, str], resource_version: str,
        *, timeout_seconds: float | None = None,
    ) -> ConfigMap:  # fmt: skip
        """PUT the ConfigMap's `data` only if it is still at `resource_version` (409 ->
        TemporaryError: someone else changed it; read again). RBAC: update configmaps.
        """
        ...
