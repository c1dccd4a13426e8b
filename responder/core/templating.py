"""Sandboxed Jinja templating of rule values and `if:` conditions over an alert's context.

Pure (Jinja is not IO). One `ImmutableSandboxedEnvironment` with `StrictUndefined`, no
autoescape, no loader and no globals: templates see only the context built by
`build_context` (`labels`, `annotations`, `alert`, `steps`) plus Jinja's built-in filters,
`regex_replace` and `path_segment`. Every failure (syntax, undefined name, sandbox violation,
error raised while rendering) becomes a `TemplateError` that quotes the template and its line.

Rendering always produces strings: `"{{ labels.replicas }}"` renders to `"3"`, never `3`;
action parameter models convert types. `None` renders as the empty string. Strings without
`{{`, `{%` or `{#` are returned unchanged. Mapping keys are never rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from responder.errors import TemplateError
from responder.models.alerts import Alert

ALLOWED_ROOTS: frozenset[str] = frozenset({"labels", "annotations", "alert", "steps"})
"""The only top-level names a template or condition may use."""

_MARKERS = ("{{", "{%", "{#")
_SNIPPET = 80


def _regex_replace(
    value: Any, pattern: str, replacement: str = "", ignorecase: bool = False
) -> str:
    """`{{ labels.pod | regex_replace("-[a-z0-9]+$", "") }}`: `re.sub` on the text of value."""
    flags = re.IGNORECASE if ignorecase else 0
    return re.sub(pattern, replacement, str(value), flags=flags)


def _path_segment(value: Any) -> str:
    """`{{ labels.service | path_segment }}`: the value as ONE URL path segment.

    Every byte but RFC 3986 unreserved characters is percent-encoded (so `/`, `?`, `#`, `%`
    are too), and `.` / `..` become `%2E` / `%2E%2E`: a label can never climb out of the path
    the rule wrote (Jinja's `urlencode` keeps `/`, so `../../admin` would survive it).
    """
    text = quote(str(value), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _make_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.globals.clear()
    env.filters["regex_replace"] = _regex_replace
    env.filters["path_segment"] = _path_segment
    return env


_ENV = _make_environment()


@dataclass(frozen=True, slots=True)
class References:
    """What a template or condition reads.

    `roots` are the top-level names it uses; `steps` the step ids it reads as
    `steps.<id>` or `steps["<id>"]`; `dynamic_steps` is True when it uses `steps` in any
    other way (a loop, a computed key), which cannot be checked before it runs.
    """

    roots: frozenset[str]
    steps: frozenset[str]
    dynamic_steps: bool


def is_template(text: str) -> bool:
    """Whether `text` contains Jinja markup (otherwise it renders to itself)."""
    return any(marker in text for marker in _MARKERS)


def check_template(text: str) -> None:
    """Raise TemplateError (with Jinja's message and line) if `text` does not compile."""
    if is_template(text):
        _template(text)


def check_condition(expr: str) -> None:
    """Raise TemplateError if `expr` is not one valid Jinja expression."""
    _expression(expr)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside `value` (dicts and lists recursively) to a string.

    Other scalars (numbers, booleans, None) are returned as they are; keys are not rendered.
    """
    if isinstance(value, str):
        return render_text(value, context)
    if isinstance(value, Mapping):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(item, context) for item in value]
    return value


def render_text(text: str, context: Mapping[str, Any]) -> str:
    """Render one template string over `context`."""
    if not is_template(text):
        return text
    template = _template(text)
    try:
        return template.render(dict(context))
    except Exception as exc:
        raise _error(exc, text) from exc


def evaluate_condition(expr: str, context: Mapping[str, Any]) -> bool:
    """Evaluate a bare expression (`steps.reset.failed`, `labels.env == "prod"`) to a bool.

    A condition written as one `{{ ... }}` block is accepted too.
    """
    compiled = _expression(expr)
    try:
        return bool(compiled(**context))
    except Exception as exc:
        raise _error(exc, expr, locate=False) from exc


@lru_cache(maxsize=4096)  # rule packs repeat their templates: `{{ labels.namespace }}`...
def template_references(text: str) -> References:
    """What the template `text` reads; raises TemplateError if it does not compile."""
    if not is_template(text):
        return References(frozenset(), frozenset(), dynamic_steps=False)
    return _references(_parsed(text))


@lru_cache(maxsize=1024)
def condition_references(expr: str) -> References:
    """What the condition `expr` reads; raises TemplateError if it does not compile."""
    return _references(_parsed_expression(expr))


def referenced_roots(value: Any) -> set[str]:
    """Top-level names used by all templates inside `value` (dicts and lists recursively)."""
    roots: set[str] = set()
    for text in _strings(value):
        roots |= template_references(text).roots
    return roots


def build_context(alert: Alert, steps: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The template context for `alert`: `labels`, `annotations`, `alert` and `steps`."""
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "alert": {
            "source": alert.source.value,
            "name": alert.name,
            "status": alert.status.value,
            "severity": alert.severity,
            "fingerprint": alert.fingerprint,
            "starts_at": alert.starts_at.isoformat() if alert.starts_at else None,
            "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
            "links": dict(alert.links),
            "group_key": alert.group_key,
        },
        "steps": {step_id: dict(view) for step_id, view in steps.items()},
    }


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


def _unwrap(expr: str) -> str:
    stripped = expr.strip()
    inner = stripped[2:-2]
    if stripped.startswith("{{") and stripped.endswith("}}") and "{{" not in inner:
        return inner.strip()
    return stripped


@lru_cache(maxsize=4096)
def _template(text: str) -> Template:
    try:
        return _ENV.from_string(text)
    except TemplateSyntaxError as exc:
        raise _error(exc, text) from None


@lru_cache(maxsize=4096)
def _parsed(text: str) -> nodes.Template:
    try:
        return _ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise _error(exc, text) from None


@lru_cache(maxsize=1024)
def _expression(expr: str) -> Callable[..., Any]:
    try:
        return _ENV.compile_expression(_unwrap(expr), undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise _error(exc, expr) from None


@lru_cache(maxsize=1024)
def _parsed_expression(expr: str) -> nodes.Template:
    """The same tree `compile_expression` builds: `result = <expr>`."""
    parser = Parser(_ENV, _unwrap(expr), state="variable")
    try:
        body = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError(
                "unexpected text after the expression", parser.stream.current.lineno
            )
    except TemplateSyntaxError as exc:
        raise _error(exc, expr) from None
    assign = nodes.Assign(nodes.Name("result", "store"), body, lineno=1)
    tree = nodes.Template([assign], lineno=1)
    tree.set_environment(_ENV)
    return tree


# Nodes that bind names (loop variables, `set`, macro arguments, imports...). A template
# without them reads exactly its loaded names; with them Jinja's own (slow: it runs the code
# generator) scoping analysis decides.
_BINDING_NODES: tuple[type[nodes.Node], ...] = (
    nodes.For,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.With,
    nodes.FilterBlock,
    nodes.Scope,
    nodes.Import,
    nodes.FromImport,
    nodes.Include,
    nodes.Extends,
    nodes.Block,
    nodes.OverlayScope,
    nodes.ScopedEvalContextModifier,
)


def _references(tree: nodes.Template) -> References:
    """One walk over the tree: loaded names, `steps.<id>` / `steps["<id>"]` reads, binders."""
    loaded: set[str] = set()
    step_ids: set[str] = set()
    static: set[int] = set()
    steps_names: list[nodes.Name] = []
    binds = False
    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.Name):
            if node.ctx == "load":
                loaded.add(node.name)
                if node.name == "steps":
                    steps_names.append(node)
        elif isinstance(node, nodes.Getattr) and _is_steps(node.node):
            step_ids.add(node.attr)
            static.add(id(node.node))
        elif isinstance(node, nodes.Getitem) and _is_steps(node.node):
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if isinstance(key, str):
                step_ids.add(key)
                static.add(id(node.node))
        elif isinstance(node, _BINDING_NODES):
            binds = True
    # without binding nodes the loaded names are exactly what the template reads from its
    # context; with them, Jinja's own (slower: it runs the code generator) analysis decides
    roots = frozenset(meta.find_undeclared_variables(tree)) if binds else frozenset(loaded)
    dynamic = any(id(name) not in static for name in steps_names)
    return References(roots, frozenset(step_ids), dynamic_steps=dynamic)


def _is_steps(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "steps"


def _error(exc: Exception, text: str, *, locate: bool = True) -> TemplateError:
    snippet = text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."
    if isinstance(exc, TemplateSyntaxError):
        return TemplateError(
            f"template syntax error at line {exc.lineno}: {exc.message} (in {snippet!r})"
        )
    line = _template_line(exc) if locate else None
    where = f" at line {line}" if line is not None else ""
    hint = ""
    if isinstance(exc, SecurityError):
        kind = "template not allowed by the sandbox"
    elif isinstance(exc, UndefinedError):
        kind = "undefined value in template"
        hint = '; guard it with `| default("...")` or match only alerts that carry it'
    else:
        kind = f"template failed ({type(exc).__name__})"
    return TemplateError(f"{kind}{where}: {exc}{hint} (in {snippet!r})")


def _template_line(exc: BaseException) -> int | None:
    """The template line Jinja attaches to the traceback of a rendering error."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
