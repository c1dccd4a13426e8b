"""The configurable severity ladder: level names to ranks, and `>= warning`-style comparisons.

Pure: a `SeverityScale` is built once from a `Mapping[str, int]` (usually
`settings.rules.severity_levels`) and answers questions about level names. Names are
case-insensitive; several names may share a rank (`warn` and `warning`), and comparisons are
on ranks, so `== warning` also holds for an alert whose severity is `warn`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from types import MappingProxyType

from responder.models.rules import SeverityCondition, SeverityOp


class SeverityScale:
    """An immutable ladder of severity names and their ranks (higher is more severe)."""

    __slots__ = ("_ranks",)

    def __init__(self, levels: Mapping[str, int]) -> None:
        """Build from `name -> rank`; names are folded to lower case.

        Raises ValueError for an empty name, a rank that is not an int, or two spellings of
        one name (differing only in case) with different ranks.
        """
        ranks: dict[str, int] = {}
        for name, rank in levels.items():
            key = name.strip().lower()
            if not key:
                raise ValueError("severity level names must not be empty")
            if isinstance(rank, bool) or not isinstance(rank, int):
                raise ValueError(f"severity level {name!r} must have an integer rank, not {rank!r}")
            if key in ranks and ranks[key] != rank:
                raise ValueError(
                    f"severity level {name!r} is defined twice with different ranks "
                    f"({ranks[key]} and {rank}); names are case-insensitive"
                )
            ranks[key] = rank
        self._ranks: Mapping[str, int] = MappingProxyType(ranks)

    @property
    def levels(self) -> tuple[str, ...]:
        """Every known level name, lowest rank first (ties in name order)."""
        return tuple(sorted(self._ranks, key=lambda name: (self._ranks[name], name)))

    def rank(self, name: str | None) -> int | None:
        """The rank of `name` (case-insensitive), or None when missing or unknown."""
        if name is None:
            return None
        return self._ranks.get(name.strip().lower())

    def known(self, level: str) -> bool:
        """Whether `level` names a rung of this ladder (case-insensitive)."""
        return self.rank(level) is not None

    def describe(self) -> str:
        """The known levels as `name (rank)`, lowest first, for error messages."""
        return ", ".join(f"{name} ({self._ranks[name]})" for name in self.levels)

    def satisfies(self, condition: SeverityCondition, severity: str | None) -> bool:
        """Whether an alert with `severity` meets `condition` (e.g. `>= warning`).

        A missing or unknown alert severity has no rank: it never satisfies an ordering
        or `==` condition, and always satisfies `!=`. Raises ValueError when the
        condition itself names an unknown level (the rule loader rejects such rules).
        """
        wanted = self.rank(condition.level)
        if wanted is None:
            raise ValueError(
                f"unknown severity level {condition.level!r}; known levels: {self.describe()}"
            )
        actual = self.rank(severity)
        if actual is None:
            return condition.op is SeverityOp.NE
        return _COMPARE[condition.op](actual, wanted)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SeverityScale):
            return NotImplemented
        return dict(self._ranks) == dict(other._ranks)

    def __hash__(self) -> int:
        return hash(frozenset(self._ranks.items()))

    def __repr__(self) -> str:
        return f"SeverityScale({dict(self._ranks)!r})"


_COMPARE: Mapping[SeverityOp, Callable[[int, int], bool]] = MappingProxyType(
    {
        SeverityOp.GE: operator.ge,
        SeverityOp.GT: operator.gt,
        SeverityOp.LE: operator.le,
        SeverityOp.LT: operator.lt,
        SeverityOp.EQ: operator.eq,
        SeverityOp.NE: operator.ne,
    }
)
