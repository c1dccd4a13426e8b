"""The approval desk: record requests, decide them exactly once, expire them, resume runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from responder.core.resumes import approval_digest
from responder.engine.approval_notifier import ApprovalNotifier
from responder.engine.recording import RunRecorder
from responder.engine.resuming import Claimed, Resumer, Stale
from responder.errors import ResponderError
from responder.models.approvals import Approval, ApprovalState
from responder.models.plans import PlannedStep
from responder.models.runs import AuditKind, RunRecord, RunState, SkipReason
from responder.ports.clock import Clock
from responder.ports.store import ApprovalStore, RunStore

log = structlog.get_logger("responder.engine")

DEFAULT_TTL = timedelta(minutes=30)


class ApprovalError(ResponderError):
    """A decision that cannot be taken; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str, approval: Approval | None = None) -> None:
        self.status = status
        self.approval = approval
        super().__init__(message)


@dataclass(frozen=True)
class Decision:
    """Who decides what, from where."""

    approve: bool
    approver: str
    groups: frozenset[str]
    comment: str | None
    source_ip: str | None


class ApprovalDesk:
    """Everything about approvals that touches runs; safe with many replicas (CAS).

    A decided or expired approval resumes its run through the `Resumer` (the one resume path,
    shared with `for:` delays); every ending of an approval (decided, expired, cancelled) is
    announced to the notice sinks like the request was, best effort.
    """

    def __init__(
        self,
        *,
        approval_store: ApprovalStore,
        run_store: RunStore,
        recorder: RunRecorder,
        clock: Clock,
        resumer: Resumer,
        notifier: ApprovalNotifier | None,
        public_url: str | None,
    ) -> None:
        self._approval_store = approval_store
        self._run_store = run_store
        self._recorder = recorder
        self._clock = clock
        self._resumer = resumer
        self._notifier = notifier
        self._public_url = (public_url or "").rstrip("/")
        self._running: set[asyncio.Task[None]] = set()

    def approve_url(self, approval_id: str) -> str:
        """Where a human approves (absolute when RESPONDER_PUBLIC_URL is set)."""
        return f"{self._public_url}/v1/approvals/{approval_id}/approve"

    def run_url(self, run_id: str) -> str:
        """Where the run is read (absolute when RESPONDER_PUBLIC_URL is set)."""
        return f"{self._public_url}/v1/runs/{run_id}"

    async def request(
        self,
        run: RunRecord,
        planned: PlannedStep,
        params: dict[str, object] | None,
        reason: str,
    ) -> Approval:
        """Record an approval request for a parked step, and audit it with its URL."""
        now = self._clock.now()
        approval = Approval(
            approval_id=uuid.uuid4().hex,
            run_id=run.run_id,
            step_id=planned.step_id,
            rule_id=run.rule_id,
            reason=reason,
            requested_at=now,
            expires_at=now + (planned.approval_ttl or DEFAULT_TTL),
            approvers=planned.approvers,
            action=planned.action,
            params=dict(params) if params is not None else None,
        )
        await self._approval_store.save_approval(approval)
        await self._recorder.audit(
            AuditKind.APPROVAL_REQUESTED,
            run,
            step_id=planned.step_id,
            reason=reason,
            details={
                "approval_id": approval.approval_id,
                "action": planned.action,
                "digest": approval_digest(approval.action, approval.params),
                "expires_at": approval.expires_at.isoformat(),
                "approve_url": self.approve_url(approval.approval_id),
            },
        )
        if self._notifier is not None:
            self._track(
                self._notifier.notify(approval, run, self.approve_url(approval.approval_id)),
                f"responder-notice:{approval.approval_id}",
            )
        return approval

    async def decide(self, approval_id: str, decision: Decision) -> Approval:
        """Approve or reject once; raises ApprovalError (404, 403, 409) otherwise."""
        current = await self._approval_store.get_approval(approval_id)
        if current is None:
            raise ApprovalError(404, f"no approval {approval_id!r}; list them at /v1/approvals")
        if current.state is not ApprovalState.PENDING:
            raise ApprovalError(409, f"approval is already {current.state.value}", current)
        now = self._clock.now()
        if current.expires_at <= now:
            await self._close(current, ApprovalState.EXPIRED, None)
            raise ApprovalError(409, "approval expired before the decision", current)
        allowed = current.approvers
        if allowed and decision.approver not in allowed and not (decision.groups & set(allowed)):
            raise ApprovalError(
                403,
                f"{decision.approver} may not decide this step; allowed: {', '.join(allowed)}",
                current,
            )
        state = ApprovalState.APPROVED if decision.approve else ApprovalState.REJECTED
        decided = current.model_copy(
            update={
                "state": state,
                "decided_by": decision.approver,
                "decided_at": now,
                "comment": decision.comment,
                "source_ip": decision.source_ip,
            }
        )
        if not await self._approval_store.replace_approval_if(decided, ApprovalState.PENDING):
            latest = await self._approval_store.get_approval(approval_id)
            raise ApprovalError(409, "another decision came first", latest)
        run = await self._run_store.get_run(current.run_id)
        kind = AuditKind.APPROVAL_GRANTED if decision.approve else AuditKind.APPROVAL_REJECTED
        await self._recorder.audit(
            kind,
            run,
            step_id=current.step_id,
            actor=decision.approver,
            reason=decision.comment,
            details={
                "approval_id": approval_id,
                "digest": approval_digest(current.action, current.params),
                "source_ip": decision.source_ip or "",
            },
        )
        self._follow_up(decided, run)
        self._resume_later(decided)
        return decided

    async def expire_due(self) -> int:
        """Expire pending approvals past their time; their steps are skipped, runs go on."""
        expired = 0
        for approval in await self._approval_store.expired_approvals(self._clock.now(), 50):
            if await self._close(approval, ApprovalState.EXPIRED, None):
                expired += 1
        return expired

    async def cancel_for_run(self, run_id: str) -> None:
        """A resolved alert cancelled the run: its pending approvals are cancelled too."""
        for approval in await self._approval_store.list_approvals(
            ApprovalState.PENDING, run_id=run_id
        ):
            update = {
                "state": ApprovalState.CANCELLED,
                "decided_at": self._clock.now(),
                "comment": SkipReason.ALERT_RESOLVED.value,
            }
            done = approval.model_copy(update=update)
            if await self._approval_store.replace_approval_if(done, ApprovalState.PENDING):
                self._follow_up(done, await self._run_store.get_run(run_id))

    async def _close(self, approval: Approval, state: ApprovalState, actor: str | None) -> bool:
        done = approval.model_copy(
            update={"state": state, "decided_at": self._clock.now(), "decided_by": actor}
        )
        if not await self._approval_store.replace_approval_if(done, ApprovalState.PENDING):
            return False
        run = await self._run_store.get_run(approval.run_id)
        await self._recorder.audit(
            AuditKind.APPROVAL_EXPIRED,
            run,
            step_id=approval.step_id,
            details={"approval_id": approval.approval_id},
        )
        self._follow_up(done, run)
        self._resume_later(done)
        return True

    def _follow_up(self, approval: Approval, run: RunRecord | None) -> None:
        """Tell the notice sinks how the approval ended (never waits for them)."""
        if self._notifier is None or run is None:
            return
        self._track(
            self._notifier.follow_up(approval, run, self.run_url(run.run_id)),
            f"responder-notice:{approval.approval_id}:{approval.state.value}",
        )

    def _resume_later(self, approval: Approval) -> None:
        self._track(self._resume(approval), f"responder-resume:{approval.run_id}")

    def _track(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        """Run `work` in a named task that shutdown waits for."""
        task = asyncio.create_task(work, name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _resume(self, approval: Approval) -> None:
        """Continue the run: the approved step runs; a rejected or expired one is skipped."""
        try:
            await self._continue(approval)
        except Exception:
            log.exception("resume_failed", run_id=approval.run_id)

    async def _continue(self, approval: Approval) -> None:
        run = await self._run_store.get_run(approval.run_id)
        if run is None or run.state is not RunState.WAITING_APPROVAL:
            return  # a resolution cancelled it, or another replica resumed it
        resumed: Claimed | Stale | None = await self._resumer.resume(run, approval)
        if isinstance(resumed, Stale):  # not what was approved: ask again, like the first time
            await self.request(resumed.run, resumed.planned, resumed.params, resumed.reason)
        elif resumed is not None:
            await self._resumer.execute(resumed)

    async def close(self, grace_seconds: float) -> None:
        """Let resumed runs finish for `grace_seconds`, then cancel them."""
        if self._running:
            _, pending = await asyncio.wait(list(self._running), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
