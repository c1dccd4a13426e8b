"""Directory allowlists for the files responder may rewrite (flagd flag files), pure path logic.

Rendered paths can come from alert labels, which are attacker input, so a path is accepted
only when it is absolute, plain printable text, already normal (no `.`/`..` segments, no
`//`), names a `.json` file and lies below one of the configured directories. This is the
lexical check, run at plan time and again by the adapter, which then also resolves symbolic
links before it reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from responder.errors import NotAllowedError

SETTING_NAME = "RESPONDER_FLAGD_FILE_DIRS"
_MAX_PATH = 1024


def _normal(path: str) -> bool:
    if not path.startswith("/") or "//" in path or len(path) > _MAX_PATH:
        return False
    if any(not (" " <= ch <= "~") for ch in path):
        return False
    return all(part not in (".", "..") for part in path.split("/"))


def normalise_dir(entry: str) -> str:
    """One allowlist entry as a canonical absolute directory; ValueError when it is not one."""
    text = entry.strip()
    if not text or not _normal(text.rstrip("/") or "/"):
        raise ValueError(
            f"{SETTING_NAME}: {text!r} is not an absolute, normalised directory path "
            "(write /var/lib/flagd, without '.' or '..' segments)"
        )
    return str(PurePosixPath(text))


def flag_path_problem(path: str) -> str | None:
    """Why `path` cannot name a flag file (not absolute, not normal, not *.json), or None."""
    if not _normal(path):
        return "write an absolute path without '.' or '..' segments, '//' or control characters"
    if not path.endswith(".json") or path.endswith("/.json"):
        return "only flagd JSON files (*.json) can be rewritten"
    return None


def check_flag_file(path: str, dirs: Sequence[str]) -> None:
    """Raise NotAllowedError unless `path` is a normal absolute `.json` path below `dirs`."""
    problem = flag_path_problem(path)
    if problem is not None:
        raise NotAllowedError(f"flag file path {path[:120]!a} refused: {problem}")
    if not dirs:
        raise NotAllowedError(
            f"flag file {path!r} refused: {SETTING_NAME} is empty, so no flag file may be "
            f"changed; add its directory to {SETTING_NAME}"
        )
    target = PurePosixPath(path)
    if not any(target.is_relative_to(PurePosixPath(d)) and str(target) != d for d in dirs):
        raise NotAllowedError(
            f"flag file {path!r} refused: it is not below any directory of {SETTING_NAME} "
            f"({', '.join(dirs)}); add its directory there if responder should change it"
        )
