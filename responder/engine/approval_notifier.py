"""Sends the approval notice, and its follow-up when the approval ends, to every configured
sink; a failing sink never fails anything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from responder.actions.base import ActionContext
from responder.actions.catalog import PolicyCatalog
from responder.core.approval_notices import follow_up_params, sink_params
from responder.errors import ResponderError
from responder.models.approvals import Approval
from responder.models.runs import RunRecord

log = structlog.get_logger("responder.engine")

SINK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Sink:
    """One configured notify action and its fixed params (e.g. which webhook env var)."""

    action: str
    params: dict[str, Any]


class ApprovalNotifier:
    """Runs each sink's notify action with the notice; logs, never raises."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        catalog: PolicyCatalog,
        contexts: Callable[[str, str, str], ActionContext],
    ) -> None:
        self._sinks = tuple(sinks)
        self._catalog = catalog
        self._contexts = contexts

    async def notify(self, approval: Approval, run: RunRecord, approve_url: str) -> int:
        """Send the request to every sink concurrently; returns how many succeeded."""
        results = await asyncio.gather(
            *(
                self._send(
                    s,
                    sink_params(s.action, s.params, approval, run, approve_url),
                    approval,
                    run,
                    "request",
                )
                for s in self._sinks
            )
        )
        return sum(results)

    async def follow_up(self, approval: Approval, run: RunRecord, run_url: str) -> int:
        """Tell every sink how the approval ended (decided, expired, cancelled), so the request
        it received never stays the last word; returns how many succeeded."""
        results = await asyncio.gather(
            *(
                self._send(
                    s,
                    follow_up_params(s.action, s.params, approval, run, run_url),
                    approval,
                    run,
                    approval.state.value,
                )
                for s in self._sinks
            )
        )
        return sum(results)

    async def _send(
        self, sink: Sink, params: dict[str, Any], approval: Approval, run: RunRecord, notice: str
    ) -> bool:
        try:
            model = self._catalog.model(sink.action, params)
            spec = self._catalog.spec(sink.action)
            # its own step id per notice: an idempotent receiver must not drop the follow-up
            where = f"approval:{approval.step_id}" + ("" if notice == "request" else f":{notice}")
            context = self._contexts(run.run_id, run.rule_id, where)
            async with asyncio.timeout(SINK_TIMEOUT_SECONDS):
                result = await spec.run(model, context)
        except (ResponderError, TimeoutError) as exc:
            log.warning(
                "approval_notice_failed",
                sink=sink.action,
                notice=notice,
                run_id=run.run_id,
                approval_id=approval.approval_id,
                error=str(exc),
            )
            return False
        log.info(
            "approval_notice_sent",
            sink=sink.action,
            notice=notice,
            ok=result.ok,
            run_id=run.run_id,
            approval_id=approval.approval_id,
            summary=result.summary,
        )
        return result.ok
