"""Tables for sandboxed templating: rendering, strict undefined, escapes, conditions, roots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from jinja2 import Environment, meta

from responder.core.templating import (
    ALLOWED_ROOTS,
    build_context,
    check_condition,
    check_template,
    condition_references,
    evaluate_condition,
    referenced_roots,
    render_value,
    template_references,
)
from responder.errors import TemplateError
from responder.models.alerts import Alert, AlertStatus, Source

ALERT = Alert(
    source=Source.ALERTMANAGER,
    name="CircuitBreakerOpen",
    status=AlertStatus.FIRING,
    labels={
        "alertname": "CircuitBreakerOpen",
        "namespace": "alerting",
        "service": "notifier",
        "breaker": "pagerduty",
        "pod": "notifier-7c9d-x2x4z",
        "replicas": "3",
    },
    annotations={"summary": "breaker open"},
    severity="warning",
    fingerprint="abc123",
    starts_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    links={"generator": "http://prometheus/graph"},
    group_key='{}:{alertname="CircuitBreakerOpen"}',
)
STEPS = {"reset": {"state": "failed", "failed": True, "ok": False, "output": {"code": 500}}}
CONTEXT = build_context(ALERT, STEPS)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain text", "plain text"),
        ("trailing newline\n", "trailing newline\n"),
        ("{{ labels.namespace }}/{{ labels.service }}", "alerting/notifier"),
        (
            "http://{{ labels.service }}.{{ labels.namespace }}.svc:8080",
            "http://notifier.alerting.svc:8080",
        ),
        ("{{ labels.replicas }}", "3"),  # always a string, never a native int
        ("{{ labels.replicas | int + 1 }}", "4"),
        ("{{ annotations.summary | upper }}", "BREAKER OPEN"),
        (
            "{{ alert.source }}:{{ alert.status }}:{{ alert.severity }}",
            "alertmanager:firing:warning",
        ),
        ("{{ alert.starts_at }}", "2026-11-23T10:00:00+00:00"),
        ("[{{ alert.ends_at }}]", "[]"),  # None renders empty
        ("{{ alert.links.generator }}", "http://prometheus/graph"),
        ("{{ labels.team | default('none') }}", "none"),
        ("{{ labels.get('team', 'x') }}", "x"),
        ("{{ labels['breaker'] }}", "pagerduty"),
        ("{{ steps.reset.output.code }}", "500"),
        ("{{ labels.pod | regex_replace('-[a-z0-9]+-[a-z0-9]+$', '') }}", "notifier"),
        ("{{ 'ABC' | regex_replace('b', 'x', ignorecase=True) }}", "AxC"),
        ("{{ '../../admin?x=1#y' | path_segment }}", "..%2F..%2Fadmin%3Fx%3D1%23y"),
        ("{{ '..' | path_segment }}/{{ '.' | path_segment }}", "%2E%2E/%2E"),
        ("{{ 'orders-api_v2~1' | path_segment }}", "orders-api_v2~1"),
        ("{% if labels.namespace == 'alerting' %}yes{% else %}no{% endif %}", "yes"),
    ],
)
def test_render_text(template: str, expected: str) -> None:
    assert render_value(template, CONTEXT) == expected


def test_render_value_recurses_and_keeps_other_scalars() -> None:
    value: dict[str, Any] = {
        "name": "{{ labels.breaker }}",
        "{{ keys }}": "kept as written",
        "nested": {"list": ["{{ labels.namespace }}", 3, True, None], "n": 1.5},
    }
    assert render_value(value, CONTEXT) == {
        "name": "pagerduty",
        "{{ keys }}": "kept as written",
        "nested": {"list": ["alerting", 3, True, None], "n": 1.5},
    }


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{ labels.nope }}", "nope"),
        ("{{ nope }}", "'nope' is undefined"),
        ("{{ steps.later.ok }}", "later"),
        ("line one\n{{ labels.nope }}", "at line 2"),
        ("{{ labels.nope | upper }}", "nope"),
    ],
)
def test_strict_undefined(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError, match="undefined") as caught:
        render_value(template, CONTEXT)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ labels.__class__ }}",
        "{{ labels.update({'a': 'b'}) }}",
        "{{ labels.pop('namespace') }}",
        "{{ ''.format.__globals__ }}",
        "{{ '{0.__class__}'.format(labels) }}",
        "{{ range(10) }}",  # no globals at all
        "{{ lipsum() }}",
        "{{ self._TemplateReference__context }}",
        "{% include 'x' %}",  # no loader
        "{{ 1 / 0 }}",
    ],
)
def test_sandbox_and_failures_raise_template_error(template: str) -> None:
    with pytest.raises(TemplateError):
        render_value(template, CONTEXT)


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{ labels.x }", "line 1"),
        ("a\nb\n{% if %}", "line 3"),
        ("{{ labels.x | no_such_filter }}", "no_such_filter"),
        ("{% for %}", "syntax"),
    ],
)
def test_check_template_reports_jinja_message_and_line(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as caught:
        check_template(template)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("steps.reset.failed", True),
        ("not steps.reset.ok", True),
        ("steps.reset.output.code >= 500", True),
        ('labels.namespace == "alerting"', True),
        ('labels.namespace == "kube-system"', False),
        ("labels.namespace in ['a', 'alerting']", True),
        ("labels.team is defined", False),
        ("labels.team | default('') == ''", True),
        ("alert.severity == 'warning' and alert.status == 'firing'", True),
        ("{{ steps.reset.failed }}", True),  # one {{ }} block is accepted too
        ("''", False),
    ],
)
def test_evaluate_condition(expr: str, expected: bool) -> None:
    assert evaluate_condition(expr, CONTEXT) is expected


@pytest.mark.parametrize(
    "expr",
    ["steps.nope.failed", "labels.nope == 'x'", "''.__class__", "labels.update({})", "x"],
)
def test_condition_failures_raise(expr: str) -> None:
    with pytest.raises(TemplateError):
        evaluate_condition(expr, CONTEXT)


@pytest.mark.parametrize("expr", ["labels.a ==", "a }} {{ b", "{% if x %}", ""])
def test_check_condition_refuses_non_expressions(expr: str) -> None:
    with pytest.raises(TemplateError, match="syntax"):
        check_condition(expr)


@pytest.mark.parametrize(
    ("value", "roots"),
    [
        ("plain", set()),
        ("{{ labels.a }}-{{ annotations.b }}", {"labels", "annotations"}),
        ({"a": ["{{ alert.name }}", {"b": "{{ steps.x.ok }}"}], "n": 3}, {"alert", "steps"}),
        ("{% for k in labels %}{{ k }}{% endfor %}", {"labels"}),
        ("{% set x = labels.a %}{{ x }}", {"labels"}),
        ("{{ os.system('id') }}", {"os"}),
        ("{{ range(3) }}", {"range"}),
    ],
)
def test_referenced_roots(value: Any, roots: set[str]) -> None:
    assert referenced_roots(value) == roots


def test_references_find_static_and_dynamic_step_reads() -> None:
    refs = template_references("{{ steps.a.ok }} {{ steps['b'].output }} {{ labels.x }}")
    assert refs.roots == {"steps", "labels"}
    assert refs.steps == {"a", "b"}
    assert not refs.dynamic_steps
    assert template_references("{% for s in steps %}{{ s }}{% endfor %}").dynamic_steps
    assert template_references("{{ steps[labels.x] }}").dynamic_steps
    cond = condition_references("steps.reset.failed and labels.env == 'prod'")
    assert cond.roots == {"steps", "labels"}
    assert cond.steps == {"reset"}


def test_build_context_exposes_only_the_allowed_roots() -> None:
    assert set(CONTEXT) == ALLOWED_ROOTS == {"labels", "annotations", "alert", "steps"}
    assert CONTEXT["alert"] == {
        "source": "alertmanager",
        "name": "CircuitBreakerOpen",
        "status": "firing",
        "severity": "warning",
        "fingerprint": "abc123",
        "starts_at": "2026-11-23T10:00:00+00:00",
        "ends_at": None,
        "links": {"generator": "http://prometheus/graph"},
        "group_key": '{}:{alertname="CircuitBreakerOpen"}',
    }
    assert "raw" not in CONTEXT["alert"]
    assert CONTEXT["steps"]["reset"]["failed"] is True


@pytest.mark.parametrize(
    "template",
    [
        "{{ labels.x }}",
        "{{ labels.a ~ annotations.b | default('x') }}",
        "{% if steps.a.ok %}{{ alert.name }}{% endif %}",
        "{% for k in labels %}{{ k }}{{ loop.index }}{% endfor %}",
        "{% set y = labels.a %}{{ y }}",
        "{{ x if y else z }}",
        "{{ steps['a'].output.x | map(attribute='pod') | join(',') }}",
        "{% raw %}{{ no }}{% endraw %}{{ labels.b }}",
        "{% with v = labels.a %}{{ v }}{{ w }}{% endwith %}",
        "{% macro m(a) %}{{ a }}{{ b }}{% endmacro %}{{ m(labels.c) }}",
    ],
)
def test_roots_are_the_names_jinja_finds_undeclared(template: str) -> None:
    """The fast path (no binding nodes) and the fallback agree with Jinja's own analysis."""
    expected = meta.find_undeclared_variables(Environment().parse(template))
    assert template_references(template).roots == expected
