"""Where the repository's own files are, for tests that read them (rules/, deploy/, docs/...)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository's root directory: the one holding pyproject.toml."""
