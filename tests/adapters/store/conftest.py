"""Fixtures of the store contract suites: one harness per backend, the store it opens, and
that store seen through each role (so every test names the roles it exercises)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from responder.ports.store import AlertLog, ApprovalStore, AuditLog, RunStore, Store
from tests.adapters.store.harnesses import STORE_IMPLEMENTATIONS, SqliteHarness, StoreHarness
from tests.adapters.store.postgres_harness import PostgresHarness


@pytest.fixture(params=STORE_IMPLEMENTATIONS)
async def store_harness(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreHarness]:
    """One harness per implementation; it closes what it opened and checks for leaks."""
    made: StoreHarness
    if request.param == "sqlite":
        made = SqliteHarness(tmp_path / "data" / "responder.db")
    elif request.param == "postgres":  # its own empty database on a real server
        made = PostgresHarness(request.getfixturevalue("postgres_database"))
    else:
        raise AssertionError(f"no harness for {request.param}")
    yield made
    await made.aclose()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not others, f"tasks left running: {others}"


@pytest.fixture
async def store(store_harness: StoreHarness) -> Store:
    """An open store with an empty database."""
    return await store_harness.open()


@pytest.fixture
def alert_log(store: Store) -> AlertLog:
    """The open store as an alert log."""
    return store


@pytest.fixture
def run_store(store: Store) -> RunStore:
    """The open store as the runs' store."""
    return store


@pytest.fixture
def audit_log(store: Store) -> AuditLog:
    """The open store as the audit log."""
    return store


@pytest.fixture
def approval_store(store: Store) -> ApprovalStore:
    """The open store as the approvals' store."""
    return store
