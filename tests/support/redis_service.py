"""Real Redis servers for tests: find one or start a throwaway `redis-server`, isolate each test.

Where the session's Redis comes from, first that works:
1. `RESPONDER_TEST_REDIS_URL`, if set;
2. a server on 127.0.0.1:`RESPONDER_TEST_REDIS_PORT` (default 6379);
3. a throwaway `redis-server` (Debian's binary on PATH) on a free port, stopped at session end.
If none answers, the test fails under `CI=true` and is skipped (with the reason) otherwise.

Tests never FLUSHDB a server they may share: each gets a random key prefix (`redis_prefix`) and
the keys under it are deleted afterwards. `RedisProcess` starts a dedicated server on a chosen
port for tests that stop and restart it (outages) or must see every key on it.

To use the fixtures in a module: `pytest_plugins = ["tests.support.redis_service"]` in the root
conftest, or import them into the test module.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.loopback import free_port


class RedisUnavailableError(RuntimeError):
    """No Redis could be reached or started; the message says why."""


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether the Redis at `url` answers PING within `timeout` seconds (no retries)."""
    client = redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under `prefix` on the Redis at `url`."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        names = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if names:
            client.delete(*names)
    finally:
        client.close()


class RedisProcess:
    """A throwaway `redis-server` on 127.0.0.1:`port` (no persistence), started and stopped here.

    `stop()` then `start()` brings it back on the same port (empty: it keeps nothing on disk).
    """

    def __init__(self, port: int | None = None, *extra_args: str) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="responder-redis-"))

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING; RedisUnavailableError if it does not."""
        if self._process is not None:
            return
        binary = shutil.which("redis-server") or next(
            (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()),
            None,
        )
        if binary is None:
            raise RedisUnavailableError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        log = self._dir / "redis.log"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--daemonize", "no", "--dir", str(self._dir)]
        args += ["--logfile", str(log), *self._extra_args]
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while not answers(self.url, timeout=0.2):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RedisUnavailableError(
                    f"redis-server on port {self.port} did not start: {text}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s); idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


def find_redis() -> tuple[str, RedisProcess | None]:
    """The URL of a Redis for tests and the process started for it (None if not ours).

    Raises RedisUnavailableError saying what was tried. The caller stops the process.
    """
    given = os.environ.get("RESPONDER_TEST_REDIS_URL")
    if given:
        if answers(given, timeout=2.0):
            return given, None
        raise RedisUnavailableError(
            "RESPONDER_TEST_REDIS_URL is set but that Redis does not answer"
        )
    port = int(os.environ.get("RESPONDER_TEST_REDIS_PORT", "6379"))
    local = f"redis://127.0.0.1:{port}/0"
    if answers(local):
        return local, None
    process = RedisProcess()
    try:
        process.start()
    except RedisUnavailableError as exc:
        raise RedisUnavailableError(f"nothing answers on 127.0.0.1:{port} and {exc}") from exc
    return process.url, process


def unavailable(reason: str) -> NoReturn:
    """Fail under CI=true (a missing server is a broken setup), else skip with the reason."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Redis needed but unavailable: {reason}", pytrace=False)
    pytest.skip(f"Redis unavailable: {reason}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The session's Redis (found or started; see the module docstring)."""
    try:
        url, process = find_redis()
    except RedisUnavailableError as exc:
        unavailable(str(exc))
    yield url
    if process is not None:
        with process:  # already started: exiting stops it and removes its directory
            pass


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A fresh key prefix for one test; its keys are deleted afterwards."""
    prefix = f"responder-test:{secrets.token_hex(6)}:"
    yield prefix
    delete_prefix(redis_url, prefix)


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    """A dedicated, empty throwaway server for this test only (stop/start it at will)."""
    process = RedisProcess()
    try:
        process.start()
    except RedisUnavailableError as exc:
        unavailable(str(exc))
    with process:
        yield process
