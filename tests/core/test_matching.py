"""Tables for matchers and the rule index: operators, anchoring, selectors, order, explain."""

from __future__ import annotations

from typing import Any

import pytest

from responder.core.matching import RuleIndex, compile_matcher, match_rules
from responder.core.severities import SeverityScale
from responder.models.alerts import Alert, AlertStatus, Source
from responder.models.rules import LoadedRule, Matcher, Rule, SourceLocation
from responder.settings import DEFAULT_SEVERITY_LEVELS

SCALE = SeverityScale(DEFAULT_SEVERITY_LEVELS)


def make_rule(rule_id: str, line: int = 1, **match: Any) -> LoadedRule:
    enabled = match.pop("enabled", True)
    rule = Rule.model_validate(
        {
            "id": rule_id,
            "enabled": enabled,
            "match": match,
            "steps": [{"id": "s", "action": "http.request"}],
        }
    )
    return LoadedRule(rule=rule, location=SourceLocation(file="rules/test.yaml", line=line))


def make_alert(
    labels: dict[str, str],
    *,
    source: Source = Source.ALERTMANAGER,
    status: AlertStatus = AlertStatus.FIRING,
    severity: str | None = None,
) -> Alert:
    return Alert(
        source=source,
        name=labels.get("alertname", "unnamed"),
        status=status,
        labels=labels,
        severity=severity,
        fingerprint="f" * 16,
    )


def ids(rules: tuple[LoadedRule, ...]) -> list[str]:
    return [loaded.rule.id for loaded in rules]


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('a="x"', {"a": "x"}, True),
        ('a="x"', {"a": "y"}, False),
        ('a="x"', {}, False),
        ('a="X"', {"a": "x"}, False),  # case-sensitive
        ('a=""', {}, True),  # a missing label is the empty string
        ('a=""', {"a": ""}, True),
        ('a=""', {"a": "x"}, False),
        ('a!="x"', {"a": "y"}, True),
        ('a!="x"', {}, True),
        ('a!="x"', {"a": "x"}, False),
        ('a!=""', {}, False),
        ('a!=""', {"a": "1"}, True),
        ('a=~"x|y"', {"a": "y"}, True),
        ('a=~"x|y"', {"a": "xy"}, False),  # anchored at both ends
        ('a=~"x"', {"a": "ax"}, False),
        ('a=~"x"', {"a": "xa"}, False),
        ('a=~"x"', {"a": "x\n"}, False),  # no `$`-before-newline leak
        ('a=~"x.*"', {"a": "xyz"}, True),
        ('a=~"x|y"', {}, False),
        ('a=~".*"', {}, True),
        ('a=~"(?i)prod"', {"a": "PROD"}, True),
        ('a!~"x|y"', {"a": "x"}, False),
        ('a!~"x|y"', {"a": "xy"}, True),
        ('a!~"x|y"', {}, True),
        ('a!~".+"', {}, True),
        ('a!~".+"', {"a": "v"}, False),
        ('a="with \\"quotes\\""', {"a": 'with "quotes"'}, True),
    ],
)
def test_matcher_operators(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert compile_matcher(Matcher.parse(matcher)).matches(labels) is expected


ALERTMANAGER = make_alert(
    {"alertname": "CircuitBreakerOpen", "breaker": "pagerduty", "namespace": "alerting"},
    severity="warning",
)
GRAFANA = make_alert(
    {"alertname": "HighLatency", "grafana_folder": "checkout", "service": "api"},
    source=Source.GRAFANA,
    severity="critical",
)
SENTRY = make_alert(
    {"alertname": "TypeError: x is undefined", "project": "checkout", "level": "error"},
    source=Source.SENTRY,
    severity="error",
)
RESOLVED = ALERTMANAGER.model_copy(update={"status": AlertStatus.RESOLVED})
NO_NAME = make_alert({"team": "payments"}, severity="info")

BREAKER = ['alertname="CircuitBreakerOpen"', 'breaker=~"pagerduty|slack"']

CASES: list[tuple[str, LoadedRule, Alert, bool]] = [
    ("exact name", make_rule("r", matchers=BREAKER), ALERTMANAGER, True),
    ("other name", make_rule("r", matchers=['alertname="Other"']), ALERTMANAGER, False),
    ("regex name", make_rule("r", matchers=['alertname=~"Circuit.*"']), ALERTMANAGER, True),
    ("no matchers", make_rule("r"), ALERTMANAGER, True),
    ("ne matcher", make_rule("r", matchers=['namespace!="kube-system"']), ALERTMANAGER, True),
    ("failing ne", make_rule("r", matchers=['namespace!="alerting"']), ALERTMANAGER, False),
    ("source am", make_rule("r", source="alertmanager"), ALERTMANAGER, True),
    ("source other", make_rule("r", source="sentry"), ALERTMANAGER, False),
    ("firing default", make_rule("r"), RESOLVED, False),
    ("resolved", make_rule("r", status="resolved"), RESOLVED, True),
    ("resolved only", make_rule("r", status="resolved"), ALERTMANAGER, False),
    ("any status", make_rule("r", status="any"), RESOLVED, True),
    ("severity ok", make_rule("r", severity=">= warning"), ALERTMANAGER, True),
    ("severity low", make_rule("r", severity=">= critical"), ALERTMANAGER, False),
    ("severity missing", make_rule("r", severity=">= debug"), NO_NAME.model_copy(), True),
    (
        "severity none",
        make_rule("r", severity=">= debug"),
        NO_NAME.model_copy(update={"severity": None}),
        False,
    ),
    (
        "grafana",
        make_rule("r", source="grafana", matchers=['alertname="HighLatency"'], severity="critical"),
        GRAFANA,
        True,
    ),
    ("grafana folder", make_rule("r", matchers=['grafana_folder=~"check.*"']), GRAFANA, True),
    (
        "sentry",
        make_rule("r", source="sentry", matchers=['project="checkout"'], severity=">= error"),
        SENTRY,
        True,
    ),
    (
        "sentry name",
        make_rule("r", matchers=['alertname="TypeError: x is undefined"']),
        SENTRY,
        True,
    ),
    ("no alertname", make_rule("r", matchers=['alertname="X"']), NO_NAME, False),
    ("wildcard only", make_rule("r", matchers=['team="payments"']), NO_NAME, True),
    ("empty alertname", make_rule("r", matchers=['alertname=""']), NO_NAME, True),
    ("disabled", make_rule("r", enabled=False), ALERTMANAGER, False),
]


@pytest.mark.parametrize(
    ("rule", "alert", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rule_matches(rule: LoadedRule, alert: Alert, expected: bool) -> None:
    index = RuleIndex([rule], SCALE)
    assert bool(index.match(alert)) is expected
    explanation = index.explain(alert, every_rule=True)
    assert [e.matched for e in explanation] == [expected]


def test_matches_come_back_in_load_order_across_buckets() -> None:
    rules = [
        make_rule("wild-any", source="any"),
        make_rule("exact-am", source="alertmanager", matchers=BREAKER),
        make_rule("wild-am", source="alertmanager", matchers=['namespace="alerting"']),
        make_rule("other", matchers=['alertname="Else"']),
        make_rule("exact-any", matchers=['alertname="CircuitBreakerOpen"']),
        make_rule("off", enabled=False),
    ]
    index = RuleIndex(rules, SCALE)
    assert ids(index.match(ALERTMANAGER)) == ["wild-any", "exact-am", "wild-am", "exact-any"]
    assert ids(match_rules(ALERTMANAGER, index)) == ids(index.match(ALERTMANAGER))
    assert ids(index.match(GRAFANA)) == ["wild-any"]
    assert len(index) == 6
    assert ids(index.rules) == [r.rule.id for r in rules]


def test_explain_names_every_failing_condition_of_candidates_only() -> None:
    rules = [
        make_rule(
            "strict",
            source="alertmanager",
            status="resolved",
            matchers=[*BREAKER, 'namespace="kube-system"', 'team="payments"'],
            severity=">= critical",
        ),
        make_rule("elsewhere", matchers=['alertname="Else"']),
        make_rule("off", enabled=False),
    ]
    index = RuleIndex(rules, SCALE)
    explained = index.explain(ALERTMANAGER)
    assert [e.rule.rule.id for e in explained] == ["strict", "off"]
    assert explained[0].failures == (
        "status is firing, rule wants resolved",
        "matcher namespace=\"kube-system\" fails: namespace is 'alerting'",
        'matcher team="payments" fails: team is missing',
        "severity >= critical fails: alert severity is 'warning'",
    )
    assert explained[1].failures == ("rule is disabled (enabled: false)",)
    every = index.explain(ALERTMANAGER, every_rule=True)
    assert [e.rule.rule.id for e in every] == ["strict", "elsewhere", "off"]
    assert every[1].failures == (
        "matcher alertname=\"Else\" fails: alertname is 'CircuitBreakerOpen'",
    )


def test_source_mismatch_is_explained() -> None:
    index = RuleIndex([make_rule("s", source="sentry")], SCALE)
    assert index.explain(ALERTMANAGER, every_rule=True)[0].failures == (
        "source is alertmanager, rule wants sentry",
    )


def test_rules_for_other_alertnames_are_not_candidates() -> None:
    rules = [make_rule(f"r{i}", matchers=[f'alertname="A{i}"']) for i in range(500)]
    index = RuleIndex([*rules, make_rule("wild", matchers=['team="x"'])], SCALE)
    alert = make_alert({"alertname": "A7", "team": "x"})
    assert [e.rule.rule.id for e in index.explain(alert)] == ["r7", "wild"]
    assert ids(index.match(alert)) == ["r7", "wild"]


def test_lookup_and_invalid_snapshots() -> None:
    rule = make_rule("one")
    index = RuleIndex([rule], SCALE)
    assert index.get("one") == rule
    assert index.get("two") is None
    assert index.severity == SCALE
    with pytest.raises(ValueError, match="duplicate rule id 'one'"):
        RuleIndex([rule, make_rule("one", line=9)], SCALE)
    with pytest.raises(ValueError, match="unknown severity level 'urgent'"):
        RuleIndex([make_rule("u", severity=">= urgent")], SCALE)


def test_empty_index_matches_nothing() -> None:
    assert RuleIndex([], SCALE).match(ALERTMANAGER) == ()
