"""The Batcher that joins concurrent PostgreSQL writes: batching, bounds, failures, give-ups.

Pure asyncio: the write function here records what it was given; the PostgreSQL store's use
of it is covered by the store contracts (tests/adapters/store/test_alert_log_contract.py and
test_store_lifecycle_contract.py)."""

from __future__ import annotations

import asyncio

import pytest

from responder.adapters.store.postgres.batching import Batcher


class DataError(Exception):
    """Stands for an error caused by one item (a value the database refuses)."""


class Recorder:
    """A write function that records its batches, and refuses items named "bad"."""

    def __init__(self, *, pause: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.pause = pause

    async def write(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        await asyncio.sleep(self.pause)
        if "bad" in items:
            raise DataError("bad item")
        if "down" in items:
            raise ConnectionError("server gone")
        return [item.upper() for item in items]


def batcher(recorder: Recorder, **options: object) -> Batcher[str, str]:
    settings: dict[str, object] = {
        "name": "test-batches",
        "batch_max": 100,
        "fails_alone": lambda exc: isinstance(exc, DataError),
    }
    settings.update(options)
    return Batcher(recorder.write, **settings)  # type: ignore[arg-type]


async def test_a_lone_call_is_written_at_once() -> None:
    recorder = Recorder()
    assert await batcher(recorder).submit("a") == "A"
    assert recorder.batches == [["a"]]


async def test_calls_made_while_a_batch_is_written_share_the_next_one() -> None:
    recorder = Recorder(pause=0.02)
    writes = batcher(recorder)
    first = asyncio.ensure_future(writes.submit("a"))
    await asyncio.sleep(0.005)  # "a" is being written
    rest = [asyncio.ensure_future(writes.submit(x)) for x in "bcd"]
    assert await first == "A"
    assert [await call for call in rest] == ["B", "C", "D"]
    assert recorder.batches == [["a"], ["b", "c", "d"]]
    assert writes.statements == 2


async def test_batch_max_and_weight_max_bound_a_batch() -> None:
    recorder = Recorder()
    by_count = batcher(recorder, batch_max=2)
    assert await asyncio.gather(*(by_count.submit(x) for x in "abcde")) == list("ABCDE")
    assert recorder.batches == [["a", "b"], ["c", "d"], ["e"]]

    recorder = Recorder()
    by_weight = batcher(recorder, weight=len, weight_max=4)
    items = ["aa", "bb", "c", "ddddddd", "e"]
    assert await asyncio.gather(*(by_weight.submit(x) for x in items)) == [x.upper() for x in items]
    # "ddddddd" weighs more than the bound alone: it is still written, on its own
    assert recorder.batches == [["aa", "bb"], ["c"], ["ddddddd"], ["e"]]


async def test_an_item_that_fails_the_batch_fails_alone() -> None:
    recorder = Recorder()
    writes = batcher(recorder)
    results = await asyncio.gather(
        *(writes.submit(x) for x in ["a", "bad", "c"]), return_exceptions=True
    )
    assert results[0] == "A"
    assert isinstance(results[1], DataError)
    assert results[2] == "C"
    assert recorder.batches == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


async def test_a_connection_failure_fails_the_whole_batch_without_redoing_it() -> None:
    recorder = Recorder()
    writes = batcher(recorder)
    results = await asyncio.gather(
        *(writes.submit(x) for x in ["a", "down", "c"]), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert recorder.batches == [["a", "down", "c"]]
    assert await writes.submit("after") == "AFTER"  # the next call starts a new batch


async def test_a_caller_that_gave_up_before_its_batch_is_left_out() -> None:
    recorder = Recorder(pause=0.05)
    writes = batcher(recorder)
    first = asyncio.ensure_future(writes.submit("a"))
    await asyncio.sleep(0.01)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await writes.submit("gave-up")
    kept = asyncio.ensure_future(writes.submit("b"))
    assert (await first, await kept) == ("A", "B")
    assert recorder.batches == [["a"], ["b"]]


async def test_idle_waits_for_queued_writes() -> None:
    recorder = Recorder(pause=0.02)
    writes = batcher(recorder)
    calls = [asyncio.ensure_future(writes.submit(x)) for x in "ab"]
    await asyncio.sleep(0)
    await writes.idle()
    assert all(call.done() for call in calls)
    await writes.idle()  # nothing queued: returns at once


def test_batch_max_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_max"):
        batcher(Recorder(), batch_max=0)


async def test_with_a_timeout_overdue_calls_fail_started_or_not() -> None:
    recorder = Recorder(pause=1.0)
    b = batcher(recorder, timeout=0.1)
    started = asyncio.create_task(b.submit("a"))  # its batch starts at once, and hangs
    await asyncio.sleep(0)
    queued = asyncio.create_task(b.submit("b"))  # waits for the next batch
    for task in (started, queued):
        with pytest.raises(TimeoutError, match="not written in time"):
            await task
    await b.idle()
    assert recorder.batches == [["a"]]  # the overdue queued call was dropped, never written


async def test_calls_written_in_time_are_not_failed_by_the_sweep() -> None:
    recorder = Recorder(pause=0.02)
    b = batcher(recorder, timeout=5.0)
    results = await asyncio.gather(*(b.submit(x) for x in ["a", "b", "c"]))
    assert results == ["A", "B", "C"]
    with pytest.raises(ValueError, match="timeout"):
        batcher(recorder, timeout=0)
