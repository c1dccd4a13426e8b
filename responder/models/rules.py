"""The v1 rule file shape: match, guards and ordered steps (frozen, validated, no IO)."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from responder.models.durations import Duration

_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,126}[a-z0-9])?$")
_STEP_ID = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MATCHER = re.compile(
    r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"=~!]\S*)?)\s*$'
)
_SEVERITY = re.compile(r"^\s*(>=|<=|>|<|==|=|!=)?\s*([A-Za-z0-9_-]+)\s*$")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_ESCAPE = re.compile(r"\\(.)")


def _unescape(quoted: str) -> str:
    """Undo the backslash escapes of a quoted matcher value (`\\"`, `\\\\`, `\\n`)."""
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), quoted)


class MatchOp(StrEnum):
    """Alertmanager matcher operators."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


class Matcher(BaseModel):
    """One Alertmanager-syntax label matcher, e.g. `breaker=~"pagerduty|slack"`.

    Regexes are anchored on both ends, as in Alertmanager.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    op: MatchOp
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse `label<op>"value"` (quotes optional for simple values)."""
        found = _MATCHER.match(text)
        if found is None:
            raise ValueError(
                f'invalid matcher {text!r}; write label="value", label!="value", '
                'label=~"regex" or label!~"regex"'
            )
        label, op, quoted, bare = found.groups()
        value = _unescape(quoted) if quoted is not None else bare
        matcher = cls(label=label, op=MatchOp(op), value=value or "")
        if matcher.op in (MatchOp.RE, MatchOp.NRE):
            try:
                re.compile(matcher.value)
            except re.error as exc:
                raise ValueError(f"invalid regex in matcher {text!r}: {exc}") from exc
        return matcher

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op.value}"{escaped}"'


class SourceSelector(StrEnum):
    """Which intake a rule listens to."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    SENTRY = "sentry"
    ANY = "any"


class StatusSelector(StrEnum):
    """Which alert status a rule listens to (default: firing)."""

    FIRING = "firing"
    RESOLVED = "resolved"
    ANY = "any"


class SeverityOp(StrEnum):
    """Comparison against the severity ladder."""

    GE = ">="
    GT = ">"
    LE = "<="
    LT = "<"
    EQ = "=="
    NE = "!="


class SeverityCondition(BaseModel):
    """`>= warning`: compare an alert's severity rank with a named level."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: SeverityOp
    level: str

    @classmethod
    def parse(cls, text: str) -> SeverityCondition:
        """Parse `>= warning`, `critical` (meaning `==`), `< P2` and so on."""
        found = _SEVERITY.match(text)
        if found is None:
            raise ValueError(
                f"invalid severity condition {text!r}; write e.g. '>= warning' or 'critical'"
            )
        op = found.group(1) or "=="
        return cls(op=SeverityOp("==" if op == "=" else op), level=found.group(2).lower())

    def __str__(self) -> str:
        return f"{self.op.value} {self.level}"


class RuleMatch(BaseModel):
    """Which alerts a rule applies to: all conditions must hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: SourceSelector = SourceSelector.ANY
    status: StatusSelector = StatusSelector.FIRING
    matchers: tuple[Matcher, ...] = ()
    severity: SeverityCondition | None = None

    @field_validator("matchers", mode="before")
    @classmethod
    def _parse_matchers(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(Matcher.parse(v) if isinstance(v, str) else v for v in value)
        return value

    @field_validator("severity", mode="before")
    @classmethod
    def _parse_severity(cls, value: Any) -> Any:
        return SeverityCondition.parse(value) if isinstance(value, str) else value

    @field_serializer("matchers")
    def _matchers_as_text(self, matchers: tuple[Matcher, ...]) -> list[str]:
        return [str(m) for m in matchers]

    @field_serializer("severity")
    def _severity_as_text(self, severity: SeverityCondition | None) -> str | None:
        return str(severity) if severity is not None else None

    @property
    def alertname(self) -> str | None:
        """The exact `alertname="..."` this rule needs, if any (used to index rules)."""
        for matcher in self.matchers:
            if matcher.label == "alertname" and matcher.op is MatchOp.EQ:
                return matcher.value
        return None


class Budget(BaseModel):
    """At most `max` runs per `per` window for one (rule, guard key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max: int = Field(ge=1)
    per: Duration

    @field_validator("per")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if value.total_seconds() <= 0:
            raise ValueError("budget window must be longer than 0s")
        return value


class Guards(BaseModel):
    """What keeps a rule from acting too often: key, `for:` delay, cooldown, budgets."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    key: str | None = None
    for_: Duration | None = Field(default=None, alias="for")
    cooldown: Duration | None = None
    budget: tuple[Budget, ...] = ()

    @field_validator("budget", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return (value,)
        return value


class Approval(BaseModel):
    """A human must approve the step before it runs; the request expires after `ttl`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required: bool = True
    ttl: Duration = timedelta(minutes=30)
    approvers: tuple[str, ...] = ()  # approver names or groups; empty: any approver


class StepSpec(BaseModel):
    """One step of a rule: an action with templated parameters, a condition, an approval."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str
    action: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    if_: str | None = Field(default=None, alias="if")
    approval: Approval | None = None
    timeout: Duration | None = None
    # None: the action's default (notify.* tolerate failures, everything else does not)
    continue_on_failure: bool | None = None

    @field_validator("id")
    @classmethod
    def _step_id(cls, value: str) -> str:
        if not _STEP_ID.match(value):
            raise ValueError(
                f"invalid step id {value!r}: use lower-case letters, digits and _ "
                "(it is used as steps.<id> in templates)"
            )
        return value

    @field_validator("approval", mode="before")
    @classmethod
    def _approval_shorthand(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {"required": value}
        return value

    @property
    def needs_approval(self) -> bool:
        """Whether this step waits for a human before it runs."""
        return self.approval is not None and self.approval.required


class Rule(BaseModel):
    """One rule (one YAML document): which alerts, what guards, which steps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    description: str = ""
    enabled: bool = True
    dry_run: bool = False
    match: RuleMatch = Field(default_factory=RuleMatch)
    guards: Guards = Field(default_factory=Guards)
    steps: tuple[StepSpec, ...] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(
                f"invalid rule id {value!r}: use a slug of lower-case letters, digits and '-'"
            )
        return value

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Rule:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"duplicate step id {step.id!r} in rule {self.id!r}")
            seen.add(step.id)
        return self


class SourceLocation(BaseModel):
    """Where a rule was defined, for `file:line` messages."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class LoadedRule(BaseModel):
    """A validated rule together with where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Rule
    location: SourceLocation
