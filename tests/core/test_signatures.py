"""Sentry body signatures and bearer tokens, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from responder.core.signatures import bearer_matches, verify_sentry_signature
from tests.support.conformance import all_payloads

SECRET = "test-client-secret"
VECTOR_BODY = (
    b'{"action":"created","installation":{"uuid":"eac5a0ae-60ec-418f-9318-46dc5e7e52ec"},'
    b'"data":{"comment":"adding a comment","project_slug":"sentry","comment_id":1234,'
    b'"issue_id":100,"timestamp":"2022-03-02T21:51:44.118160Z"},'
    b'"actor":{"type":"user","id":1,"name":"colleen"}}'
)
VECTOR_DIGEST = "e4f2518997129ac3af1c416e75cb3f86ae009cbb35ced4437e009fcd533f3e32"


def test_readme_test_vector() -> None:
    assert verify_sentry_signature(VECTOR_BODY, SECRET, VECTOR_DIGEST)


@pytest.mark.parametrize(
    "signature",
    [VECTOR_DIGEST.upper(), f"  {VECTOR_DIGEST}\n"],
    ids=["uppercase-hex", "whitespace"],
)
def test_harmless_variations_of_the_signature_match(signature: str) -> None:
    assert verify_sentry_signature(VECTOR_BODY, SECRET, signature)


@pytest.mark.parametrize(
    ("body", "secret", "signature"),
    [
        (VECTOR_BODY, "other-secret", VECTOR_DIGEST),
        (VECTOR_BODY + b"\n", SECRET, VECTOR_DIGEST),
        (VECTOR_BODY.replace(b"colleen", b"collEen"), SECRET, VECTOR_DIGEST),
        (VECTOR_BODY, SECRET, VECTOR_DIGEST[:-1]),
        (VECTOR_BODY, SECRET, VECTOR_DIGEST + "0"),
        (VECTOR_BODY, SECRET, "sha256=" + VECTOR_DIGEST),
        (VECTOR_BODY, SECRET, "é" * 64),
        (VECTOR_BODY, SECRET, "\ud800" * 64),
        (VECTOR_BODY, SECRET, ""),
        (VECTOR_BODY, SECRET, None),
        (VECTOR_BODY, "", hmac.new(b"", VECTOR_BODY, hashlib.sha256).hexdigest()),
    ],
    ids=[
        "wrong-secret",
        "trailing-newline",
        "changed-byte",
        "short",
        "long",
        "prefixed",
        "non-ascii",
        "surrogates",
        "empty",
        "missing",
        "empty-secret-never-matches",
    ],
)
def test_wrong_signatures_do_not_match(body: bytes, secret: str, signature: str | None) -> None:
    assert verify_sentry_signature(body, secret, signature) is False


def test_signature_is_over_raw_bytes_not_reserialised_json() -> None:
    raw = next(p for p in all_payloads("sentry") if "issue-created" in p.name).read_bytes()
    reserialised = json.dumps(json.loads(raw)).encode()
    assert raw != reserialised
    signed = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert verify_sentry_signature(raw, SECRET, signed)
    assert not verify_sentry_signature(reserialised, SECRET, signed)


@pytest.mark.parametrize(
    "header",
    ["Bearer s3cret", "bearer s3cret", "BEARER s3cret", "  Bearer   s3cret  ", "Bearer\ts3cret"],
)
def test_bearer_token_matches(header: str) -> None:
    assert bearer_matches(header, "s3cret")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "s3cret",
        "Bearer",
        "Bearer ",
        "Bearer s3cre",
        "Bearer s3crett",
        "Bearer S3CRET",
        "Basic s3cret",
        "Token s3cret",
        "Bearers3cret",
        "Bearer s3cret extra",
        "Bearer é",
        "Bearer \ud800",
    ],
)
def test_bearer_token_mismatches(header: str | None) -> None:
    assert bearer_matches(header, "s3cret") is False


@pytest.mark.parametrize("header", ["Bearer ", "Bearer", "", None])
def test_empty_configured_token_never_matches(header: str | None) -> None:
    assert bearer_matches(header, "") is False
