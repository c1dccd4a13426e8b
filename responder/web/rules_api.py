"""`GET /v1/rules`: the active rule set, its version (digest) and when it was loaded."""

from __future__ import annotations

from aiohttp import web

from responder.web import keys
from responder.web.auth import operator_ok
from responder.web.problems import problem


async def list_rules(request: web.Request) -> web.StreamResponse:
    """Every active rule as loaded (with its file:line), newest snapshot only."""
    if not operator_ok(request, request.app[keys.SETTINGS], request.app[keys.APPROVERS]):
        return problem(
            401,
            "Unauthorized",
            "send Authorization: Bearer <reader or approver token>",
            slug="unauthorized",
        )
    snapshot = request.app[keys.RULEBOOK].current
    return web.json_response(
        {
            "digest": snapshot.digest,
            "loaded_at": snapshot.loaded_at.isoformat(),
            "rules": [
                {
                    **loaded.rule.model_dump(mode="json", by_alias=True),
                    "location": str(loaded.location),
                }
                for loaded in snapshot.rules
            ],
        }
    )
