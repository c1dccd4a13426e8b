"""Which rules apply to an alert: compiled matchers over an immutable, indexed rule snapshot.

Pure. Matchers follow Alertmanager: regexes are anchored at both ends, and a label the
alert does not carry reads as the empty string (so `team=""` holds for an alert without a
`team` label, and `team!=""` requires one). A `RuleIndex` buckets rules by (source, exact
`alertname`), so the cost of matching one alert depends on the rules that could match it,
not on the size of the rule set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from responder.core.severities import SeverityScale
from responder.models.alerts import Alert, AlertStatus, Source
from responder.models.rules import (
    LoadedRule,
    Matcher,
    MatchOp,
    SeverityCondition,
    SourceSelector,
    StatusSelector,
)

_Key = tuple[str | None, str | None]  # (source value or None for `any`, exact alertname)


@dataclass(frozen=True, slots=True)
class CompiledMatcher:
    """A `Matcher` ready to test label sets; `pattern` is set for `=~` and `!~`."""

    label: str
    op: MatchOp
    value: str
    pattern: re.Pattern[str] | None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this matcher (a missing label is `""`)."""
        actual = labels.get(self.label, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op is MatchOp.RE else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op.value}"{escaped}"'


def compile_matcher(matcher: Matcher) -> CompiledMatcher:
    """Compile one matcher; a regex must match the whole value.

    `fullmatch` anchors like Alertmanager's `^(?:re)$` without wrapping the text, so leading
    inline flags such as `(?i)` keep working and `$` cannot match before a final newline.
    """
    pattern = None
    if matcher.op in (MatchOp.RE, MatchOp.NRE):
        pattern = re.compile(matcher.value)
    return CompiledMatcher(matcher.label, matcher.op, matcher.value, pattern)


@dataclass(frozen=True, slots=True)
class MatchExplanation:
    """Why one rule does or does not match one alert; `failures` is empty when it matches."""

    rule: LoadedRule
    failures: tuple[str, ...]

    @property
    def matched(self) -> bool:
        """Whether every condition of the rule holds for the alert."""
        return not self.failures


@dataclass(frozen=True, slots=True)
class _Entry:
    position: int
    loaded: LoadedRule
    source: Source | None
    status: AlertStatus | None
    matchers: tuple[CompiledMatcher, ...]
    severity: SeverityCondition | None


class RuleIndex:
    """An immutable snapshot of a rule set, indexed by (source, exact alertname).

    Rules whose source is `any`, or that have no `alertname="..."` matcher, sit in wildcard
    buckets that every alert of a matching source consults. Raises ValueError for duplicate
    rule ids or a severity condition naming a level the scale does not know.
    """

    __slots__ = ("_all", "_by_id", "_enabled", "_entries", "_scale")

    def __init__(self, rules: Sequence[LoadedRule], severity: SeverityScale) -> None:
        """Compile every rule's matchers and bucket the rules, keeping load order."""
        buckets: dict[_Key, list[_Entry]] = {}
        enabled: dict[_Key, list[_Entry]] = {}
        by_id: dict[str, LoadedRule] = {}
        compiled: dict[Matcher, CompiledMatcher] = {}
        entries: list[_Entry] = []
        for position, loaded in enumerate(rules):
            rule = loaded.rule
            if rule.id in by_id:
                raise ValueError(f"duplicate rule id {rule.id!r} at {loaded.location}")
            condition = rule.match.severity
            if condition is not None and not severity.known(condition.level):
                raise ValueError(
                    f"rule {rule.id!r} uses unknown severity level {condition.level!r}; "
                    f"known levels: {severity.describe()}"
                )
            by_id[rule.id] = loaded
            source = _source_of(loaded)
            for matcher in rule.match.matchers:
                if matcher not in compiled:
                    compiled[matcher] = compile_matcher(matcher)
            matchers = tuple(compiled[m] for m in rule.match.matchers)
            entry = _Entry(position, loaded, source, _status_of(loaded), matchers, condition)
            entries.append(entry)
            key = (source.value if source else None, rule.match.alertname)
            buckets.setdefault(key, []).append(entry)
            if rule.enabled:
                enabled.setdefault(key, []).append(entry)
        self._entries = tuple(entries)
        self._all = _freeze(buckets)
        self._enabled = _freeze(enabled)
        self._by_id: Mapping[str, LoadedRule] = MappingProxyType(by_id)
        self._scale = severity

    @property
    def rules(self) -> tuple[LoadedRule, ...]:
        """Every rule of the snapshot, enabled or not, in load order."""
        return tuple(entry.loaded for entry in self._entries)

    @property
    def severity(self) -> SeverityScale:
        """The severity ladder this snapshot compares against."""
        return self._scale

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, rule_id: str) -> LoadedRule | None:
        """The rule with this id, if the snapshot holds one."""
        return self._by_id.get(rule_id)

    def match(self, alert: Alert) -> tuple[LoadedRule, ...]:
        """The enabled rules whose every condition holds for `alert`, in load order."""
        labels = alert.labels
        status = alert.status
        found: list[_Entry] = []
        # Candidates already have the alert's source (or `any`): buckets are keyed by it.
        for entry in _candidates(self._enabled, alert):
            if entry.status is not None and entry.status is not status:
                continue
            for matcher in entry.matchers:
                if not matcher.matches(labels):
                    break
            else:
                condition = entry.severity
                if condition is None or self._scale.satisfies(condition, alert.severity):
                    found.append(entry)
        if len(found) > 1:
            found.sort(key=_position)
        return tuple(entry.loaded for entry in found)

    def explain(self, alert: Alert, *, every_rule: bool = False) -> list[MatchExplanation]:
        """For each candidate rule (or every rule), which conditions fail for `alert`.

        Candidates are the rules the index consults for this alert's source and alertname;
        the others cannot match it because of their source or their `alertname=` matcher.
        """
        entries = (
            self._entries if every_rule else sorted(_candidates(self._all, alert), key=_position)
        )
        return [MatchExplanation(e.loaded, tuple(self._failures(e, alert))) for e in entries]

    def _failures(self, entry: _Entry, alert: Alert) -> list[str]:
        rule = entry.loaded.rule
        failures: list[str] = []
        if not rule.enabled:
            failures.append("rule is disabled (enabled: false)")
        if entry.source is not None and entry.source is not alert.source:
            failures.append(f"source is {alert.source.value}, rule wants {entry.source.value}")
        if entry.status is not None and entry.status is not alert.status:
            failures.append(f"status is {alert.status.value}, rule wants {entry.status.value}")
        for matcher in entry.matchers:
            if not matcher.matches(alert.labels):
                actual = alert.labels.get(matcher.label)
                shown = "missing" if actual is None else repr(actual)
                failures.append(f"matcher {matcher} fails: {matcher.label} is {shown}")
        condition = entry.severity
        if condition is not None and not self._scale.satisfies(condition, alert.severity):
            shown = "missing" if alert.severity is None else repr(alert.severity)
            failures.append(f"severity {condition} fails: alert severity is {shown}")
        return failures


def match_rules(alert: Alert, index: RuleIndex) -> tuple[LoadedRule, ...]:
    """The enabled rules of `index` that match `alert`, in load order."""
    return index.match(alert)


def _candidates(buckets: Mapping[_Key, tuple[_Entry, ...]], alert: Alert) -> list[_Entry]:
    """The entries of the four buckets an alert can match: exact or any source and name."""
    name = alert.labels.get("alertname", "")
    source = alert.source.value
    found: list[_Entry] = []
    for key in ((source, name), (None, name), (source, None), (None, None)):
        bucket = buckets.get(key)
        if bucket:
            found.extend(bucket)
    return found


def _freeze(buckets: dict[_Key, list[_Entry]]) -> Mapping[_Key, tuple[_Entry, ...]]:
    return MappingProxyType({key: tuple(value) for key, value in buckets.items()})


def _position(entry: _Entry) -> int:
    return entry.position


def _source_of(loaded: LoadedRule) -> Source | None:
    selector = loaded.rule.match.source
    return None if selector is SourceSelector.ANY else Source(selector.value)


def _status_of(loaded: LoadedRule) -> AlertStatus | None:
    selector = loaded.rule.match.status
    return None if selector is StatusSelector.ANY else AlertStatus(selector.value)
