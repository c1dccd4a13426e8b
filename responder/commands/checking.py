"""`responder rules check [DIR]`: validate rule files, one `file:line: message` per error."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from responder.actions.shipped import default_registry
from responder.adapters.rule_files.loading import format_errors, load_rules
from responder.core.severities import SeverityScale
from responder.errors import RuleSetError
from responder.settings import Settings


def check_rules(directory: Path | None, *, out: TextIO, err: TextIO) -> int:
    """Exit 0 when every rule loads, 1 with the errors on stderr otherwise."""
    settings = Settings()
    target = directory or settings.rules.rules_dir
    try:
        rules = load_rules(
            target,
            known_actions=default_registry().names(),
            severity=SeverityScale(settings.rules.severity_levels),
        )
    except RuleSetError as exc:
        err.write(format_errors(exc) + "\n")
        count = len(exc.errors)
        err.write(f"{count} error{'s' if count != 1 else ''} in {target}\n")
        return 1
    files = len({r.location.file for r in rules})
    out.write(f"ok: {len(rules)} rules in {files} files under {target}\n")
    return 0
