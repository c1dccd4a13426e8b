"""The active rule set: an immutable snapshot swapped atomically on reload."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from responder.core.matching import RuleIndex
from responder.core.severities import SeverityScale
from responder.models.rules import LoadedRule


@dataclass(frozen=True)
class RuleSnapshot:
    """One loaded rule set and its match index."""

    rules: tuple[LoadedRule, ...]
    index: RuleIndex
    loaded_at: datetime
    digest: str

    @classmethod
    def build(
        cls, rules: Sequence[LoadedRule], scale: SeverityScale, loaded_at: datetime
    ) -> RuleSnapshot:
        """Index `rules`; the digest identifies the set (to skip no-op reloads)."""
        text = "\n".join(r.rule.model_dump_json() for r in rules)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return cls(tuple(rules), RuleIndex(rules, scale), loaded_at, digest)

    def rule(self, rule_id: str) -> LoadedRule | None:
        """The rule with this id in this snapshot, if any."""
        for loaded in self.rules:
            if loaded.rule.id == rule_id:
                return loaded
        return None


@dataclass
class RuleBook:
    """Holds the current snapshot; readers take `current` once per alert."""

    current: RuleSnapshot
    history: list[str] = field(default_factory=list)

    def replace(self, snapshot: RuleSnapshot) -> bool:
        """Activate `snapshot`; False (and no change) if it is the same rule set."""
        if snapshot.digest == self.current.digest:
            return False
        self.history.append(self.current.digest)
        del self.history[:-10]
        self.current = snapshot
        return True
