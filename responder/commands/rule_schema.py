"""`responder rules schema`: the JSON Schema of one rule document, for editors and CI.

Built from the pydantic `Rule` model (`model_json_schema`), then adjusted to what rule files
really contain: the model parses several fields from shorthand text before validating them
(matchers, severity, durations, `approval: true`, a single budget), and pydantic's schema only
knows the parsed shape. Every property gets a description (editors show them on hover), and
`action` lists the registered actions. `rules/schema.json` is this output; a test regenerates
it and fails when it is stale:

    responder rules schema > rules/schema.json
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, TextIO

from pydantic import TypeAdapter

from responder.actions.shipped import default_registry
from responder.models.durations import format_duration
from responder.models.rules import _MATCHER, _SEVERITY, _SLUG, _STEP_ID, Rule

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"  # what yaml-language-server supports
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$"

# (model, property) -> what an editor shows for it. Every property of every model must be here:
# a new field without an entry makes `rule_schema()` fail, so the schema stays documented.
FIELD_DOCS: dict[tuple[str, str], str] = {
    ("Rule", "id"): "Unique rule id across all files: a slug of a-z, 0-9 and '-'.",
    ("Rule", "description"): "Free text: what the rule does and which runbook it follows.",
    ("Rule", "enabled"): "false keeps the rule loaded (and checked) but never matched.",
    ("Rule", "dry_run"): "true records every step with its rendered request; nothing runs.",
    ("Rule", "match"): "Which alerts the rule applies to; every condition must hold.",
    ("Rule", "guards"): "Dedup key, for: delay, cooldown and budgets of the rule.",
    ("Rule", "steps"): "The steps, run in order (at least one).",
    ("RuleMatch", "source"): "The intake the alert came from (default any).",
    ("RuleMatch", "status"): "firing (default), resolved or any.",
    ("RuleMatch", "matchers"): (
        'Alertmanager matchers, all must hold: label="v", label!="v", label=~"regex", '
        'label!~"regex" (regexes anchored; a missing label counts as "").'
    ),
    ("RuleMatch", "severity"): (
        "Compare the alert's severity with a level: '>= warning', '< P2', 'critical' (==)."
    ),
    ("Matcher", "label"): "The label name.",
    ("Matcher", "op"): "=, !=, =~ or !~.",
    ("Matcher", "value"): "The value, or the regex for =~ and !~.",
    ("SeverityCondition", "op"): ">=, >, <=, <, == or !=.",
    ("SeverityCondition", "level"): "A level of the severity ladder (RESPONDER_SEVERITY_LEVELS).",
    ("Guards", "key"): (
        "Template of the key cooldowns and budgets count per (default: the alert fingerprint)."
    ),
    ("Guards", "for"): "Act only if the alert still fires this long after it started.",
    ("Guards", "cooldown"): "After a run, no new run for the same (rule, key) for this long.",
    ("Guards", "budget"): "At most max runs per window for one (rule, key); one or a list.",
    ("Budget", "max"): "Runs allowed in the window (at least 1).",
    ("Budget", "per"): "The window, e.g. 1h or 1d.",
    ("StepSpec", "id"): "Step id: a-z, 0-9 and _ (later steps read it as steps.<id>).",
    ("StepSpec", "action"): "The action to run (see docs/actions.md).",
    ("StepSpec", "with"): (
        "The action's parameters; strings are Jinja templates over labels, annotations, alert "
        "and steps, validated against the action's parameter model."
    ),
    ("StepSpec", "if"): (
        "Jinja expression; the step is skipped when false. A step with if: also runs after an "
        "earlier failure."
    ),
    ("StepSpec", "approval"): "true, or {required, ttl, approvers}: an engineer approves first.",
    ("StepSpec", "timeout"): "Deadline of the step (default: the action's own).",
    ("StepSpec", "continue_on_failure"): (
        "true: a failure neither stops later steps nor fails the run (default false, true for "
        "notify.*)."
    ),
    ("Approval", "required"): "Whether the step waits for an approval (default true).",
    ("Approval", "ttl"): "How long the request stays open before it expires (default 30m).",
    ("Approval", "approvers"): "Approver names or groups allowed to decide (empty: anyone).",
}


def _duration() -> dict[str, Any]:
    return {
        "description": "A duration: 250ms, 30s, 2m, 1h30m, 1d, 1w (or a number of seconds).",
        "anyOf": [
            {"type": "string", "pattern": DURATION_PATTERN},
            {"type": "number", "minimum": 0},
        ],
    }


def _swap_durations(node: Any) -> Any:
    """Replace pydantic's ISO 8601 `format: duration` strings by the rule syntax."""
    if isinstance(node, list):
        return [_swap_durations(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "duration":
        swapped: dict[str, Any] = {"$ref": "#/$defs/Duration"}
        if "default" in node:
            iso = TypeAdapter(timedelta).validate_python(node["default"])
            swapped["default"] = format_duration(iso)
        return swapped
    return {key: _swap_durations(value) for key, value in node.items()}


def _props(defs: dict[str, Any], model: str) -> dict[str, Any]:
    try:
        found: dict[str, Any] = defs[model]["properties"]
    except KeyError:
        raise RuntimeError(f"the rule model has no {model} properties any more") from None
    return found


def _replace(defs: dict[str, Any], model: str, field: str, schema: dict[str, Any]) -> None:
    props = _props(defs, model)
    if field not in props:
        raise RuntimeError(f"the rule model has no field {model}.{field} any more")
    props[field] = schema


def _extend(defs: dict[str, Any], model: str, field: str, **extra: Any) -> None:
    props = _props(defs, model)
    if field not in props:
        raise RuntimeError(f"the rule model has no field {model}.{field} any more")
    props[field] = {**props[field], **extra}


def _text_forms(defs: dict[str, Any]) -> None:
    """What the before-validators of the rule model accept besides the parsed shape."""
    defs["MatcherText"] = {
        "description": 'A matcher in Alertmanager syntax, e.g. alertname="DiskFull".',
        "type": "string",
        "pattern": _MATCHER.pattern,
    }
    one_matcher = {"anyOf": [{"$ref": "#/$defs/MatcherText"}, {"$ref": "#/$defs/Matcher"}]}
    matchers = {"default": [], "anyOf": [one_matcher, {"type": "array", "items": one_matcher}]}
    _replace(defs, "RuleMatch", "matchers", matchers)
    severity_text = {"type": "string", "pattern": _SEVERITY.pattern}
    severity = [severity_text, {"$ref": "#/$defs/SeverityCondition"}, {"type": "null"}]
    _replace(defs, "RuleMatch", "severity", {"default": None, "anyOf": severity})
    approval = [{"type": "boolean"}, {"$ref": "#/$defs/Approval"}, {"type": "null"}]
    _replace(defs, "StepSpec", "approval", {"default": None, "anyOf": approval})
    budget = {"$ref": "#/$defs/Budget"}
    budgets = {"default": [], "anyOf": [budget, {"type": "array", "items": budget}]}
    _replace(defs, "Guards", "budget", budgets)
    _extend(defs, "Rule", "id", pattern=_SLUG.pattern)
    _extend(defs, "StepSpec", "id", pattern=_STEP_ID.pattern)
    _extend(defs, "StepSpec", "action", enum=list(default_registry().names()))


def _describe(defs: dict[str, Any]) -> None:
    """Put FIELD_DOCS on every property; fail on a property without documentation."""
    missing: list[str] = []
    for model, schema in defs.items():
        for name, prop in schema.get("properties", {}).items():
            doc = FIELD_DOCS.get((model, name))
            if doc is None:
                missing.append(f"{model}.{name}")
            else:
                prop["description"] = doc
    if missing:
        raise RuntimeError(
            "document these rule fields in FIELD_DOCS (responder/commands/rule_schema.py): "
            + ", ".join(sorted(missing))
        )


def _draft7(node: Any) -> Any:
    """Draft-07 spelling: `definitions` refs, and no keywords beside a `$ref` (draft-07
    ignores them), so a described or defaulted reference becomes an `allOf` of one."""
    if isinstance(node, list):
        return [_draft7(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _draft7(value) for key, value in node.items()}
    ref = converted.get("$ref")
    if isinstance(ref, str):
        converted["$ref"] = ref.replace("#/$defs/", "#/definitions/")
        if len(converted) > 1:
            converted["allOf"] = [{"$ref": converted.pop("$ref")}]
    return converted


def rule_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of one rule document as written in a rule file."""
    raw = Rule.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = _swap_durations(raw)
    defs: dict[str, Any] = schema.pop("$defs")
    defs["Duration"] = _duration()
    rule = {"title": schema.pop("title"), "description": schema.pop("description"), **schema}
    defs["Rule"] = rule
    _text_forms(defs)
    _describe(defs)
    document: dict[str, Any] = _draft7(
        {
            "$schema": SCHEMA_DIALECT,
            "title": "responder rule (v1)",
            "description": (
                "One rule: one YAML document of a rule file (separate documents with ---). "
                "Generated by `responder rules schema`; see docs/rules.md."
            ),
            "$ref": "#/$defs/Rule",
        }
    )
    document["definitions"] = _draft7(dict(sorted(defs.items())))
    return document


def schema_text() -> str:
    """The schema as written to rules/schema.json (2-space indent, trailing newline)."""
    return json.dumps(rule_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_command(*, out: TextIO) -> int:
    """Print the schema; exit 0."""
    out.write(schema_text())
    return 0
