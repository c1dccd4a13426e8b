"""Rule files on disk: valid sets load, and every problem is reported at its exact file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from responder.adapters.rule_files.loading import format_errors, load_rules
from responder.core.severities import SeverityScale
from responder.errors import RuleSetError
from responder.models.durations import parse_duration
from responder.models.rules import LoadedRule, MatchOp
from responder.settings import DEFAULT_SEVERITY_LEVELS

KNOWN_ACTIONS = frozenset({"http.request", "circuit_breaker.reset", "k8s.rollout_restart"})
SCALE = SeverityScale(DEFAULT_SEVERITY_LEVELS)

VALID = """\
id: alerting-breaker-open
match:
  source: alertmanager
  matchers:
    - alertname="CircuitBreakerOpen"
    - breaker=~"pagerduty|slack"
    - namespace!="kube-system"
  severity: ">= warning"
guards:
  key: "{{ labels.namespace }}/{{ labels.service }}"
  for: 2m
  budget: {max: 3, per: 1h}
steps:
  - id: state
    action: http.request
    with: {method: GET, url: "http://{{ labels.service }}.svc:8080/actuator/circuitbreakers"}
  - id: reset
    action: circuit_breaker.reset
    with: {base_url: "http://{{ labels.service }}.svc:8080", name: "{{ labels.breaker }}"}
  - id: restart
    action: k8s.rollout_restart
    if: "steps.reset.failed"
    approval: {required: true, ttl: 30m}
    with: {namespace: "{{ labels.namespace }}", deployment: "{{ labels.service }}"}
---
# a second rule in the same file
id: sentry-errors
match: {source: sentry, severity: ">= error"}
steps:
  - id: look
    action: http.request
    with:
      url: "http://errors.example/{{ labels.project }}"
      headers: ["X-Alert: {{ alert.fingerprint }}"]
---
"""

STEP = "steps:\n  - id: a\n    action: http.request\n"


def write(root: Path, files: dict[str, str]) -> Path:
    rules = root / "rules"
    rules.mkdir(exist_ok=True)
    for name, text in files.items():
        (rules / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return Path("rules")


def load(root: Path, files: dict[str, str]) -> tuple[LoadedRule, ...]:
    return load_rules(write(root, files), known_actions=KNOWN_ACTIONS, severity=SCALE)


def problems(root: Path, files: dict[str, str]) -> list[str]:
    with pytest.raises(RuleSetError) as caught:
        load(root, files)
    return format_errors(caught.value).splitlines()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_valid_multi_document_file_loads(tmp_path: Path) -> None:
    rules = load(
        tmp_path, {"alerting.yaml": VALID, "README.md": "# not a rule: {{", "notes.txt": "x"}
    )
    assert [r.rule.id for r in rules] == ["alerting-breaker-open", "sentry-errors"]
    first, second = rules
    assert str(first.location) == "rules/alerting.yaml:1"
    assert str(second.location) == "rules/alerting.yaml:27"
    assert first.rule.match.alertname == "CircuitBreakerOpen"
    assert first.rule.match.matchers[1].op is MatchOp.RE
    assert first.rule.guards.for_ == parse_duration("2m")
    assert first.rule.steps[2].if_ == "steps.reset.failed"
    assert first.rule.steps[2].needs_approval
    assert second.rule.steps[0].with_["headers"] == ["X-Alert: {{ alert.fingerprint }}"]


def test_files_load_in_name_order_and_yml_counts(tmp_path: Path) -> None:
    assert load(tmp_path, {}) == ()  # an empty directory is fine
    files = {"b.yml": f"id: bee\n{STEP}", "a.yaml": f"id: ay\n{STEP}", ".hidden.yaml": "x: ["}
    assert [r.rule.id for r in load(tmp_path, files)] == ["ay", "bee"]


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError) as caught:
        load_rules(Path("nowhere"), known_actions=KNOWN_ACTIONS, severity=SCALE)
    assert format_errors(caught.value) == (
        "nowhere: rules directory does not exist; create it or point RESPONDER_RULES_DIR "
        "at the directory holding the *.yaml rule files"
    )


CASES: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "bad yaml",
        {"a.yaml": 'id: a\nmatch:\n  matchers: [\n    a="b"\nsteps: []\n'},
        [
            "rules/a.yaml:5: invalid YAML: "
            + (  # libyaml's wording when PyYAML has it (the loader uses it), else PyYAML's
                "did not find expected ',' or ']'"
                if yaml.__with_libyaml__
                else "expected ',' or ']', but got ':'"
            )
            + "; while parsing a flow sequence started at line 3"
        ],
    ),
    (
        "unquoted template",
        {"a.yaml": f"id: a\n{STEP}    with:\n      url: {{{{ labels.x }}}}\n"},
        [
            "rules/a.yaml:6: invalid YAML: found unhashable key; while constructing a mapping; "
            'quote values that hold templates, e.g. key: "{{ labels.service }}"'
        ],
    ),
    (
        "unknown field in a step",
        {"a.yaml": f"id: a\n{STEP}    retries: 3\n"},
        [
            "rules/a.yaml:5: unknown field 'retries' in steps[0]; allowed fields: id, action, "
            "with, if, approval, timeout, continue_on_failure (rule a)"
        ],
    ),
    (
        "bad matcher",
        {"a.yaml": f'id: a\nmatch:\n  matchers:\n    - a="b"\n    - c~~d\n{STEP}'},
        ["rules/a.yaml:5: match.matchers[1]: invalid matcher 'c~~d'; write label=\"value\""],
    ),
    (
        "bad regex",
        {"a.yaml": f'id: a\nmatch:\n  matchers:\n    - a=~"(x"\n{STEP}'},
        ["rules/a.yaml:4: match.matchers[0]: invalid regex in matcher"],
    ),
    (
        "missing field",
        {"a.yaml": "id: a\nsteps:\n  - id: a\n    with: {}\n"},
        ["rules/a.yaml:3: missing required field 'action' in steps[0] (rule a)"],
    ),
    (
        "wrong type",
        {"a.yaml": f"id: a\n{STEP}    with: [1, 2]\n"},
        ["rules/a.yaml:5: steps[0].with: Input should be a valid dictionary, not a list"],
    ),
    (
        "bad duration",
        {"a.yaml": f"id: a\nguards:\n  cooldown: 5 minutes\n{STEP}"},
        ["rules/a.yaml:3: guards.cooldown: invalid duration '5 minutes'; write e.g. 30s"],
    ),
    (
        "not a mapping",
        {"a.yaml": "- id: a\n"},
        ["rules/a.yaml:1: a rule must be a mapping with id, match and steps, not a list"],
    ),
    (
        "duplicate id across files",
        {"a.yaml": f"# first\nid: same\n{STEP}", "b.yaml": f"\n\nid: same\n{STEP}"},
        [
            "rules/b.yaml:3: duplicate rule id 'same': already defined at rules/a.yaml:2; "
            "give each rule a unique id (rule same)"
        ],
    ),
    (
        "duplicate key",
        {"a.yaml": f"id: a\ndescription: x\ndescription: y\n{STEP}"},
        ["rules/a.yaml:3: duplicate key description (first at line 2)"],
    ),
    (
        "unknown action",
        {"a.yaml": "id: a\nsteps:\n  - id: a\n    action: http.reqest\n"},
        [
            "rules/a.yaml:4: unknown action 'http.reqest' (did you mean 'http.request'?); "
            "known actions: circuit_breaker.reset, http.request, k8s.rollout_restart (rule a)"
        ],
    ),
    (
        "unknown severity",
        {"a.yaml": f"id: a\nmatch:\n  severity: '>= urgent'\n{STEP}"},
        ["rules/a.yaml:3: unknown severity level 'urgent'; known levels: debug, info"],
    ),
    (
        "bad template",
        {"a.yaml": f"id: a\n{STEP}    with:\n      n: 1\n      url: '{{{{ labels.x }}'\n"},
        ["rules/a.yaml:7: steps[0].with.url: template syntax error at line 1: unexpected '}'"],
    ),
    (
        "unknown filter",
        {"a.yaml": f"id: a\n{STEP}    with:\n      url: '{{{{ labels.x | shell }}}}'\n"},
        ["rules/a.yaml:6: steps[0].with.url: template syntax error at line 1: No filter named"],
    ),
    (
        "bad guard key",
        {"a.yaml": f"id: a\nguards:\n  key: '{{% if %}}'\n{STEP}"},
        ["rules/a.yaml:3: guards.key: template syntax error"],
    ),
    (
        "bad condition",
        {"a.yaml": f"id: a\n{STEP}    if: 'steps.x.failed and'\n"},
        ["rules/a.yaml:5: steps[0].if: template syntax error"],
    ),
    (
        "forward steps reference",
        {
            "a.yaml": """\
            id: a
            steps:
              - id: first
                action: http.request
                with:
                  url: "http://x/{{ steps.second.output.id }}"
              - id: second
                action: http.request
                if: steps.first.failed
            """
        },
        [
            "rules/a.yaml:6: steps[0].with.url reads steps.second, but step 'second' runs after "
            "step 'first'; earlier steps: none (rule a)"
        ],
    ),
    (
        "own and unknown step in a condition",
        {"a.yaml": f"id: a\n{STEP}    if: steps.a.failed or steps.zz.ok\n"},
        [
            "rules/a.yaml:5: steps[0].if reads steps.a, but step 'a' cannot read its own result",
            "rules/a.yaml:5: steps[0].if reads steps.zz, but this rule has no such step",
        ],
    ),
    (
        "steps in guard key",
        {"a.yaml": f"id: a\nguards:\n  key: '{{{{ steps.a.ok }}}}'\n{STEP}"},
        ["rules/a.yaml:3: guards.key cannot use steps: it is computed before any step runs"],
    ),
    (
        "merge key",
        {"a.yaml": "id: a\nsteps:\n  - &s {id: a, action: http.request}\n  - <<: *s\n    x: 1\n"},
        ["rules/a.yaml:5: unknown field 'x' in steps[1]; allowed fields: id, action, with, if"],
    ),
    (
        "disallowed root",
        {
            "a.yaml": f"id: a\n{STEP}    with:\n"
            "      cmd: ['{{ range(3) }}', '{{ env.HOME }}']\n"
        },
        [
            "rules/a.yaml:6: steps[0].with.cmd[0] uses range; templates may only use alert, "
            "annotations, labels, steps (rule a)",
            "rules/a.yaml:6: steps[0].with.cmd[1] uses env;",
        ],
    ),
]


@pytest.mark.parametrize(
    ("files", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_problem_is_reported_at_file_line(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    found = problems(tmp_path, files)
    assert len(found) == len(expected), found
    for line, prefix in zip(found, expected, strict=True):
        assert line.startswith(prefix), line


def test_every_problem_of_every_file_is_collected_in_order(tmp_path: Path) -> None:
    files = {
        "b.yaml": "id: b\nsteps:\n  - id: a\n    action: nope\n---\nid: c\nsteps: []\n",
        "a.yaml": "id: a\nmatch: {severity: '> huge'}\n" + STEP + "---\nid: [\n",
    }
    found = problems(tmp_path, files)
    where = [line.split(" ", 1)[0] for line in found]
    assert where == ["rules/a.yaml:2:", "rules/a.yaml:8:", "rules/b.yaml:4:", "rules/b.yaml:7:"]
    assert "steps: Tuple should have at least 1 item" in found[3]


def test_errors_are_structured_and_keep_absolute_paths(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": f"id: a\n{STEP}".replace("http.request", "nope")})
    with pytest.raises(RuleSetError) as caught:
        load_rules(tmp_path / "rules", known_actions=KNOWN_ACTIONS, severity=SCALE)
    (error,) = caught.value.errors
    assert (error.file, error.line, error.rule_id) == (str(tmp_path / "rules" / "a.yaml"), 4, "a")
    assert error.message.startswith("unknown action 'nope'")
