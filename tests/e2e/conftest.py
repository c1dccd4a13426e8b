"""The `e2e` marker follows this directory: every test collected under tests/e2e/ gets it, and a
test elsewhere that asks for it is refused, so `-m "not e2e"` (`./scripts/test --quick`) and
the directory cannot drift apart."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every item under tests/e2e/ `e2e`; fail the run if one elsewhere carries the mark.

    The hook sees the whole session's items (a conftest's collection hook is not scoped to its
    directory), so it tells them apart by path."""
    misplaced = []
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)
        elif item.get_closest_marker("e2e") is not None:
            misplaced.append(item.nodeid)
    if misplaced:
        listed = "\n".join(f"- {nodeid}" for nodeid in misplaced)
        raise pytest.UsageError(f"marked e2e outside tests/e2e/ (move them there):\n{listed}")
