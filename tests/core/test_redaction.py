"""Redaction of secrets and truncation of values, as tables."""

from __future__ import annotations

import time
from typing import Any

import pytest

from responder.core.redaction import (
    REDACTED,
    is_sensitive_key,
    json_size,
    redact,
    redact_text,
    truncate,
    truncate_text,
)


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "Set-Cookie",
        "password",
        "DB_PASSWORD",
        "passwd",
        "passphrase",
        "secret",
        "client_secret",
        "X-Webhook-Secret",
        "token",
        "access_token",
        "X-Auth-Token",
        "api_key",
        "apiKey",
        "X-API-Key",
        "access_key",
        "aws_access_key_id",
        "private_key",
        "privateKey",
        "routing_key",
        "credentials",
        "Sentry-Hook-Signature",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["key", "dedup_key", "guard_key", "url", "method", "status", "content-type", 42]
)
def test_ordinary_keys(key: object) -> None:
    assert not is_sensitive_key(key)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer abcdefgh.ijk-lmn", f"Bearer {REDACTED}"),
        ("auth: basic dXNlcjpwYXNz", f"auth: basic {REDACTED}"),
        ("Basic check passed", "Basic check passed"),
        ("got Bearer eyJhbGciOi.x.y back", f"got Bearer {REDACTED} back"),
        ("https://user:hunter2@db.svc:5432/x", f"https://user:{REDACTED}@db.svc:5432/x"),
        ("postgres://app:p%40ss@db/app", f"postgres://app:{REDACTED}@db/app"),
        ("https://user@host/x", "https://user@host/x"),
        ("http://h/x?token=abc&page=2", f"http://h/x?token={REDACTED}&page=2"),
        ("password=hunter2 user=bob", f"password={REDACTED} user=bob"),
        ("a=b", "a=b"),
        (
            '{"access_token": "abc\\"d", "user": "u"}',
            f'{{"access_token": "{REDACTED}", "user": "u"}}',
        ),
        ('{"token":"x","n":1}', f'{{"token":"{REDACTED}","n":1}}'),
        (
            "https://hooks.slack.com/services/T000/B000/XXXX",
            f"https://hooks.slack.com/services/{REDACTED}",
        ),
        ("nothing to see", "nothing to see"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_structures_recursively_without_mutating() -> None:
    value: dict[str, Any] = {
        "headers": {"Authorization": "Bearer abcdefghijkl", "Accept": "application/json"},
        "items": [{"password": "p", "name": "n"}, ("Token", {"apiKey": 1})],
        "nested": {"credentials": {"user": "u", "pass": "p"}},
        "note": "see https://u:pw@host/",
        "token": None,
        "dedup_key": "alertmanager:abc",
        "count": 3,
    }
    original = repr(value)
    assert redact(value) == {
        "headers": {"Authorization": REDACTED, "Accept": "application/json"},
        "items": [{"password": REDACTED, "name": "n"}, ("Token", {"apiKey": REDACTED})],
        "nested": {"credentials": REDACTED},
        "note": f"see https://u:{REDACTED}@host/",
        "token": None,
        "dedup_key": "alertmanager:abc",
        "count": 3,
    }
    assert repr(value) == original


@pytest.mark.parametrize("scalar", [None, 1, 2.5, True, b"Bearer abcdefghijk"])
def test_redact_leaves_other_values(scalar: object) -> None:
    assert redact(scalar) == scalar


@pytest.mark.parametrize(
    ("text", "cap", "expected"),
    [
        ("short", 100, "short"),
        ("x" * 100, 100, "x" * 100),
        ("x" * 101, 100, "x" * 76 + "…[truncated 25 bytes]"),
        ("x" * 1000, 10, "…[truncated 1000 bytes]"),
    ],
)
def test_truncate_text(text: str, cap: int, expected: str) -> None:
    assert truncate_text(text, cap) == expected


def test_truncate_text_never_splits_characters() -> None:
    result = truncate_text("é" * 100, 50)
    assert len(result.encode("utf-8")) <= 50
    assert result.startswith("é" * 13)
    assert result.endswith("…[truncated 174 bytes]")


def test_truncate_string_value() -> None:
    assert truncate("y" * 500, 100).endswith("…[truncated 424 bytes]")


def test_truncate_keeps_small_structures() -> None:
    value = {"status": 200, "body": "ok", "items": [1, 2, 3]}
    assert truncate(value, 1000) is value


def test_truncate_caps_long_strings_and_keeps_short_fields() -> None:
    value = {"status": 200, "body": "b" * 10_000, "note": "n" * 3_000, "ok": True}
    result = truncate(value, 2048)
    assert json_size(result) <= 2048
    assert result["status"] == 200
    assert result["ok"] is True
    assert "truncated" in result["body"]
    assert "truncated" in result["note"]


@pytest.mark.parametrize(
    "value",
    [
        {"items": list(range(5000))},
        [{"k": i, "v": "z" * 40} for i in range(2000)],
        {f"key{i}": i for i in range(3000)},
        {"a": {"b": {"c": ["x" * 50] * 1000}}},
    ],
)
def test_truncate_prunes_containers_to_fit(value: Any) -> None:
    result = truncate(value, 1024)
    assert json_size(result) <= 1024
    assert "truncated" in repr(result)
    assert type(result) is type(value)


def test_truncate_list_keeps_leading_items_and_says_how_many_were_dropped() -> None:
    result = truncate(list(range(1000)), 100)
    assert result[:3] == [0, 1, 2]
    assert isinstance(result[-1], str)
    assert result[-1].startswith("…[truncated ")
    assert result[-1].endswith(" more items]")


@pytest.mark.parametrize(
    "text", ["a" * 65536, "a." * 32768, '"' + "a" * 65536, "a:" * 32768, "ab://" * 13000]
)
def test_redact_text_is_linear_on_large_bodies(text: str) -> None:
    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 1.0


def test_truncate_shares_the_budget_between_a_long_string_and_many_items() -> None:
    value = {
        "status": 200,
        "body": "x" * 20_000,
        "json": {"items": [{"id": i, "state": "CLOSED"} for i in range(2000)]},
    }
    result = truncate(value, 2048)
    assert json_size(result) <= 2048
    assert result["status"] == 200
    assert result["body"].endswith("bytes]")
    assert result["json"]["items"][0] == {"id": 0, "state": "CLOSED"}
    assert result["json"]["items"][-1].endswith("more items]")


def test_truncate_is_fast_on_large_structures() -> None:
    started = time.perf_counter()
    result = truncate({"data": [{"id": i, "text": "t" * 100} for i in range(30_000)]}, 16_384)
    assert time.perf_counter() - started < 3.0
    assert json_size(result) <= 16_384
