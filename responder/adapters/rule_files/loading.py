"""Load the rule set from `*.yaml`/`*.yml` files, reporting every problem at `file:line`.

All files are read, every document is validated, and every problem found (YAML syntax,
schema, duplicate ids, unknown actions and severity levels, templates and the names and
steps they read) is collected into one `RuleSetError`, so that a single `responder rules
check` run lists everything to fix. Paths in messages are the directory as given joined
with the file name.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from responder.adapters.rule_files.yaml_lines import Path as KeyPath
from responder.adapters.rule_files.yaml_lines import YamlDocument, format_path, read_yaml_file
from responder.core.severities import SeverityScale
from responder.core.templating import (
    ALLOWED_ROOTS,
    References,
    check_condition,
    check_template,
    condition_references,
    template_references,
)
from responder.errors import RuleError, RuleSetError, TemplateError
from responder.models.rules import LoadedRule, Rule, SourceLocation

SUFFIXES = (".yaml", ".yml")
_ROOTS = ", ".join(sorted(ALLOWED_ROOTS))


def load_rules(
    directory: Path, *, known_actions: Collection[str], severity: SeverityScale
) -> tuple[LoadedRule, ...]:
    """Load and check every rule under `directory` (not recursive), in file-name order.

    Hidden files and files with other suffixes (README.md) are ignored; an empty directory
    gives no rules. Raises RuleSetError listing every problem, in file and line order.
    """
    files = _rule_files(directory)
    errors: list[RuleError] = []
    rules: list[LoadedRule] = []
    seen_ids: dict[str, str] = {}
    for path in files:
        file = str(path)
        documents, problems = read_yaml_file(path)
        errors.extend(RuleError(file, line, message) for line, message in problems)
        for document in documents:
            loaded = _load_document(file, document, known_actions, severity, errors)
            raw_id = document.data.get("id") if isinstance(document.data, dict) else None
            if isinstance(raw_id, str):
                here = f"{file}:{document.line_of(('id',))}"
                if raw_id in seen_ids:
                    errors.append(
                        RuleError(
                            file,
                            document.line_of(("id",)),
                            f"duplicate rule id {raw_id!r}: already defined at "
                            f"{seen_ids[raw_id]}; give each rule a unique id",
                            raw_id,
                        )
                    )
                else:
                    seen_ids[raw_id] = here
            if loaded is not None:
                rules.append(loaded)
    if errors:
        order = {str(path): index for index, path in enumerate(files)}
        errors.sort(key=lambda e: (order.get(e.file, -1), e.line))
        raise RuleSetError(errors)
    return tuple(rules)


def format_errors(err: RuleSetError) -> str:
    """One `file:line: message` per line (`file: message` when no line applies)."""
    lines = []
    for error in err.errors:
        where = f"{error.file}:{error.line}" if error.line > 0 else error.file
        rule = f" (rule {error.rule_id})" if error.rule_id else ""
        lines.append(f"{where}: {error.message}{rule}")
    return "\n".join(lines)


def _rule_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise RuleSetError(
            [
                RuleError(
                    str(directory),
                    0,
                    f"rules directory {what}; create it or point RESPONDER_RULES_DIR "
                    "at the directory holding the *.yaml rule files",
                )
            ]
        )
    try:
        entries = list(directory.iterdir())
    except OSError as exc:
        raise RuleSetError([RuleError(str(directory), 0, f"cannot list: {exc}")]) from exc
    found = [
        p for p in entries if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(found, key=lambda p: p.name)


def _load_document(
    file: str,
    document: YamlDocument,
    known_actions: Collection[str],
    severity: SeverityScale,
    errors: list[RuleError],
) -> LoadedRule | None:
    data = document.data
    if not isinstance(data, dict):
        errors.append(
            RuleError(
                file,
                document.line,
                f"a rule must be a mapping with id, match and steps, not {_kind(data)}",
            )
        )
        return None
    rule_id = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        rule = Rule.model_validate(data)
    except ValidationError as exc:
        details = exc.errors()
        for detail in details:
            if _is_echo(detail, details):
                continue
            path, message = _schema_problem(detail)
            errors.append(RuleError(file, document.line_of(path), message, rule_id))
        return None
    for path, message in _rule_problems(rule, known_actions, severity):
        errors.append(RuleError(file, document.line_of(path), message, rule.id))
    return LoadedRule(rule=rule, location=SourceLocation(file=file, line=document.line))


def _is_echo(detail: ErrorDetails, details: list[ErrorDetails]) -> bool:
    """A `too_short` list error caused only by its own invalid items, already reported."""
    loc = detail["loc"]
    return detail["type"] == "too_short" and any(
        len(other["loc"]) > len(loc) and other["loc"][: len(loc)] == loc for other in details
    )


def _schema_problem(detail: ErrorDetails) -> tuple[KeyPath, str]:
    """Turn one pydantic error into (path to point at, message saying what to write)."""
    path: KeyPath = tuple(part for part in detail["loc"] if isinstance(part, str | int))
    kind = detail["type"]
    if kind == "extra_forbidden" and path and isinstance(path[-1], str):
        allowed = _fields_at(path[:-1])
        hint = f"; allowed fields: {', '.join(allowed)}" if allowed else ""
        return path, f"unknown field {path[-1]!r} in {format_path(path[:-1])}{hint}"
    if kind == "missing" and path:
        return path, f"missing required field {path[-1]!r} in {format_path(path[:-1])}"
    message = detail["msg"].removeprefix("Value error, ")
    given = detail.get("input")
    if isinstance(given, list):
        # A list-level validator (matchers) quotes the bad item: point at that item.
        for index, item in enumerate(given):
            if isinstance(item, str) and repr(item) in message:
                path = (*path, index)
                break
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message}, not {_kind(given)}"
    return path, f"{format_path(path)}: {message}"


def _fields_at(path: KeyPath) -> list[str]:
    """The field names (YAML spelling) accepted at `path` inside a rule."""
    model: type[BaseModel] | None = Rule
    for part in path:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        info = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        model = _model_in(info.annotation) if info is not None else None
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (tuple, list, Union, types.UnionType):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _rule_problems(
    rule: Rule, known_actions: Collection[str], severity: SeverityScale
) -> Iterator[tuple[KeyPath, str]]:
    """Checks beyond the schema: severity levels, actions, templates and step references."""
    condition = rule.match.severity
    if condition is not None and not severity.known(condition.level):
        levels = ", ".join(severity.levels)
        yield (
            ("match", "severity"),
            f"unknown severity level {condition.level!r}; known levels: {levels}",
        )
    if rule.guards.key is not None:
        yield from _template_problems(("guards", "key"), rule.guards.key, None, None, ())
    step_ids = [step.id for step in rule.steps]
    for index, step in enumerate(rule.steps):
        base: KeyPath = ("steps", index)
        if step.action not in known_actions:
            yield (*base, "action"), _unknown_action(step.action, known_actions)
        earlier = tuple(step_ids[:index])
        if step.if_ is not None:
            yield from _template_problems(
                (*base, "if"), step.if_, step.id, earlier, step_ids, condition=True
            )
        for path, text in _strings(step.with_, (*base, "with")):
            yield from _template_problems(path, text, step.id, earlier, step_ids)


def _template_problems(
    path: KeyPath,
    text: str,
    step_id: str | None,
    earlier: tuple[str, ...] | None,
    all_steps: Collection[str],
    *,
    condition: bool = False,
) -> Iterator[tuple[KeyPath, str]]:
    """Problems of one template (or `if:` condition); `earlier` None: no step results yet."""
    try:
        if condition:
            check_condition(text)
            refs: References = condition_references(text)
        else:
            check_template(text)
            refs = template_references(text)
    except TemplateError as exc:
        yield path, f"{format_path(path)}: {exc}"
        return
    unknown = sorted(refs.roots - ALLOWED_ROOTS)
    if unknown:
        names = ", ".join(unknown)
        yield path, f"{format_path(path)} uses {names}; templates may only use {_ROOTS}"
    if earlier is None:
        if "steps" in refs.roots:
            yield path, f"{format_path(path)} cannot use steps: it is computed before any step runs"
        return
    available = ", ".join(earlier) or "none"
    for ref in sorted(refs.steps - set(earlier)):
        if ref == step_id:
            why = f"step {ref!r} cannot read its own result"
        elif ref in all_steps:
            why = f"step {ref!r} runs after step {step_id!r}"
        else:
            why = "this rule has no such step"
        yield path, f"{format_path(path)} reads steps.{ref}, but {why}; earlier steps: {available}"


def _strings(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _unknown_action(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    maybe = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(sorted(known)) or "none registered"
    return f"unknown action {name!r}{maybe}; known actions: {listed}"


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", type(None): "empty"}
    return names.get(type(value), f"a {type(value).__name__}")
