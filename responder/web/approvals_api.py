"""`GET /v1/approvals`, `POST /v1/approvals/{id}/approve` and `.../reject`."""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from responder.core.resumes import approval_digest
from responder.engine.approvals import ApprovalError, Decision
from responder.models.approvals import ApprovalState
from responder.ports.store import ApprovalStore
from responder.web import keys
from responder.web.auth import operator_ok
from responder.web.identities import authenticate, proxy_identity
from responder.web.problems import problem


class DecisionBody(BaseModel):
    """The optional JSON body of a decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    comment: str | None = Field(default=None, max_length=2000)


async def list_approvals(request: web.Request) -> web.StreamResponse:
    """Approvals, newest first; `status` filters (pending, approved, ...)."""
    if not operator_ok(request, request.app[keys.SETTINGS], request.app[keys.APPROVERS]):
        return problem(
            401,
            "Unauthorized",
            "send Authorization: Bearer <reader or approver token>",
            slug="unauthorized",
        )
    status = request.query.get("status")
    try:
        state = ApprovalState(status) if status else None
        limit = int(request.query.get("limit", "100"))
        if not 1 <= limit <= 500:
            raise ValueError(limit)
    except ValueError:
        states = ", ".join(s.value for s in ApprovalState)
        return problem(
            400,
            "Invalid query",
            f"status is one of {states}; limit is a number from 1 to 500",
            slug="invalid-query",
        )
    approval_store: ApprovalStore = request.app[keys.STORE]
    found = await approval_store.list_approvals(state, limit=limit)
    desk = request.app[keys.DESK]
    return web.json_response(
        {
            "approvals": [
                {
                    **a.model_dump(mode="json"),
                    "approve_url": desk.approve_url(a.approval_id),
                    "digest": approval_digest(a.action, a.params),
                }
                for a in found
            ]
        }
    )


async def approve(request: web.Request) -> web.StreamResponse:
    """Approve a pending step (approver token only); 409 if already decided."""
    return await _decide(request, approve=True)


async def reject(request: web.Request) -> web.StreamResponse:
    """Reject a pending step (approver token only); 409 if already decided."""
    return await _decide(request, approve=False)


async def _decide(request: web.Request, *, approve: bool) -> web.StreamResponse:
    approver = authenticate(request, request.app[keys.APPROVERS]) or proxy_identity(
        request, request.app[keys.SETTINGS]
    )
    if approver is None:
        return problem(
            401,
            "Unauthorized",
            "deciding needs an approver token (RESPONDER_APPROVER_TOKENS); "
            "the webhook token cannot approve",
            slug="unauthorized",
        )
    raw = await request.read()
    try:
        body = DecisionBody.model_validate(json.loads(raw) if raw.strip() else {})
    except (ValueError, ValidationError) as exc:
        return problem(
            400,
            "Invalid body",
            f'send {{"comment": "..."}} or nothing ({exc})',
            slug="invalid-body",
        )
    decision = Decision(
        approve=approve,
        approver=approver.name,
        groups=approver.groups,
        comment=body.comment,
        source_ip=request.remote,
    )
    try:
        decided = await request.app[keys.DESK].decide(request.match_info["approval_id"], decision)
    except ApprovalError as exc:
        current = exc.approval.model_dump(mode="json") if exc.approval else None
        return problem(
            exc.status,
            {403: "Forbidden", 404: "Not found"}.get(exc.status, "Conflict"),
            str(exc),
            slug="approval-" + {403: "forbidden", 404: "not-found"}.get(exc.status, "conflict"),
            approval=current,
        )
    return web.json_response(decided.model_dump(mode="json"))
