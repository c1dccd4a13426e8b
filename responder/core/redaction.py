"""Redaction of secrets and size capping of values before they are logged or stored (pure).

`redact` replaces the value of every mapping key that looks sensitive with "[REDACTED]",
recursively through dicts, lists and tuples. A key is sensitive when, lower-cased and with
`-`, `_`, `.` and spaces removed, it contains one of `SENSITIVE_KEY_PARTS`:

    authorization  (Authorization, Proxy-Authorization)
    cookie         (Cookie, Set-Cookie)
    passw          (password, passwd, db_password)
    passphrase
    secret         (secret, client_secret, X-Webhook-Secret)
    token          (token, access_token, X-Auth-Token)
    apikey         (api_key, apikey, X-API-Key)
    accesskey      (access_key, aws_access_key_id)
    privatekey     (private_key)
    routingkey     (routing_key: the PagerDuty integration key)
    credential     (credentials)
    signature      (Sentry-Hook-Signature, X-Hub-Signature-256)

Plain `key` is deliberately not sensitive (`dedup_key`, guard keys are not secrets).
Inside strings it also redacts:
- `Bearer <credential>` and `Basic <credential>` (credentials of 8+ characters, so that prose
  like "Basic check" survives);
- the password of URL userinfo (`https://user:[REDACTED]@host`);
- `name=value` pairs and JSON text `"name": "value"` whose name is sensitive (`?token=...`,
  a response body kept as text);
- Slack incoming-webhook paths (the URL is the secret).

`truncate` caps strings (appending "…[truncated N bytes]") and the JSON size of a structure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
SENSITIVE_KEY_PARTS: tuple[str, ...] = (
    "authorization",
    "cookie",
    "passw",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "routingkey",
    "credential",
    "signature",
)

_KEY_NOISE = re.compile(r"[-_. ]")
# Patterns start only at the first character of a name (lookbehinds) and bound name lengths,
# so that scanning a 16 KiB response body stays linear.
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]{8,}", re.I)
_URL_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}://[^/\s:@?#]*):[^/\s@?#]*@"
)
_NAME_VALUE = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]{1,64})=([^&\s#;,\"']+)")
_JSON_PAIR = re.compile(r'"([A-Za-z0-9_.-]+)"(\s*:\s*)"(?:[^"\\]|\\.)*"')
_SLACK_HOOK = re.compile(r"(hooks\.slack\.com/services/)[A-Za-z0-9/_-]+")
_MIN_STRING_CAP = 16


def is_sensitive_key(key: object) -> bool:
    """Whether a mapping key (header, field or parameter name) names a secret."""
    name = _KEY_NOISE.sub("", str(key).lower())
    return any(part in name for part in SENSITIVE_KEY_PARTS)


def _redact_pair(found: re.Match[str]) -> str:
    name = found.group(1)
    return f"{name}={REDACTED}" if is_sensitive_key(name) else found.group(0)


def _redact_json_pair(found: re.Match[str]) -> str:
    name = found.group(1)
    return f'"{name}"{found.group(2)}"{REDACTED}"' if is_sensitive_key(name) else found.group(0)


def redact_text(text: str) -> str:
    """Redact credentials that appear inside free text (headers, URLs, messages)."""
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    text = _NAME_VALUE.sub(_redact_pair, text)
    text = _JSON_PAIR.sub(_redact_json_pair, text)
    return _SLACK_HOOK.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def redact(value: Any) -> Any:
    """A copy of `value` with secrets replaced by "[REDACTED]" (the input is not modified)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_sensitive_key(key) and item is not None else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact(item) for item in value)
    return value


def json_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON form of `value` (non-JSON values count as `str()`)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8"))


def _marker(dropped: int) -> str:
    return f"…[truncated {dropped} bytes]"


def truncate_text(text: str, max_bytes: int) -> str:
    """`text` if it fits in `max_bytes` of UTF-8, else a prefix plus a marker, within the cap.

    When the cap is smaller than the marker itself, the marker alone is returned.
    """
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    keep = max(0, max_bytes - len(_marker(len(raw)).encode("utf-8")))
    prefix = raw[:keep].decode("utf-8", errors="ignore")  # never split a character
    return prefix + _marker(len(raw) - len(prefix.encode("utf-8")))


def _cap_strings(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return truncate_text(value, cap)
    if isinstance(value, Mapping):
        return {key: _cap_strings(item, cap) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cap_strings(item, cap) for item in value]
    return value


def _prune_mapping(value: Mapping[Any, Any], budget: int) -> dict[Any, Any]:
    kept: dict[Any, Any] = {}
    used = 2  # {}
    total = len(value)
    for index, (key, item) in enumerate(value.items()):
        marker = {"…": f"[truncated {total - index} more keys]"}
        marker_cost = json_size(marker) - 2 + (1 if kept else 0)
        key_cost = json_size({key: None}) - 6 + 1  # `"key":` and a comma
        room = budget - used - marker_cost - key_cost
        fitted = _prune(item, room) if room > 0 else None
        cost = json_size(fitted)
        if room <= 0 or cost > room:
            return {**kept, **marker}
        kept[key] = fitted
        used += key_cost + cost
    return kept


def _prune_sequence(value: list[Any] | tuple[Any, ...], budget: int) -> list[Any]:
    kept: list[Any] = []
    used = 2  # []
    for index, item in enumerate(value):
        tail = f"…[truncated {len(value) - index} more items]"
        tail_cost = json_size(tail) + (1 if kept else 0)
        room = budget - used - tail_cost - 1  # a comma before the tail
        fitted = _prune(item, room) if room > 0 else None
        cost = json_size(fitted)
        if room <= 0 or cost > room:
            return [*kept, tail]
        kept.append(fitted)
        used += cost + 1
    return kept


def _prune(value: Any, budget: int) -> Any:
    """Greedily keep leading items of containers so that the JSON fits in `budget` bytes.

    Sizes are accounted incrementally, so the cost is linear in what is kept.
    """
    if json_size(value) <= budget:
        return value
    if isinstance(value, str):
        return truncate_text(value, max(budget - 2, 0))  # 2 bytes for the quotes
    if isinstance(value, Mapping):
        return _prune_mapping(value, budget)
    if isinstance(value, list | tuple):
        return _prune_sequence(value, budget)
    return value


def truncate(value: Any, max_bytes: int) -> Any:
    """Cap `value` so that its compact JSON form is about `max_bytes` bytes at most.

    Strings are cut with a "…[truncated N bytes]" marker. For structures, every string is
    first capped at the largest common length that makes the whole fit. When even short
    strings do not fit (too many items), strings are capped at an eighth of `max_bytes` and
    containers keep their leading items, ending with a marker item saying how many were cut.
    A cap smaller than a marker may be exceeded by that marker.
    """
    if isinstance(value, str):
        return truncate_text(value, max_bytes)
    if json_size(value) <= max_bytes:
        return value
    smallest = _cap_strings(value, _MIN_STRING_CAP)
    if json_size(smallest) > max_bytes:  # too many items: strings alone cannot make it fit
        return _prune(_cap_strings(value, max(_MIN_STRING_CAP, max_bytes // 8)), max_bytes)
    low, high, best = _MIN_STRING_CAP + 1, max_bytes, smallest
    while low <= high:  # largest per-string cap under which the structure fits
        mid = (low + high) // 2
        capped = _cap_strings(value, mid)
        if json_size(capped) <= max_bytes:
            best, low = capped, mid + 1
        else:
            high = mid - 1
    return best
