"""The one thread that owns the SQLite connection, and the batching of queued work onto it.

All SQL runs on the thread `responder-sqlite-writer`, which owns the only connection; callers
queue work and await a future that the thread resolves via `loop.call_soon_threadsafe`. The
thread drains up to `batch_max` queued items at a time: the batch's writes share ONE
transaction and ONE commit, and a bad item fails alone (the batch is then redone with each item
in a SAVEPOINT); if BEGIN or COMMIT fails, every writer of the batch gets
StoreUnavailableError and none of the batch is kept. The
batch's reads run after the commit, so they only ever see committed data.

Durability: `synchronous=FULL`. WAL with NORMAL survives a crash of the process, but a commit
answered with 202 could still be lost to a power cut or kernel panic; FULL fsyncs the WAL at
every commit, and batching spreads that one fsync over all concurrent deliveries.

GIL hand-offs: every statement (and the fsync of every COMMIT) releases the GIL and must take
it back from the event loop thread. With CPython's default switch interval (5 ms), a busy
event loop keeps the writer waiting up to 5 ms at each of those points, so one batch of ten
writes took 10-50 ms instead of 1-4 ms, and every 202 waited for it. `start()` lowers the
interval to `SWITCH_INTERVAL_SECONDS` (never raises it): the writer gets the GIL back within
0.5 ms, at the cost of more frequent switches when two threads both want to run Python.

Every call waits at most `timeout_seconds` (busy_timeout is the same; checked by one sweep per
event loop every tenth of it), then raises StoreUnavailableError. A timed-out write is skipped
if the thread has not started it; one under way may still commit, so a sender's retry can
record a delivery twice (dedup is on identity).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from responder.adapters.store.sqlite import schema
from responder.errors import StoreUnavailableError

T = TypeVar("T")
THREAD_NAME = "responder-sqlite-writer"
SWITCH_INTERVAL_SECONDS = 0.0005  # how soon the writer gets the GIL back from a busy loop


@dataclass(eq=False)
class _Item(Generic[T]):
    """One queued unit of work and the future its caller awaits."""

    work: Callable[[sqlite3.Connection], T]
    write: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    deadline: float  # on `loop.time()`: past it the caller gets StoreUnavailableError
    abandoned: bool = False  # nobody waits any more: skip it unless already started


class SqliteWriter:
    """Runs queued work on one connection in one thread; build it with `await start(...)`."""

    def __init__(self, path: Path, *, timeout_seconds: float, batch_max: int) -> None:
        if timeout_seconds <= 0 or batch_max < 1:
            raise ValueError("timeout_seconds must be > 0 and batch_max >= 1")
        self.path = path
        self.commits = 0  # write transactions committed, for tests and metrics
        self._timeout = timeout_seconds
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[_Item[Any] | None] = queue.SimpleQueue()
        self._closed = True
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        # calls awaited on each event loop, and whether that loop's deadline sweep is due
        self._waiting: dict[asyncio.AbstractEventLoop, set[_Item[Any]]] = {}
        self._sweeping: set[asyncio.AbstractEventLoop] = set()

    async def start(self) -> None:
        """Create the file and its directory if needed, migrate it, start the thread."""
        if sys.getswitchinterval() > SWITCH_INTERVAL_SECONDS:
            sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)  # see "GIL hand-offs" above
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        args = (loop, ready, self._stopped)
        thread = threading.Thread(target=self._serve, args=args, name=THREAD_NAME, daemon=True)
        self._thread = thread  # daemon: one stuck in SQLite must not keep the process alive
        self._closed = False
        thread.start()
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.shield(ready)
        except BaseException as exc:
            with suppress(StoreUnavailableError):
                await self.close()
            if isinstance(exc, TimeoutError):
                raise self.unavailable(f"not opened within {self._timeout}s") from exc
            raise

    async def close(self) -> None:
        """Flush queued writes, stop the thread, close the connection. Idempotent."""
        self._closed = True
        if self._thread is None or self._stopped is None:
            return
        if not self._stopped.done():
            self._queue.put(None)
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.shield(self._stopped)
        except TimeoutError as exc:
            raise self.unavailable("not stopped in time; queued writes may be lost") from exc
        self._thread.join()

    async def call(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `work` on the thread (a write joins the next batch); its result or error."""
        if self._closed:
            raise self.unavailable("the store is closed (shutting down?); retry later")
        loop = asyncio.get_running_loop()
        item = _Item(work, write, loop, loop.create_future(), loop.time() + self._timeout)
        waiting = self._waiting.setdefault(loop, set())
        waiting.add(item)
        if loop not in self._sweeping:
            self._sweeping.add(loop)
            loop.call_later(self._sweep_interval, self._sweep, loop)
        self._queue.put(item)
        try:
            # The deadline is enforced by `_sweep`, one timer per loop, not by a timer per
            # call: asyncio.timeout's was ~5% of a webhook's CPU time. A plain await also
            # lets a cancellation (a task stopped at shutdown) through untouched.
            result: T = await item.future
        finally:
            item.abandoned = True  # timed out or cancelled: skip it if not started yet
            waiting.discard(item)
        return result

    @property
    def _sweep_interval(self) -> float:
        """How often overdue calls are looked for: a call fails within 10% of its timeout."""
        return min(self._timeout / 10, 0.5)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the calls awaited on `loop` whose deadline passed; again while any wait."""
        now = loop.time()
        waiting = self._waiting.get(loop, set())
        for item in [i for i in waiting if i.deadline <= now]:
            waiting.discard(item)
            item.abandoned = True
            if not item.future.done():
                item.future.set_exception(self.unavailable(f"no answer within {self._timeout}s"))
        if waiting:
            loop.call_later(self._sweep_interval, self._sweep, loop)
        else:
            self._sweeping.discard(loop)
            self._waiting.pop(loop, None)

    def unavailable(self, cause: object) -> StoreUnavailableError:
        """A StoreUnavailableError saying what to check about the file."""
        return StoreUnavailableError(
            f"SQLite store at {self.path}: {cause}; check free disk space, that the file and "
            "its directory are writable, and that no other process holds a write lock on it"
        )

    def _serve(self, loop: asyncio.AbstractEventLoop, ready: Any, stopped: Any) -> None:
        try:
            conn = self._connect()
        except Exception as exc:
            error = exc if isinstance(exc, StoreUnavailableError) else self.unavailable(exc)
            _settle(loop, ready, None, error)
            _settle(loop, stopped, None, None)
            return
        _settle(loop, ready, None, None)
        try:
            running = True
            while running:
                batch = [self._queue.get()]
                with suppress(queue.Empty):
                    while len(batch) < self._batch_max:
                        batch.append(self._queue.get_nowait())
                running = None not in batch
                items = [i for i in batch if i is not None and not i.abandoned]
                self._write(conn, [i for i in items if i.write])
                for item in items:
                    if not item.write:
                        self._read(conn, item)
        finally:
            self._closed = True
            conn.close()
            with suppress(queue.Empty):  # fail anything queued behind the stop marker
                while True:
                    if (left := self._queue.get_nowait()) is not None:
                        _settle(left.loop, left.future, None, self.unavailable("closed"))
            _settle(loop, stopped, None, None)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=self._timeout)
        try:
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL journal mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            schema.apply_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _write(self, conn: sqlite3.Connection, items: list[_Item[Any]]) -> None:
        if not items:
            return
        outcomes: list[tuple[Any, BaseException | None]]
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [(item.work(conn), None) for item in items]
            except Exception:
                if not conn.in_transaction:  # SQLite rolled the whole batch back
                    raise
                conn.execute("ROLLBACK")  # redo the batch with each item in a savepoint
                conn.execute("BEGIN IMMEDIATE")
                outcomes = self._isolated(conn, items)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                with suppress(sqlite3.Error):  # a broken connection: the next BEGIN says so
                    conn.execute("ROLLBACK")
            failed = self.unavailable(f"write failed: {exc}")
            _settle_many([(item, None, failed) for item in items])
            return
        self.commits += 1
        _settle_many(
            [(item, value, error) for item, (value, error) in zip(items, outcomes, strict=True)]
        )

    def _isolated(
        self, conn: sqlite3.Connection, items: list[_Item[Any]]
    ) -> list[tuple[Any, BaseException | None]]:
        """Each item in its own SAVEPOINT, so that a bad one fails alone. Only after the
        batch failed as a whole: the two statements per item each cost a GIL hand-off."""
        outcomes: list[tuple[Any, BaseException | None]] = []
        for item in items:
            conn.execute("SAVEPOINT item")
            try:
                outcomes.append((item.work(conn), None))
            except Exception as exc:
                if not conn.in_transaction:  # SQLite rolled the whole batch back
                    raise
                conn.execute("ROLLBACK TO item")
                outcomes.append((None, self._translate(exc)))
            conn.execute("RELEASE item")
        return outcomes

    def _read(self, conn: sqlite3.Connection, item: _Item[Any]) -> None:
        try:
            conn.execute("BEGIN")  # one snapshot for the item's SELECTs
            try:
                value = item.work(conn)
            finally:
                conn.execute("COMMIT")
        except Exception as exc:
            _settle(item.loop, item.future, None, self._translate(exc))
        else:
            _settle(item.loop, item.future, value, None)

    def _translate(self, exc: Exception) -> Exception:
        return self.unavailable(f"failed: {exc}") if isinstance(exc, sqlite3.Error) else exc


def _settle_many(outcomes: list[tuple[_Item[Any], Any, BaseException | None]]) -> None:
    """Resolve the futures of a whole batch with ONE wake-up of each waiting event loop.

    One `call_soon_threadsafe` per item used to cost a self-pipe write and a loop wake-up
    per write; the futures are still resolved in batch order, after the commit.
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, Any]]] = {}
    for item, value, error in outcomes:
        by_loop.setdefault(item.loop, []).append((item.future, value, error))
    for loop, settlements in by_loop.items():
        with suppress(RuntimeError):  # the loop is closed: its callers are gone
            loop.call_soon_threadsafe(_resolve_all, settlements)


def _resolve_all(settlements: list[tuple[Any, Any, Any]]) -> None:
    for future, value, error in settlements:
        if future.done():
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


def _settle(loop: asyncio.AbstractEventLoop, future: Any, value: Any, error: Any) -> None:
    """Resolve `future` on its loop from any thread (a no-op if nobody waits any more)."""

    def settle() -> None:
        if future.done():
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    with suppress(RuntimeError):  # the loop is closed: its callers are gone
        loop.call_soon_threadsafe(settle)
