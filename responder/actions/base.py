"""What every action imports: its spec, context and result; the registry class holding specs.

An action is an `ActionSpec`: a frozen pydantic params model (`extra="forbid"`), an async `run`
written against ports only (`ActionContext`), a `describe` for dry-run/explain that shows the
exact request it would send (redacted), and an optional static `check` run at plan time.

Actions raise TemporaryError for retryable failures, PermanentError otherwise (NotAllowedError
when policy refuses), or return `StepResult(ok=False)` when the target answered, but not as
expected.

The registry holds specs and imports no action; the shipped list is assembled in `shipped`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from responder.core.takeovers import Observation as Observation  # re-exported for actions
from responder.errors import PermanentError
from responder.models.plans import ActionClass
from responder.models.runs import StepRecord
from responder.ports.flag_files import FlagFileApi
from responder.ports.http import HttpApi
from responder.ports.kubernetes import KubeApi
from responder.ports.targets import RedisApi, SqlApi

P = TypeVar("P", bound=BaseModel)


class StepResult(BaseModel):
    """What one step produced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    summary: str  # one line for logs and notifications
    output: dict[str, Any] = Field(default_factory=dict)  # later steps read steps.<id>.output
    verified: bool | None = None  # containment: did read-back confirm the effect
    # The values only known at run time that the request carried (a restartedAt stamp, a
    # replica count, a uid read just before), shaped like `describe`'s result: they fill its
    # `<...>` placeholders in the step's record of what was sent. None: `describe` was exact.
    sent: dict[str, Any] | None = None


@dataclass(frozen=True)
class ActionContext:
    """Everything an action may use while running: ports and limits, never adapters."""

    http: HttpApi
    allowed_hosts: tuple[str, ...]
    run_id: str
    rule_id: str
    step_id: str
    output_max_bytes: int
    sql: SqlApi | None = None  # monitored PostgreSQL targets, when configured
    redis: RedisApi | None = None  # monitored Redis targets, when configured
    flag_files: FlagFileApi | None = None  # flagd flag files, when RESPONDER_FLAGD_FILE_DIRS
    kube: KubeApi | None = None  # the Kubernetes API, when RESPONDER_KUBECONFIG/K8S_IN_CLUSTER
    allowed_namespaces: tuple[str, ...] = ()  # RESPONDER_K8S_ALLOWED_NAMESPACES


@dataclass(frozen=True)
class ActionSpec(Generic[P]):
    """One action kind: its parameters, class, limits and behaviour."""

    name: str
    params_model: type[P]
    action_class: ActionClass
    default_timeout: timedelta
    blast_radius: str  # what it can touch, for humans (docs, explain, approval prompts)
    description: str
    run: Callable[[P, ActionContext], Awaitable[StepResult]]
    describe: Callable[[P], dict[str, Any]]  # the exact request it would send, redacted
    check: Callable[[P, tuple[str, ...]], None] | None = None  # (params, allowed_hosts)
    # The class of one concrete call, when it depends on the params (an HTTP GET reads, a POST
    # may write); `action_class` is then the class assumed before the params are known.
    classify: Callable[[P], ActionClass] | None = None
    # A failure is recorded but neither stops later steps nor fails the run, unless the step
    # sets `continue_on_failure: false` (notifications: a dead Slack never blocks containment).
    best_effort: bool = False
    # A static check of the files the action would rewrite (params, RESPONDER_FLAGD_FILE_DIRS).
    check_files: Callable[[P, tuple[str, ...]], None] | None = None
    # A static check of the namespace the action would touch (params,
    # RESPONDER_K8S_ALLOWED_NAMESPACES).
    check_namespaces: Callable[[P, tuple[str, ...]], None] | None = None
    # Containment read-back after a crash: (params, ports, the step as recorded before the call:
    # its described request `params` and `started_at`) -> whether the effect is present now.
    # Read-only; an error means UNKNOWN. None: the outcome of an interrupted step is never
    # guessed (it waits for an approval).
    observe: Callable[[P, ActionContext, StepRecord], Awaitable[Observation]] | None = None
    # Running it twice has the effect of running it once (reset, scale to N, flag off): an
    # interrupted step whose effect reads absent runs again instead of waiting for approval.
    idempotent: bool = False


def format_validation_error(action: str, exc: ValidationError) -> str:
    """`action 'x': invalid parameters: with.url: Field required; ...` (no input values)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"])
        problems.append(f"with.{path}: {error['msg']}" if path else f"with: {error['msg']}")
    return f"action {action!r}: invalid parameters: " + "; ".join(problems)


class ActionRegistry:
    """The set of actions rules may name, looked up by `action:`."""

    def __init__(self, specs: Iterable[ActionSpec[Any]]) -> None:
        self._specs: dict[str, ActionSpec[Any]] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"action {spec.name!r} is registered twice")
            self._specs[spec.name] = spec

    def names(self) -> tuple[str, ...]:
        """Every registered action name, sorted."""
        return tuple(sorted(self._specs))

    def get(self, name: str) -> ActionSpec[Any]:
        """The spec of `name`; PermanentError listing the known names when there is none."""
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise PermanentError(f"unknown action {name!r}; known actions: {known}") from None

    def validate(self, name: str, params: Mapping[str, Any]) -> BaseModel:
        """`params` parsed into the action's params model.

        Raises PermanentError (unknown action, or one `with.<field>: message` per problem).
        """
        spec = self.get(name)
        model: type[BaseModel] = spec.params_model
        try:
            return model.model_validate(dict(params))
        except ValidationError as exc:
            raise PermanentError(format_validation_error(name, exc)) from None
