"""Turns raw webhook bytes into validated payload models; every failure becomes a PayloadError.

Shared by the Alertmanager, Grafana and Sentry normalisers: JSON decoding (UTF-8, no NaN or
infinities, no lone surrogates, bounded nesting), pydantic validation with JSON-path error
locations, the body digest used as a delivery id, and the link filter.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, from_json

from responder.errors import PayloadError

ModelT = TypeVar("ModelT", bound=BaseModel)

_EXPECTED = {
    "model_type": "an object",
    "dict_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
}


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON body whose top level must be an object.

    Uses pydantic-core's parser: it refuses invalid UTF-8, lone surrogate escapes (which no
    store could write back) and nesting deeper than 200 levels, without raising anything but
    ValueError. Numbers too large for a float (`1e999`) are refused here too.
    """
    try:
        value = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise PayloadError(f"malformed JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise PayloadError(f"expected a JSON object at the top level, got {json_type(value)}")
    if may_overflow(body):
        _refuse_infinities(value)
    return value


_ZERO_DIGITS = bytes.maketrans(b"123456789E", b"000000000e")
_LONG_DIGITS = b"0" * 200
_BIG_EXPONENT = b"e000"  # after translation: e or E, an optional + (deleted), 3 digits
_NUMBER_BYTES = b"0.-"
_BEFORE_NUMBER = b":[, \t\r\n"


def may_overflow(body: bytes) -> bool:
    """Whether `body` may hold a JSON number too large for a float (which the parser turns
    into an infinity): one with a positive exponent of three digits or more (a negative
    one underflows to zero, which is harmless), or with 200 digits in a row (with an
    exponent below 100, a float needs more than 300 integer digits to overflow).

    Strings that merely look so (`"a 1e999"`) answer True too; hex ids (`"3e456"`) do not.
    False means the decoded document cannot hold an infinity, so the walk that looks for
    one (2-3 µs per alert) is skipped for nearly every real body. Byte translation and
    substring search: a regular expression was slower than the walk itself.
    """
    text = body.translate(_ZERO_DIGITS, b"+")  # every digit is 0, every E is e, no +
    if _LONG_DIGITS in text:
        return True
    found = text.find(_BIG_EXPONENT)
    while found != -1:
        start = found - 1
        while start >= 0 and text[start] in _NUMBER_BYTES:
            start -= 1
        if start < 0 or text[start] in _BEFORE_NUMBER:
            return True
        found = text.find(_BIG_EXPONENT, found + 1)
    return False


def _refuse_infinities(value: object) -> None:
    """Walk the decoded document (iteratively) and refuse any infinite number."""
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise PayloadError("malformed JSON: number out of range")


def validate(model: type[ModelT], document: dict[str, Any]) -> ModelT:
    """Validate `document` against `model`; the first problem becomes a PayloadError.

    `field` is the JSON path at fault, e.g. `alerts.0.labels` (keys as sent, indexes as numbers).
    """
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        path = ".".join(str(part) for part in first["loc"])
        message = describe(first)
        if len(errors) > 1:
            message += f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise PayloadError(message, field=path or None) from exc


def describe(error: ErrorDetails) -> str:
    """Say what was expected, and what JSON type arrived instead (never echo the value)."""
    kind = error["type"]
    if kind == "missing":
        return "expected a value: this field is required"
    got = f" (got {json_type(error['input'])})"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}{got}"
    if kind == "literal_error":
        return f"expected {error.get('ctx', {}).get('expected', 'one of the allowed values')}{got}"
    message = error["msg"]
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    if message.startswith("Input should be "):
        return "expected " + message.removeprefix("Input should be ") + got
    return message


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of the exact body: the delivery id when the sender gives none.

    Alertmanager retries are byte-identical, so a retry gets the same id.
    """
    return hashlib.sha256(body).hexdigest()


def http_link(url: str | None) -> str | None:
    """`url` when it is a non-empty http(s) URL; anything else (`javascript:`...) is dropped."""
    if url and url.lower().startswith(("http://", "https://")):
        return url
    return None


def first_text(*values: str | None) -> str | None:
    """The first non-empty string among `values`."""
    for value in values:
        if value:
            return value
    return None
