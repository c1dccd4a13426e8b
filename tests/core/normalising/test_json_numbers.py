"""Numbers too large for a float are refused, and the pre-check that skips the document walk
for nearly every body never lets one through."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json

from responder.core.normalising.bodies import decode_object, may_overflow
from responder.errors import PayloadError


def _holds_infinity(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_infinity(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_infinity(item) for item in value)
    return isinstance(value, float) and math.isinf(value)


json_numbers = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    st.sampled_from(["", "-"]),
    st.one_of(
        st.just("0"),
        st.from_regex(r"[1-9][0-9]{0,12}", fullmatch=True),
        st.integers(150, 420).map(lambda n: "9" * n),
    ),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,5}", fullmatch=True)),
    st.one_of(
        st.just(""),
        st.from_regex(r"[eE][+-]?0{0,3}[0-9]{1,4}", fullmatch=True),
    ),
)
lookalike_strings = st.from_regex(r"[a-f0-9:, +eE.-]{0,24}", fullmatch=True)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(json_numbers, lookalike_strings.map(lambda s: f'"{s}"')), max_size=6),
    st.sampled_from(["", " ", "\n", "\t", "  "]),
)
def test_a_body_with_an_infinite_number_is_never_waved_through(
    items: list[str], space: str
) -> None:
    body = ("{" + space + '"a":' + space + "[" + ("," + space).join(items) + "]}").encode()
    decoded = from_json(body, allow_inf_nan=False)
    if _holds_infinity(decoded):
        assert may_overflow(body)
        with pytest.raises(PayloadError, match="number out of range"):
            decode_object(body)
    else:
        assert decode_object(body) == decoded


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1e999}',
        b'{"a":[0, -2.5E+308]}',
        b'{"a":\n2e0400}',
        b'{"a": 1' + b"0" * 320 + b".5}",
        b'{"a": 9' + b"9" * 250 + b"e60}",
    ],
)
def test_overflowing_numbers_are_caught(body: bytes) -> None:
    assert may_overflow(body)
    with pytest.raises(PayloadError, match="number out of range"):
        decode_object(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"fingerprint": "3e456a0e0001"}',
        b'{"a": 1e99, "b": 1e-999, "c": 123456789012345678901234567890}',
        b'{"url": "http://x/graph?g0.expr=disk_free_bytes+%3C+1e9"}',
    ],
)
def test_ordinary_bodies_skip_the_walk(body: bytes) -> None:
    assert not may_overflow(body)
    assert decode_object(body) == from_json(body)
