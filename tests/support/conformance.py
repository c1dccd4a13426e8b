"""Finds the conformance payloads (real webhook bodies) that tests load byte for byte.

The directory is the repository's `examples/payloads` (the README's "Try it" posts the same
files), unless the environment variable `RESPONDER_CONFORMANCE_DIR` names another one (either
the `payloads` directory itself or a directory holding it).
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.paths import REPO

SOURCES = ("alertmanager", "grafana", "sentry")


def _payload_dir() -> Path:
    configured = os.environ.get("RESPONDER_CONFORMANCE_DIR")
    if not configured:
        return REPO / "examples" / "payloads"
    path = Path(configured).expanduser().resolve()
    return path / "payloads" if (path / "payloads").is_dir() else path


PAYLOAD_DIR = _payload_dir()


def load(name: str) -> bytes:
    """The exact bytes of one payload, e.g. `load("alertmanager/captured-firing-single.json")`.

    A bare file name is looked up in every source directory.
    """
    direct = PAYLOAD_DIR / name
    if direct.is_file():
        return direct.read_bytes()
    for source in SOURCES:
        candidate = PAYLOAD_DIR / source / name
        if candidate.is_file():
            return candidate.read_bytes()
    raise FileNotFoundError(f"no conformance payload {name!r} under {PAYLOAD_DIR}")


def all_payloads(source: str) -> list[Path]:
    """Every `*.json` payload of one source (alertmanager, grafana, sentry), sorted by name.

    Raises when there are none, so a missing directory fails collection loudly instead of
    turning every parametrized test into a skip.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    found = sorted((PAYLOAD_DIR / source).glob("*.json"))
    if not found:
        raise FileNotFoundError(
            f"no {source} payloads under {PAYLOAD_DIR}; set RESPONDER_CONFORMANCE_DIR"
        )
    return found
