"""`responder serve` as a real process, for tests that need several replicas or a kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.loopback import free_port
from tests.support.paths import REPO

TOKEN = "process-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
READER_TOKEN = "process-reader-token"
READ = {"Authorization": f"Bearer {READER_TOKEN}"}  # the operator API's read side


class Daemon:
    """One `python -m responder serve` process, its log file and a tiny HTTP client."""

    def __init__(self, workdir: Path, rules: Path, port: int | None = None, /, **env: str) -> None:
        self.port = port or free_port()  # a restart on the same port keeps senders' URLs valid
        self.rules = rules
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"daemon-{self.port}.log"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "RESPONDER_WEBHOOK_TOKEN": TOKEN,
            "RESPONDER_READER_TOKENS": f"tester:{READER_TOKEN}",
            "RESPONDER_LISTEN": f"127.0.0.1:{self.port}",
            "RESPONDER_RULES_DIR": str(rules),
            "RESPONDER_DATA_DIR": str(workdir / "data"),
            "RESPONDER_LOG_FORMAT": "json",
            **env,
        }
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "responder", "serve"],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def request(
        self, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}{path}"
        req = urllib.request.Request(url, data=body, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if self.request("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("daemon not ready:\n" + self.log_path.read_text())

    def events(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_event(self, name: str, timeout: float = 10, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no {name} {fields} in:\n" + self.log_path.read_text())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._log.close()
        return code

    def kill(self) -> None:
        """kill -9: no drain, no cleanup."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()
