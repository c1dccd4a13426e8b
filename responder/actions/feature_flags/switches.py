"""Feature-flag kill switches: `feature_flag.disable` and `feature_flag.enable` (containment).

`with.provider` picks the backend, each in its own module with its own parameters:
`unleash` (admin API), `flagd` (a flag file, or a Kubernetes ConfigMap through the KubeApi
port), `launchdarkly` (semantic patch) and `http` (a home-grown config service). Every
provider reads the flag first (refusing unknown flags and environments, skipping the change
when it is already in place), changes it, and reads it back: `StepResult.verified` says
whether the read-back confirmed it (None only for `http` without a `verify` block).
Validation errors name the field as written (`with.flag: ...`), without the provider prefix
pydantic puts in front of tagged-union errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import InitErrorDetails

from responder.actions.base import ActionContext, ActionSpec, Observation, StepResult
from responder.actions.feature_flags import flagd, flagd_configmap, http, launchdarkly, unleash
from responder.actions.feature_flags.flagd import FlagdParams
from responder.actions.feature_flags.http import HttpFlagParams
from responder.actions.feature_flags.launchdarkly import LaunchDarklyParams
from responder.actions.feature_flags.unleash import UnleashParams
from responder.models.plans import ActionClass
from responder.models.runs import StepRecord

ProviderParams = Annotated[
    UnleashParams | FlagdParams | LaunchDarklyParams | HttpFlagParams,
    Field(discriminator="provider"),
]
PROVIDERS = ("unleash", "flagd", "launchdarkly", "http")


class FeatureFlagParams(RootModel[ProviderParams]):
    """`with:` of `feature_flag.disable`/`enable`: one provider's parameters."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _plain_locations(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Report `flag`, not `unleash.flag`: the provider is a field, not a nesting level."""
        try:
            return handler(value)
        except ValidationError as exc:
            details: list[InitErrorDetails] = []
            for error in exc.errors(include_url=False):
                loc, kind = error["loc"], error["type"]
                if kind in ("union_tag_not_found", "union_tag_invalid"):
                    loc = ("provider",)
                    kind = "missing" if kind == "union_tag_not_found" else kind
                elif loc and loc[0] in PROVIDERS:
                    loc = loc[1:]
                detail = InitErrorDetails(type=kind, loc=loc, input=error["input"])
                if "ctx" in error and kind != "missing":
                    detail["ctx"] = error["ctx"]
                details.append(detail)
            raise ValidationError.from_exception_data(exc.title, details) from None


def _runner(on: bool) -> Callable[[FeatureFlagParams, ActionContext], Awaitable[StepResult]]:
    async def run(params: FeatureFlagParams, ctx: ActionContext) -> StepResult:
        target = params.root
        if isinstance(target, UnleashParams):
            return await unleash.switch(target, ctx, on)
        if isinstance(target, FlagdParams) and target.config_map is not None:
            return await flagd_configmap.switch(target, ctx, on)
        if isinstance(target, FlagdParams):
            return await flagd.switch(target, ctx, on)
        if isinstance(target, LaunchDarklyParams):
            return await launchdarkly.switch(target, ctx, on)
        return await http.switch(target, ctx, on)

    return run


def _observer(
    on: bool,
) -> Callable[[FeatureFlagParams, ActionContext, StepRecord], Awaitable[Observation]]:
    async def observe(
        params: FeatureFlagParams, ctx: ActionContext, step: StepRecord
    ) -> Observation:
        """The flag's state now (Unleash, LaunchDarkly): the wanted one -> present, the other
        -> absent; flagd and http providers -> unknown (not read back after a crash yet)."""
        target = params.root
        enabled: bool | None = None
        if isinstance(target, UnleashParams):
            enabled = await unleash.read_enabled(target, ctx)
        elif isinstance(target, LaunchDarklyParams):
            enabled = await launchdarkly.read_enabled(target, ctx)
        if enabled is None:
            return Observation.UNKNOWN
        return Observation.PRESENT if enabled is on else Observation.ABSENT

    return observe


def _describer(on: bool) -> Callable[[FeatureFlagParams], dict[str, Any]]:
    def describe(params: FeatureFlagParams) -> dict[str, Any]:
        target = params.root
        if isinstance(target, UnleashParams):
            return unleash.describe(target, on)
        if isinstance(target, FlagdParams) and target.config_map is not None:
            return flagd_configmap.describe(target, on)
        if isinstance(target, FlagdParams):
            return flagd.describe(target, on)
        if isinstance(target, LaunchDarklyParams):
            return launchdarkly.describe(target, on)
        return http.describe(target, on)

    return describe


def _check(params: FeatureFlagParams, allowed_hosts: tuple[str, ...]) -> None:
    target = params.root
    if isinstance(target, UnleashParams):
        unleash.check(target, allowed_hosts)
    elif isinstance(target, LaunchDarklyParams):
        launchdarkly.check(target, allowed_hosts)
    elif isinstance(target, HttpFlagParams):
        http.check(target, allowed_hosts)


def _check_files(params: FeatureFlagParams, dirs: tuple[str, ...]) -> None:
    if isinstance(params.root, FlagdParams):
        flagd.check_files(params.root, dirs)


def _check_namespaces(params: FeatureFlagParams, allowed: tuple[str, ...]) -> None:
    if isinstance(params.root, FlagdParams):
        flagd.check_namespaces(params.root, allowed)


_BLAST = (
    "one flag in one environment (Unleash, LaunchDarkly), one flag of one flag file below "
    "RESPONDER_FLAGD_FILE_DIRS or of one ConfigMap in RESPONDER_K8S_ALLOWED_NAMESPACES "
    "(flagd), or one configured request to an allowlisted host (http); every client of that "
    "flag sees the change"
)

FEATURE_FLAG_DISABLE: ActionSpec[FeatureFlagParams] = ActionSpec(
    name="feature_flag.disable",
    params_model=FeatureFlagParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=60),
    blast_radius=_BLAST + "; turning a flag off switches the feature off for everyone",
    description="Kill switch: turn a feature flag off (Unleash, flagd, LaunchDarkly, HTTP) "
    "and verify it by reading it back.",
    run=_runner(False),
    describe=_describer(False),
    check=_check,
    check_files=_check_files,
    check_namespaces=_check_namespaces,
    observe=_observer(False),
    idempotent=True,  # a flag set twice is set once
)

FEATURE_FLAG_ENABLE: ActionSpec[FeatureFlagParams] = ActionSpec(
    name="feature_flag.enable",
    params_model=FeatureFlagParams,
    action_class=ActionClass.CONTAINMENT,
    default_timeout=timedelta(seconds=60),
    blast_radius=_BLAST + "; turning a flag on exposes the feature to everyone it targets",
    description="Turn a feature flag back on (Unleash, flagd, LaunchDarkly, HTTP) and verify "
    "it by reading it back.",
    run=_runner(True),
    describe=_describer(True),
    check=_check,
    check_files=_check_files,
    check_namespaces=_check_namespaces,
    observe=_observer(True),
    idempotent=True,  # a flag set twice is set once
)
