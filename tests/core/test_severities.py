"""Tables for the severity ladder: ranks, known levels and `>= warning`-style conditions."""

from __future__ import annotations

import pytest

from responder.core.severities import SeverityScale
from responder.models.rules import SeverityCondition
from responder.settings import DEFAULT_SEVERITY_LEVELS

SCALE = SeverityScale(DEFAULT_SEVERITY_LEVELS)


@pytest.mark.parametrize(
    ("name", "rank"),
    [
        ("warning", 30),
        ("WARNING", 30),
        (" Critical ", 70),
        ("P1", 70),
        ("sev1", 90),
        ("nope", None),
        ("", None),
        (None, None),
    ],
)
def test_rank(name: str | None, rank: int | None) -> None:
    assert SCALE.rank(name) == rank


@pytest.mark.parametrize(
    ("level", "known"), [("warning", True), ("Warn", True), ("p0", True), ("urgent", False)]
)
def test_known(level: str, known: bool) -> None:
    assert SCALE.known(level) is known


@pytest.mark.parametrize(
    ("condition", "severity", "expected"),
    [
        (">= warning", "warning", True),
        (">= warning", "critical", True),
        (">= warning", "info", False),
        (">= warning", "WARN", True),  # alias with the same rank, any case
        ("> warning", "warning", False),
        ("> warning", "error", True),
        ("<= warning", "info", True),
        ("<= warning", "critical", False),
        ("< warning", "warning", False),
        ("< warning", "debug", True),
        ("critical", "critical", True),  # bare level means ==
        ("critical", "page", True),  # same rank
        ("critical", "fatal", False),
        ("== critical", "p1", True),
        ("!= critical", "warning", True),
        ("!= critical", "critical", False),
        ("< P2", "p3", True),
        # missing or unknown alert severity: never satisfies an ordering or ==, always !=
        (">= debug", None, False),
        ("<= emergency", None, False),
        ("< warning", "bogus", False),
        ("== warning", None, False),
        ("!= warning", None, True),
        ("!= warning", "bogus", True),
    ],
)
def test_satisfies(condition: str, severity: str | None, expected: bool) -> None:
    assert SCALE.satisfies(SeverityCondition.parse(condition), severity) is expected


def test_unknown_condition_level_is_an_error_listing_the_known_levels() -> None:
    with pytest.raises(ValueError, match=r"unknown severity level 'urgent'.*warning \(30\)"):
        SCALE.satisfies(SeverityCondition.parse(">= urgent"), "critical")


def test_custom_ladder_is_case_insensitive_and_ordered() -> None:
    scale = SeverityScale({"Low": 1, "HIGH": 3, "medium": 2})
    assert scale.levels == ("low", "medium", "high")
    assert scale.satisfies(SeverityCondition.parse(">= Medium"), "High")
    assert not scale.known("warning")
    assert scale == SeverityScale({"low": 1, "medium": 2, "high": 3})


@pytest.mark.parametrize(
    "levels",
    [{"": 1}, {"a": 1, "A": 2}, {"a": "1"}, {"a": True}],
)
def test_invalid_ladders_are_refused(levels: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="severity level"):
        SeverityScale(levels)  # type: ignore[arg-type]
