"""`feature_flag.disable`/`enable` with `provider: flagd`: rewrite a flagd flag source (verified).

flagd has no write API; it watches its source. The parameters name exactly one source: a flag
FILE (`path`, this module) or a Kubernetes ConfigMap (`namespace`, `config_map`, `key`: see
flagd_configmap.py). One run on a file, through the FlagFileApi port:
1. read the file (only below RESPONDER_FLAGD_FILE_DIRS, no symbolic links);
2. `switch_flag` (core/flagd_documents.py): `defaultVariant` -> the variant (disable: `off`,
   enable: `on` unless `variant` says otherwise), `targeting` removed, `state: ENABLED`;
   an unknown flag or variant is refused, listing what exists; a flag that already serves
   the variant to everyone is left alone (verified, nothing written);
3. replace the file atomically (temp file + rename in the same directory) if it still holds
   what was read (otherwise a temporary error: the retry reads it again);
4. read the file again: the flag must serve the variant.

A flagd watching the file (or the OpenFeature flagd provider in file mode) reloads it on the
next change of its modification time.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from responder.actions.base import ActionContext, StepResult
from responder.actions.calls import fitted
from responder.actions.kubernetes_access import Namespace, ObjectName
from responder.core.file_allowlists import SETTING_NAME, check_flag_file, flag_path_problem
from responder.core.flagd_documents import FlagView, read_flag, switch_flag
from responder.core.kube_names import check_namespace
from responder.errors import PermanentError

_FLAG_KEY_MAX = 256
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


def config_map_key(value: str) -> str:
    """`value` if it is a valid ConfigMap data key (as Kubernetes checks it), else ValueError."""
    if not _DATA_KEY.match(value) or value in (".", ".."):
        raise ValueError(
            "a ConfigMap data key is 1-253 of A-Z a-z 0-9 - _ . (not '.' or '..'), e.g. "
            "flags.flagd.json"
        )
    return value


class FlagdParams(BaseModel):
    """`with:` of a feature-flag step for flagd: a flag file (`path`) or a ConfigMap
    (`namespace`, `config_map`, `key`), exactly one of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["flagd"]
    path: str | None = Field(default=None, min_length=1, max_length=1024)
    namespace: Namespace | None = None
    config_map: ObjectName | None = None
    key: str | None = Field(default=None, min_length=1, max_length=253)
    flag: str = Field(min_length=1, max_length=_FLAG_KEY_MAX)
    variant: str | None = Field(default=None, min_length=1, max_length=_FLAG_KEY_MAX)
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        problem = None if value is None else flag_path_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else config_map_key(value)

    @model_validator(mode="after")
    def _one_source(self) -> FlagdParams:
        if (self.path is None) == (self.config_map is None):
            raise ValueError(
                "give exactly one flag source: path (a flag file) or config_map with namespace "
                "and key (a ConfigMap)"
            )
        if self.config_map is not None and (self.namespace is None or self.key is None):
            raise ValueError(
                "a ConfigMap source needs namespace, config_map and key (the data key "
                "holding the flagd JSON document, e.g. flags.flagd.json)"
            )
        if self.path is not None and (self.namespace is not None or self.key is not None):
            raise ValueError("namespace and key belong to a ConfigMap source, not to a path")
        return self

    @field_validator("flag", "variant")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(not (" " <= ch <= "~") for ch in value):
            raise ValueError("write printable ASCII only")
        return value

    def variant_for(self, on: bool) -> str:
        """The variant to serve: `variant`, else `on` to enable and `off` to disable."""
        return self.variant or ("on" if on else "off")


def flag_output(view: FlagView) -> dict[str, Any]:
    """A flag's view as the step output shows it."""
    return {
        "state": view.state,
        "default_variant": view.default_variant,
        "targeting": view.has_targeting,
    }


def _file_path(params: FlagdParams) -> str:
    if params.path is None:  # the caller routes ConfigMap sources elsewhere
        raise PermanentError("this flagd step names a ConfigMap, not a flag file (`path`)")
    return params.path


async def switch(params: FlagdParams, ctx: ActionContext, on: bool) -> StepResult:
    """Make the flag serve the variant to every client, then read the file back."""
    path = _file_path(params)
    files = ctx.flag_files
    if files is None:
        raise PermanentError(
            f"flagd flag files are not configured: set {SETTING_NAME} to the directories of "
            "the flag files responder may rewrite"
        )
    variant = params.variant_for(on)
    where = f"flagd flag {params.flag} in {path}"
    text = await files.read_text(path, timeout_seconds=params.timeout_seconds)
    change = switch_flag(text, params.flag, variant, path)
    output: dict[str, Any] = {
        "provider": "flagd",
        "path": path,
        "flag": params.flag,
        "variant": variant,
        "before": flag_output(change.before),
        "after": flag_output(change.after),
        "written": False,
    }
    if not change.changed:
        output["note"] = f"already serves {variant!r} to every client; file not written"
        return fitted(ctx, True, f"{where} already serves {variant}; not written", output, True)
    if change.removed_targeting is not None:
        output["removed_targeting"] = change.removed_targeting  # to restore it by hand
    await files.replace_text(
        path, change.text, expected=text, timeout_seconds=params.timeout_seconds
    )
    output["written"] = True
    after = read_flag(
        await files.read_text(path, timeout_seconds=params.timeout_seconds),
        params.flag,
        path,
    )
    output["after"] = flag_output(after)
    old = change.before.default_variant
    if after.serves(variant):
        return fitted(ctx, True, f"{where}: {old} -> {variant} (verified)", output, True)
    summary = f"{where}: written, but it reads default {after.default_variant} (expected {variant})"
    return fitted(ctx, False, summary, output, False)


def describe(params: FlagdParams, on: bool) -> dict[str, Any]:
    """The edit it would make to the file."""
    path = _file_path(params)
    variant = params.variant_for(on)
    return {
        "provider": "flagd",
        "file": path,
        "flag": params.flag,
        "set": {"state": "ENABLED", "defaultVariant": variant},
        "remove": ["targeting"],
        "write": "temporary file in the same directory, then rename over the file",
        "verify": {"reread": path, "expect": {"defaultVariant": variant}},
    }


def check_files(params: FlagdParams, dirs: tuple[str, ...]) -> None:
    """Plan time: the file must lie below RESPONDER_FLAGD_FILE_DIRS."""
    if params.path is not None:
        check_flag_file(params.path, dirs)


def check_namespaces(params: FlagdParams, allowed: tuple[str, ...]) -> None:
    """Plan time: a ConfigMap's namespace must be in RESPONDER_K8S_ALLOWED_NAMESPACES."""
    if params.namespace is not None:
        check_namespace(params.namespace, allowed)
