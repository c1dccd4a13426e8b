"""`feature_flag.disable`/`enable` with `provider: flagd`: rewrite a flagd flag file (verified).

flagd has no write API; it watches its source. One run, through the FlagFileApi port:
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

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.actions.feature_flag_calls import fitted
from responder.actions.registry import ActionContext, StepResult
from responder.core.file_allowlists import SETTING_NAME, check_flag_file, flag_path_problem
from responder.core.flagd_documents import FlagView, read_flag, switch_flag
from responder.errors import PermanentError

_FLAG_KEY_MAX = 256


class FlagdParams(BaseModel):
    """`with:` of a feature-flag step for a flagd flag file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["flagd"]
    path: str = Field(min_length=1, max_length=1024)
    flag: str = Field(min_length=1, max_length=_FLAG_KEY_MAX)
    variant: str | None = Field(default=None, min_length=1, max_length=_FLAG_KEY_MAX)
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        problem = flag_path_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("flag", "variant")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(not (" " <= ch <= "~") for ch in value):
            raise ValueError("write printable ASCII only")
        return value

    def variant_for(self, on: bool) -> str:
        """The variant to serve: `variant`, else `on` to enable and `off` to disable."""
        return self.variant or ("on" if on else "off")


def _view(view: FlagView) -> dict[str, Any]:
    return {
        "state": view.state,
        "default_variant": view.default_variant,
        "targeting": view.has_targeting,
    }


async def switch(params: FlagdParams, ctx: ActionContext, on: bool) -> StepResult:
    """Make the flag serve the variant to every client, then read the file back."""
    files = ctx.flag_files
    if files is None:
        raise PermanentError(
            f"flagd flag files are not configured: set {SETTING_NAME} to the directories of "
            "the flag files responder may rewrite"
        )
    variant = params.variant_for(on)
    where = f"flagd flag {params.flag} in {params.path}"
    text = await files.read_text(params.path, timeout_seconds=params.timeout_seconds)
    change = switch_flag(text, params.flag, variant, params.path)
    output: dict[str, Any] = {
        "provider": "flagd",
        "path": params.path,
        "flag": params.flag,
        "variant": variant,
        "before": _view(change.before),
        "after": _view(change.after),
        "written": False,
    }
    if not change.changed:
        output["note"] = f"already serves {variant!r} to every client; file not written"
        return fitted(True, f"{where} already serves {variant}; not written", output, True, ctx)
    if change.removed_targeting is not None:
        output["removed_targeting"] = change.removed_targeting  # to restore it by hand
    await files.replace_text(
        params.path, change.text, expected=text, timeout_seconds=params.timeout_seconds
    )
    output["written"] = True
    after = read_flag(
        await files.read_text(params.path, timeout_seconds=params.timeout_seconds),
        params.flag,
        params.path,
    )
    output["after"] = _view(after)
    old = change.before.default_variant
    if after.serves(variant):
        return fitted(True, f"{where}: {old} -> {variant} (verified)", output, True, ctx)
    summary = f"{where}: written, but it reads default {after.default_variant} (expected {variant})"
    return fitted(False, summary, output, False, ctx)


def describe(params: FlagdParams, on: bool) -> dict[str, Any]:
    """The edit it would make to the file."""
    variant = params.variant_for(on)
    return {
        "provider": "flagd",
        "file": params.path,
        "flag": params.flag,
        "set": {"state": "ENABLED", "defaultVariant": variant},
        "remove": ["targeting"],
        "write": "temporary file in the same directory, then rename over the file",
        "verify": {"reread": params.path, "expect": {"defaultVariant": variant}},
    }


def check_files(params: FlagdParams, dirs: tuple[str, ...]) -> None:
    """Plan time: the file must lie below RESPONDER_FLAGD_FILE_DIRS."""
    check_flag_file(params.path, dirs)
