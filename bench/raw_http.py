"""A minimal keep-alive HTTP/1.1 client for the load generators, on asyncio protocols.

The open-loop generator shares a 2-core machine with the daemon it measures. Through
aiohttp's client it cost ~0.65 ms of CPU per request (0.65 of a core at 1,000 req/s, about
what the daemon itself needed), so the benches partly measured the generator. This client
writes pre-built request bytes on pooled connections and reads only the status line,
Content-Length and body: a few times cheaper, and the daemon gets the CPU the benches mean
to give it. It speaks only what the benches need: requests with a body or none, answers
with a Content-Length (aiohttp always sends one for these), loopback only.
"""

from __future__ import annotations

import asyncio
from collections import deque


class HttpError(Exception):
    """The connection failed or the answer could not be read."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False
        self._keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HttpError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0 or self._waiter is None:
            return
        head = bytes(self._buffer[:head_end]).split(b"\r\n")
        length = None
        for line in head[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                self._keep_alive = False
        if length is None:
            self._fail(HttpError("answer without Content-Length"))
            return
        end = head_end + 4 + length
        if len(self._buffer) < end:
            return
        try:
            status = int(head[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            self._fail(HttpError(f"bad status line {head[0]!r}"))
            return
        body = bytes(self._buffer[head_end + 4 : end])
        del self._buffer[:end]
        waiter, self._waiter = self._waiter, None
        if not waiter.done():
            waiter.set_result((status, body))
        if not self._keep_alive and self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        assert self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter


class Pool:
    """Up to `limit` keep-alive connections to 127.0.0.1:`port`."""

    def __init__(self, port: int, limit: int) -> None:
        self._port = port
        self._limit = limit
        self._idle: deque[_Connection] = deque()
        self._open = 0
        self._free = asyncio.Condition()

    async def _take(self) -> _Connection:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
                self._open -= 1
            if self._open < self._limit:
                self._open += 1
                try:
                    loop = asyncio.get_running_loop()
                    _, conn = await loop.create_connection(_Connection, "127.0.0.1", self._port)
                except OSError as exc:
                    self._open -= 1
                    raise HttpError(f"connect: {exc}") from exc
                return conn
            async with self._free:
                await self._free.wait()

    async def _give_back(self, conn: _Connection) -> None:
        if conn.closed:
            self._open -= 1
        else:
            self._idle.append(conn)
        async with self._free:
            self._free.notify()

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, seconds: float
    ) -> tuple[int, bytes]:
        """Send one request, read its answer within `seconds`; raises HttpError or TimeoutError."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self._port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        conn = await self._take()
        try:
            async with asyncio.timeout(seconds):
                return await conn.send(request)
        except BaseException:
            if conn.transport is not None:
                conn.transport.close()
            conn.closed = True
            raise
        finally:
            await self._give_back(conn)

    def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None:
                conn.transport.close()
