"""Shared fixtures: an app factory over real SQLite, a real local HTTP target, rule files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from responder.settings import Settings
from responder.web.app import create_app
from tests.fake_actions import registry_with_containment
from tests.targets import Target, running_target

pytest_plugins = ["tests.postgres_service", "tests.redis_service", "tests.k8s_service"]

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READER_TOKEN = "reader-token"
READ = {"Authorization": f"Bearer {READER_TOKEN}"}  # may read the operator API, never decide

AppFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """A counting HTTP target on 127.0.0.1."""
    async with running_target() as started:
        yield started


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """An empty rules directory; tests write YAML into it."""
    path = tmp_path / "rules"
    path.mkdir()
    return path


def make_settings(tmp_path: Path, rules_dir: Path, **overrides: Any) -> Settings:
    """Settings for one test: its own data dir and rules, short timeouts."""
    values: dict[str, Any] = {
        "rules_dir": rules_dir,
        "data_dir": tmp_path / "data",
        "webhook_token": SecretStr(TOKEN),
        "sentry_client_secret": SecretStr("test-client-secret"),
        "reader_tokens": SecretStr(f"tester:{READER_TOKEN}"),
        "workers": 2,
        "drain_seconds": 2.0,
        "rules_poll_seconds": 0.1,
        "timer_poll_seconds": 0.1,
        "step_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def make_client(tmp_path: Path, rules_dir: Path, aiohttp_client: Any) -> AppFactory:
    """Build the real app (real SQLite, in-process coordinator) and a client for it."""

    async def build(**overrides: Any) -> TestClient[Any, Any]:
        settings = make_settings(tmp_path, rules_dir, **overrides)
        app = create_app(settings, registry=registry_with_containment())
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return build


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll `predicate` until it holds (fails the test after `timeout` seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def _dump_asyncio_tasks(signum: int, frame: object) -> None:
    """`kill -USR1 <pytest pid>` prints every asyncio task of the running loop (for hangs)."""
    import sys

    loop = asyncio._get_running_loop()
    if loop is None:
        print("no running event loop", file=sys.stderr)
        return
    for task in asyncio.all_tasks(loop):
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)


def pytest_configure(config: pytest.Config) -> None:
    import signal

    signal.signal(signal.SIGUSR1, _dump_asyncio_tasks)


@pytest.fixture(autouse=True)
def _hang_watchdog() -> Iterator[None]:
    """If a test (with its teardown) runs past 60 s, dump the asyncio tasks once."""
    import os
    import signal
    import threading

    timer = threading.Timer(60.0, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()
