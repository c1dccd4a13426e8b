"""The operator API (/v1/runs, /v1/approvals) as tests call it, in-process or on a real daemon,
with the waits they need: until an approval is pending, until a run has settled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient

from tests.support.apps import READ
from tests.support.daemons import Daemon
from tests.support.polling import eventually

BUSY = ("pending", "running")  # run states that are not settled yet

# (method, path?query, body, headers) -> (status, body)
Send = Callable[[str, str, bytes | None, Mapping[str, str]], Awaitable[tuple[int, bytes]]]


class OperatorApi:
    """One caller of the operator API: its credentials and how its requests travel."""

    def __init__(
        self, send: Send, headers: Mapping[str, str], *, explain: Callable[[], str] = str
    ) -> None:
        self._send = send
        self.headers = dict(headers)
        self._explain = explain  # what a failed wait adds (a daemon's log)

    @classmethod
    def in_process(
        cls, client: TestClient[Any, Any], headers: Mapping[str, str] = READ
    ) -> OperatorApi:
        """The API of an app running in this test's event loop."""

        async def send(
            method: str, path: str, body: bytes | None, headers: Mapping[str, str]
        ) -> tuple[int, bytes]:
            response = await client.request(method, path, data=body, headers=headers)
            return response.status, await response.read()

        return cls(send, headers)

    @classmethod
    def of_daemon(cls, daemon: Daemon, headers: Mapping[str, str]) -> OperatorApi:
        """The API of a `responder serve` process (its requests run on a thread)."""

        async def send(
            method: str, path: str, body: bytes | None, headers: Mapping[str, str]
        ) -> tuple[int, bytes]:
            assert method == ("POST" if body is not None else "GET"), method
            return await asyncio.to_thread(daemon.request, path, body, dict(headers))

        return cls(send, headers, explain=lambda: "\n" + daemon.log_path.read_text())

    async def get_json(self, path: str, **query: str) -> Any:
        """GET `path` (with `query`), asserting 200; the parsed body."""
        url = f"{path}?{urlencode(query)}" if query else path
        status, body = await self._send("GET", url, None, self.headers)
        assert status == 200, (url, status, body)
        return json.loads(body)

    async def runs(self, **query: str) -> list[dict[str, Any]]:
        """GET /v1/runs: the runs' summaries, newest first."""
        found: list[dict[str, Any]] = (await self.get_json("/v1/runs", **query))["runs"]
        return found

    async def run(self, run_id: str) -> dict[str, Any]:
        """GET /v1/runs/{run_id}: one run with its steps, alert and audit."""
        found: dict[str, Any] = await self.get_json(f"/v1/runs/{run_id}")
        return found

    async def approvals(self, **query: str) -> list[dict[str, Any]]:
        """GET /v1/approvals."""
        found: list[dict[str, Any]] = (await self.get_json("/v1/approvals", **query))["approvals"]
        return found

    async def pending_approvals(
        self, count: int = 1, *, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait until at least `count` approvals are pending; all the pending ones."""

        async def enough() -> list[dict[str, Any]] | None:
            found = await self.approvals(status="pending")
            return found if len(found) >= count else None

        return await eventually(
            enough, timeout=timeout, what=f"{count} pending approval(s)", explain=self._explain
        )

    async def pending_approval(self, *, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until an approval is pending; the first one listed."""
        return (await self.pending_approvals(timeout=timeout))[0]

    async def settled_runs(self, count: int = 1, *, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `count` runs exist and none is pending or running; them all."""

        async def settled() -> list[dict[str, Any]] | None:
            found = await self.runs()
            done = len(found) >= count and all(run["state"] not in BUSY for run in found)
            return found if done else None

        return await eventually(
            settled, timeout=timeout, what=f"{count} settled run(s)", explain=self._explain
        )

    async def settled_run(
        self, *, fingerprint: str | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Wait until the newest run (of `fingerprint`, if given) is neither pending nor
        running; that run with its steps, alert and audit."""

        async def settled() -> str | None:
            found = [
                run
                for run in await self.runs()
                if fingerprint is None or run["fingerprint"] == fingerprint
            ]
            return found[0]["run_id"] if found and found[0]["state"] not in BUSY else None

        run_id = await eventually(
            settled, timeout=timeout, what="a settled run", explain=self._explain
        )
        return await self.run(run_id)

    async def run_reaches(self, run_id: str, state: str, *, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until run `run_id` is in `state`; the run."""

        async def reached() -> dict[str, Any] | None:
            run = await self.run(run_id)
            return run if run["state"] == state else None

        return await eventually(
            reached, timeout=timeout, what=f"run {run_id} {state}", explain=self._explain
        )
