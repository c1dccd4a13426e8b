"""Kill-switch edits of flagd flag definitions (pure): document text in, document text out.

flagd has no write API, so a kill switch rewrites the source flagd syncs from: a flag file,
or a ConfigMap value (one JSON string). Both share these functions.

`switch_flag(text, flag, variant)` makes `variant` what every client gets:
- `defaultVariant` becomes `variant` (which must be one of the flag's `variants`);
- `targeting` is removed: targeting overrides `defaultVariant`, so a rule resolving to `on`
  would still serve `on` (reason TARGETING_MATCH); the removed rule is returned so it can be
  recorded and restored by hand;
- `state` becomes `ENABLED`. `state: DISABLED` is never used as the kill switch: since flagd
  v0.16.0 a DISABLED flag evaluates with reason DISABLED and no value (older flagd: not
  found), so each application falls back to its *code default*, which may be the unsafe one.

Other flags, `$schema`, `$evaluators`, metadata and key order are kept; the text is written
back with the indentation of the original (and its trailing newline). YAML is not handled.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from responder.errors import PermanentError

_INDENT = re.compile(r"\{[ \t]*\r?\n([ \t]+)\S")
_SHOWN_NAMES = 20


@dataclass(frozen=True)
class FlagView:
    """What a client evaluating one flag gets, as far as the document says."""

    state: str | None
    default_variant: str | None
    variants: tuple[str, ...]
    has_targeting: bool

    def serves(self, variant: str) -> bool:
        """Whether every evaluation resolves to `variant` (no targeting, ENABLED)."""
        return (
            self.state == "ENABLED" and self.default_variant == variant and not (self.has_targeting)
        )


@dataclass(frozen=True)
class FlagSwitch:
    """The outcome of `switch_flag`: the new text (== the old when nothing had to change)."""

    text: str
    changed: bool
    before: FlagView
    after: FlagView
    removed_targeting: Any  # the targeting rule taken out, or None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_document(text: str, where: str) -> dict[str, Any]:
    """The flag definition document; PermanentError naming `where` when it is not one."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise PermanentError(f"{where} is not valid JSON ({exc}); fix the file first") from None
    if not isinstance(document, dict) or not isinstance(document.get("flags"), dict):
        raise PermanentError(
            f'{where} is not a flagd flag definition: expected an object with a "flags" object'
        )
    return document


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN_NAMES])
    more = len(items) - _SHOWN_NAMES
    return (shown + (f" and {more} more" if more > 0 else "")) or "none"


def _definition(document: dict[str, Any], flag: str, where: str) -> dict[str, Any]:
    flags: dict[str, Any] = document["flags"]
    if flag not in flags:
        raise PermanentError(
            f"flag {flag!r} is not defined in {where} (flags: {_names(sorted(flags))}); "
            "fix the flag parameter or the alert label"
        )
    definition = flags[flag]
    if not isinstance(definition, dict) or not isinstance(definition.get("variants"), dict):
        raise PermanentError(f'flag {flag!r} in {where} has no "variants" object; fix the file')
    return definition


def _view(definition: dict[str, Any]) -> FlagView:
    state, default = definition.get("state"), definition.get("defaultVariant")
    return FlagView(
        state=state if isinstance(state, str) else None,
        default_variant=default if isinstance(default, str) else None,
        variants=tuple(str(name) for name in definition["variants"]),
        has_targeting=definition.get("targeting") not in (None, {}),
    )


def read_flag(text: str, flag: str, where: str) -> FlagView:
    """The view of `flag` in the document `text` (PermanentError: not a document, no flag)."""
    return _view(_definition(parse_document(text, where), flag, where))


def render_like(document: dict[str, Any], original: str) -> str:
    """`document` as JSON text in the style of `original` (indentation, final newline)."""
    if "\n" in original.strip():
        found = _INDENT.search(original)
        indent = found.group(1) if found else "  "
        text = json.dumps(document, indent=indent, ensure_ascii=False)
    else:
        text = json.dumps(document, ensure_ascii=False)
    return text + "\n" if original.endswith("\n") else text


def switch_flag(text: str, flag: str, variant: str, where: str) -> FlagSwitch:
    """Make `flag` serve `variant` to everyone (see the module docstring).

    Raises PermanentError when `text` is not a flag document, the flag is not defined, or
    `variant` is not one of its variants (nothing is changed then).
    """
    document = parse_document(text, where)
    definition = _definition(document, flag, where)
    before = _view(definition)
    if variant not in before.variants:
        raise PermanentError(
            f"variant {variant!r} is not a variant of flag {flag!r} in {where} (variants: "
            f"{_names(list(before.variants))}); set the variant parameter to the safe one"
        )
    if before.serves(variant):
        return FlagSwitch(text, False, before, before, None)
    removed = definition.get("targeting")
    updated = {key: value for key, value in definition.items() if key != "targeting"}
    updated["state"] = "ENABLED"
    updated["defaultVariant"] = variant
    document["flags"][flag] = updated
    after = _view(updated)
    return FlagSwitch(render_like(document, text), True, before, after, removed)
