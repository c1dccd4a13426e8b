"""The SQLite writer thread's deadlines: a stuck call fails, work nobody waits for is skipped."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from responder.adapters.store.sqlite.writer import SqliteWriter
from responder.errors import StoreUnavailableError


async def test_a_call_past_its_deadline_fails_and_work_behind_it_is_skipped(
    tmp_path: Path,
) -> None:
    writer = SqliteWriter(tmp_path / "w.db", timeout_seconds=0.3, batch_max=1)
    await writer.start()
    release = threading.Event()
    ran: list[str] = []

    def stuck(conn: sqlite3.Connection) -> str:
        release.wait(10)  # a disk that stopped answering, as far as the caller can tell
        ran.append("stuck")
        return "late"

    def behind(conn: sqlite3.Connection) -> str:
        ran.append("behind")
        return "never"

    try:
        first = asyncio.create_task(writer.call(stuck, write=True))
        second = asyncio.create_task(writer.call(behind, write=True))
        for task in (first, second):
            with pytest.raises(StoreUnavailableError, match=r"no answer within 0\.3s"):
                await task
        release.set()

        def fine(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT 41 + 1").fetchone()[0])

        assert await writer.call(fine, write=False) == 42  # the thread went on
        assert ran == ["stuck"]  # nobody waited for `behind` any more: it never ran
    finally:
        release.set()
        await writer.close()


async def test_a_cancelled_caller_is_not_held_back_and_its_work_is_skipped(
    tmp_path: Path,
) -> None:
    writer = SqliteWriter(tmp_path / "w.db", timeout_seconds=5.0, batch_max=1)
    await writer.start()
    release = threading.Event()
    ran: list[str] = []

    def stuck(conn: sqlite3.Connection) -> None:
        release.wait(10)
        ran.append("stuck")

    def behind(conn: sqlite3.Connection) -> None:
        ran.append("behind")

    try:
        first = asyncio.create_task(writer.call(stuck, write=True))
        second = asyncio.create_task(writer.call(behind, write=True))
        await asyncio.sleep(0.05)
        second.cancel()  # a task stopped at shutdown
        with pytest.raises(asyncio.CancelledError):
            await second
        release.set()
        await first
        assert ran == ["stuck"]
    finally:
        release.set()
        await writer.close()
