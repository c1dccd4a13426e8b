"""Shared fixtures: an app factory over real SQLite, a real local HTTP target, rule files,
and the guards every test runs under (no asyncio task left running, a hang watchdog)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from responder.ports.clock import Clock
from responder.web.app import create_app
from tests.support.apps import AppFactory, make_settings
from tests.support.fake_actions import registry_with_containment
from tests.support.targets import Target, running_target

pytest_plugins = [
    "tests.support.postgres_service",
    "tests.support.redis_service",
    "tests.support.kubernetes.fixtures",
]


@pytest.fixture(autouse=True)
async def _no_task_left_running() -> AsyncIterator[None]:
    """Fail a test that leaves an asyncio task running on its event loop (house rule 7).

    Autouse fixtures are set up before the fixtures a test asks for, so this one is torn down
    after them: the app's cleanup contexts, aiohttp's test servers and clients have closed by
    the time it looks. A task those teardowns cancelled gets a second to unwind; any other
    task left is cancelled (so the next test starts clean) and named in the failure."""
    yield
    for _ in range(3):  # let tasks cancelled by the teardowns above finish
        await asyncio.sleep(0)
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current]
    unwinding = [task for task in left if task.cancelling()]
    if unwinding:
        await asyncio.wait(unwinding, timeout=1.0)
        left = [task for task in left if not task.done()]
    if not left:
        return
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    described = "\n".join(f"- {task.get_name()}: {task.get_coro()!r}" for task in left)
    pytest.fail(f"{len(left)} asyncio task(s) left running after the test:\n{described}")


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """A recording HTTP target on 127.0.0.1."""
    async with running_target() as started:
        yield started


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """An empty rules directory; tests write YAML into it."""
    path = tmp_path / "rules"
    path.mkdir()
    return path


@pytest.fixture
async def make_client(
    tmp_path: Path, rules_dir: Path, target: Target, aiohttp_client: Any
) -> AppFactory:
    """Build the real app (real SQLite, in-process coordinator) and a client for it; `clock=`
    gives the app a clock of the test's own (a FakeClock), the rest are Settings fields.

    It asks for `target` first so that the target outlives the app: a step still sending to it
    when the test ends finishes during the app's drain instead of retrying until the grace."""

    async def build(*, clock: Clock | None = None, **overrides: Any) -> TestClient[Any, Any]:
        settings = make_settings(tmp_path, rules_dir, **overrides)
        app = create_app(settings, registry=registry_with_containment(), clock=clock)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return build


def _dump_asyncio_tasks(signum: int, frame: object) -> None:
    """`kill -USR1 <pytest pid>` prints every asyncio task of the running loop (for hangs)."""
    loop = asyncio._get_running_loop()
    if loop is None:
        print("no running event loop", file=sys.stderr)
        return
    for task in asyncio.all_tasks(loop):
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGUSR1, _dump_asyncio_tasks)


@pytest.fixture(autouse=True)
def _hang_watchdog() -> Iterator[None]:
    """If a test (with its teardown) runs past 60 s, dump the asyncio tasks once."""
    timer = threading.Timer(60.0, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()
