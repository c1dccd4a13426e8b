"""rules/schema.json: generated from the rule model, current, and agreeing with the loader on
what a rule document may contain (every shipped rule validates; shorthand forms pass; mistakes
fail in both)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from pydantic import ValidationError

from responder.actions.shipped import default_registry
from responder.cli import main
from responder.commands.rule_schema import FIELD_DOCS, rule_schema, schema_text
from responder.models.rules import Rule
from tests.support.paths import REPO

RULES = REPO / "rules"
SCHEMA_FILE = RULES / "schema.json"


def validator() -> Any:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator().iter_errors(document)]


def test_the_schema_file_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "rules/schema.json is stale: run `responder rules schema > rules/schema.json`"
    )


def test_rules_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text()


def test_the_schema_is_a_valid_draft_07_schema_with_documented_fields() -> None:
    schema = rule_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    documented = 0
    for name, definition in schema["definitions"].items():
        for prop, spec in definition.get("properties", {}).items():
            assert spec["description"] == FIELD_DOCS[(name, prop)]
            documented += 1
    assert documented == len(FIELD_DOCS)
    step = schema["definitions"]["StepSpec"]["properties"]
    assert step["action"]["enum"] == list(default_registry().names())
    assert set(schema["definitions"]["Rule"]["required"]) == {"id", "steps"}


def shipped_documents() -> list[tuple[str, int, Any]]:
    found = []
    for path in sorted(RULES.glob("*.yaml")):
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            found.append((path.name, index, document))
    return found


def test_every_shipped_rule_validates_against_the_schema_and_the_model() -> None:
    documents = shipped_documents()
    assert len(documents) >= 19
    for name, index, document in documents:
        assert schema_errors(document) == [], (name, index)
        Rule.model_validate(document)


STEP = {"id": "note", "action": "log", "with": {"message": "hi"}}

ACCEPTED = {
    "minimal": {"id": "a", "steps": [STEP]},
    "shorthands": {
        "id": "shorthands",
        "match": {"matchers": 'alertname="DiskFull"', "severity": "critical"},
        "guards": {"for": 90, "cooldown": "1h30m", "budget": {"max": 3, "per": "1d"}},
        "steps": [{**STEP, "approval": True, "timeout": "250ms"}],
    },
    "long forms": {
        "id": "long-forms",
        "match": {
            "source": "grafana",
            "status": "any",
            "matchers": [{"label": "team", "op": "=~", "value": "a|b"}, "env != prod"],
            "severity": {"op": ">=", "level": "warning"},
        },
        "guards": {"key": "{{ labels.team }}", "budget": [{"max": 1, "per": "1w"}]},
        "steps": [
            {
                **STEP,
                "if": "labels.team == 'a'",
                "approval": {"required": True, "ttl": "15m", "approvers": ["sre"]},
                "continue_on_failure": True,
            }
        ],
    },
}

REJECTED = {
    "no steps": {"id": "a", "steps": []},
    "unknown field": {"id": "a", "steps": [STEP], "bogus": 1},
    "unknown step field": {"id": "a", "steps": [{**STEP, "retries": 3}]},
    "id not a slug": {"id": "Not A Slug", "steps": [STEP]},
    "step id with a dash": {"id": "a", "steps": [{**STEP, "id": "bad-id"}]},
    "bad matcher": {"id": "a", "match": {"matchers": ["al ert=x"]}, "steps": [STEP]},
    "bad source": {"id": "a", "match": {"source": "nagios"}, "steps": [STEP]},
    "bad duration": {"id": "a", "guards": {"cooldown": "5 minutes"}, "steps": [STEP]},
    "budget without window": {"id": "a", "guards": {"budget": {"max": 3}}, "steps": [STEP]},
    "zero budget": {"id": "a", "guards": {"budget": {"max": 0, "per": "1h"}}, "steps": [STEP]},
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_forms_the_model_accepts_pass_the_schema(name: str) -> None:
    document = ACCEPTED[name]
    Rule.model_validate(document)
    assert schema_errors(document) == []


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_mistakes_the_model_refuses_fail_the_schema(name: str) -> None:
    document = REJECTED[name]
    with pytest.raises(ValidationError):
        Rule.model_validate(document)
    assert schema_errors(document) != []


def test_an_unknown_action_fails_the_schema_as_rules_check_refuses_it() -> None:
    errors = schema_errors({"id": "a", "steps": [{**STEP, "action": "k8s.restart"}]})
    assert errors
    assert errors[0].startswith("$.steps[0].action")


def test_the_readme_tells_editors_where_the_schema_is() -> None:
    readme = (RULES / "README.md").read_text()
    assert "# yaml-language-server: $schema=" in readme
    assert "responder rules schema > rules/schema.json" in readme
