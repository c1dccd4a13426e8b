"""What several action families share for outgoing calls: parameters, secrets, replies, results.

- parameters from a rule: header maps (`safe_headers`), methods, status codes, plain JSON;
- credentials: an `*_env` parameter names an environment variable (`check_env_name`: never a
  `RESPONDER_*` one), read only when the step runs (`auth_headers`) and never shown
  (`describe_headers`);
- replies: a numeric `Retry-After` (`retry_after`), a body as strict JSON (`parse_json_body`)
  and dotted-path checks of it (`JsonCheck`, `value_at`, `json_equal`);
- results: `fitted`, the step result with its output redacted and cut to the output limit.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.base import ActionContext, StepResult
from responder.core.redaction import REDACTED, redact, truncate
from responder.errors import PermanentError
from responder.models.http import HttpResponse

RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
DEFAULT_RETRY_AFTER = 2.0
MAX_RETRY_AFTER = 60.0

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_JSON_PATH = re.compile(r"^[A-Za-z0-9_@$:-]{1,128}(\.[A-Za-z0-9_@$:-]{1,128}){0,31}$")
_MAX_JSON_DEPTH = 64  # deeper responses stay text: later redaction and truncation recurse


def check_env_name(name: str) -> str:
    """`name` if it may name a secret's environment variable; ValueError saying why not."""
    if not _ENV_NAME.match(name):
        raise ValueError(
            f"invalid environment variable name {name[:64]!r}; use letters, digits and '_' "
            "([A-Za-z_][A-Za-z0-9_]*)"
        )
    if name.upper().startswith("RESPONDER_"):
        raise ValueError(
            f"{name!r}: RESPONDER_* variables hold responder's own settings and secrets, which "
            "are never sent"
        )
    return name


def auth_headers(env_name: str | None) -> dict[str, str]:
    """`{"Authorization": <value of env_name>}`, or {} without a name.

    Raises PermanentError (never showing the value) when the variable is unset, empty or
    holds control characters.
    """
    if env_name is None:
        return {}
    value = os.environ.get(env_name, "")
    if not value.strip():
        raise PermanentError(
            f"environment variable {env_name} (auth_header_env) is unset or empty; set it to "
            "the whole Authorization header value (e.g. from a Secret) in responder's Deployment"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise PermanentError(
            f"environment variable {env_name} (auth_header_env) contains control characters; "
            "store the header value on one line"
        )
    return {"Authorization": value}


def describe_headers(env_name: str | None) -> dict[str, str]:
    """The headers as describe() shows them: the Authorization value redacted."""
    return {"Authorization": f"{REDACTED} (from ${env_name})"} if env_name else {}


def safe_headers(
    value: dict[str, str], reserved: frozenset[str] = RESERVED_HEADERS
) -> dict[str, str]:
    """Validate request headers from a rule: token names, none `reserved`, no CR/LF."""
    for name, item in value.items():
        if not _TOKEN.match(name):
            raise ValueError(f"invalid header name {name[:64]!r}")
        if name.lower() in reserved:
            raise ValueError(f"header {name!r} is set by responder and may not be given")
        if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in item):
            raise ValueError(f"header {name!r} contains control characters (CR/LF)")
    return value


def upper_method(value: Any) -> Any:
    """An HTTP method from a rule in upper case (`post` -> `POST`), anything else as given."""
    return value.upper() if isinstance(value, str) else value


def status_codes(value: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """Validate `expect_status` codes from a rule: each between 100 and 599."""
    if value is not None and any(not 100 <= code <= 599 for code in value):
        raise ValueError("status codes must be between 100 and 599")
    return value


def plain_json(value: Any) -> Any:
    """`value` if it is plain JSON (no NaN or infinities, dates or objects); ValueError if not."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not plain JSON ({exc})") from None
    return value


def retry_after(response: HttpResponse, default: float = DEFAULT_RETRY_AFTER) -> float:
    """A numeric `Retry-After` in seconds (at most 60), else `default`."""
    raw = response.headers.get("retry-after", "").strip()
    return min(float(raw), MAX_RETRY_AFTER) if raw.isdigit() else default


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _shallow(value: Any, limit: int = _MAX_JSON_DEPTH) -> bool:
    """Whether `value` nests at most `limit` containers deep (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def parse_json_body(text: str) -> Any:
    """The body as JSON, or None when it is not (strict) JSON or nests too deep."""
    if not text.strip():
        return None
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return parsed if _shallow(parsed) else None


class JsonCheck(BaseModel):
    """One `expect_json` entry: the value at `path` must equal `equals`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(max_length=512)
    equals: Any

    @field_validator("path")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not _JSON_PATH.match(value):
            raise ValueError("write a dotted path like status or components.db.status")
        return value


def value_at(document: Any, path: str) -> tuple[bool, Any]:
    """(found, value) at a dotted `path` of a parsed JSON document (see `JsonCheck`).

    The path walks objects by key and arrays by index.
    """
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON means it: booleans are not numbers, 1 equals 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    return type(left) is type(right) and left == right


def fitted(
    ctx: ActionContext,
    ok: bool,
    summary: str,
    output: dict[str, Any],
    verified: bool | None = None,
    sent: dict[str, Any] | None = None,
) -> StepResult:
    """The step result with its output redacted and cut to the output limit (`sent`: the
    run-time values the request carried, see `StepResult.sent`)."""
    shown: dict[str, Any] = truncate(redact(output), ctx.output_max_bytes)
    values = redact(sent) if sent is not None else None
    return StepResult(ok=ok, summary=summary, output=shown, verified=verified, sent=values)
