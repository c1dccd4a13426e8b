"""Child processes of a bench: `responder serve`, helper servers and load generators.

Every child is started with its own environment and log file, polled until it answers on
loopback, and stopped (SIGTERM, then SIGKILL) by the bench that started it, by its pid.
Memory figures come from `/proc/<pid>/status` (`VmRSS` now, `VmHWM` the peak).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"  # a throwaway credential of a loopback bench daemon
AUTH_HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status_kib(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), or None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """utime + stime of /proc/<pid>/stat, in seconds (0.0 if unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET `url` (loopback only); the status and body (HTTP errors included)."""
    assert url.startswith("http://127.0.0.1:"), url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


class Child:
    """One child process with a log file; a context manager that stops it on exit."""

    def __init__(
        self, argv: list[str], log_path: Path, env: dict[str, str], *, port: int | None = None
    ) -> None:
        self.port = port
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.ready_seconds: float | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def url(self, path: str) -> str:
        """`http://127.0.0.1:<port><path>`."""
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, path: str, timeout: float = 60.0, interval: float = 0.005) -> float:
        """Poll GET `path` until 200; seconds from the spawn to that answer."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"{self.log_path.name}: exited ({code}):\n{self.log_tail()}")
            try:
                if http_get(self.url(path), timeout=2.0)[0] == 200:
                    self.ready_seconds = time.perf_counter() - self.started
                    return self.ready_seconds
            except OSError:
                pass
            time.sleep(interval)
        raise RuntimeError(f"{self.log_path.name} not ready in {timeout}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process (all its threads) has used so far."""
        return cpu_seconds(self.pid)

    def rss_mib(self) -> float | None:
        """Resident memory now, MiB."""
        kib = proc_status_kib(self.pid, "VmRSS")
        return None if kib is None else kib / 1024

    def peak_rss_mib(self) -> float | None:
        """Peak resident memory since start (VmHWM), MiB."""
        kib = proc_status_kib(self.pid, "VmHWM")
        return None if kib is None else kib / 1024

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the child's log."""
        self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, SIGKILL if needed; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return int(self.proc.returncode)

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def python_module(module: str, *args: str) -> list[str]:
    """argv running `python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def base_env() -> dict[str, str]:
    """A minimal environment for a child: PATH and the locale, nothing of ours."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}
    for name in ("LANG", "LC_ALL", "HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def start_daemon(workdir: Path, rules_dir: Path, **settings: str) -> Child:
    """`python -m responder serve` on a free loopback port, data and log under `workdir`.

    `settings` are extra `RESPONDER_*` variables (names without the prefix, any case).
    """
    port = free_port()
    env = base_env() | {
        "RESPONDER_WEBHOOK_TOKEN": TOKEN,
        "RESPONDER_LISTEN": f"127.0.0.1:{port}",
        "RESPONDER_RULES_DIR": str(rules_dir),
        "RESPONDER_DATA_DIR": str(workdir / "data"),
        "RESPONDER_LOG_FORMAT": "json",
    }
    env |= {f"RESPONDER_{name.upper()}": value for name, value in settings.items()}
    argv = python_module("responder", "serve")
    return Child(argv, workdir / f"daemon-{port}.log", env, port=port)


def start_bare_server(workdir: Path) -> Child:
    """The baseline: a bare aiohttp app that reads the body and answers 202 (`bench.bare`)."""
    port = free_port()
    argv = python_module("bench.bare", str(port))
    return Child(argv, workdir / f"bare-{port}.log", base_env(), port=port)


def start_target(workdir: Path) -> Child:
    """A target that records when each request arrives (`bench.arrivals`)."""
    port = free_port()
    argv = python_module("bench.arrivals", str(port))
    return Child(argv, workdir / f"target-{port}.log", base_env(), port=port)
