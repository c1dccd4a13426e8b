"""Named targets as RESPONDER_POSTGRES_TARGETS and RESPONDER_REDIS_TARGETS give them: one JSON
object of names to connection strings, each name 1-64 characters."""

from __future__ import annotations

import json
from typing import Any

NAME_MAX = 64


def load_json_object(text: str, *, setting: str, example: str) -> dict[Any, Any]:
    """`text` (blank: none) as a JSON object; ValueError naming `setting` and showing an
    `example` value otherwise."""
    problem = f'{setting} must be a JSON object {{"name": "{example}"}}'
    try:
        loaded = json.loads(text) if text.strip() else {}
    except ValueError:
        raise ValueError(problem) from None
    if not isinstance(loaded, dict):
        raise ValueError(problem)
    return loaded


def check_name(kind: str, name: object) -> None:
    """Raise ValueError unless `name` is a string of 1-NAME_MAX characters."""
    if not isinstance(name, str) or not 0 < len(name) <= NAME_MAX:
        raise ValueError(f"{kind} target names must be 1-{NAME_MAX} characters")
