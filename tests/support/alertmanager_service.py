"""Real Alertmanager and Prometheus (Debian's binaries) on loopback, for end-to-end tests.

Each process gets its own temporary directory (configuration, storage, log) and a free port on
127.0.0.1. Alertmanager runs with clustering off (its default cluster listener is
0.0.0.0:9094). Both are stopped with SIGTERM (SIGKILL after 10 s) by `stop()`, by the context
manager and, as a last resort, at interpreter exit.

When a binary is missing the test is skipped, except under `CI=true`, where it fails: CI
installs them (`scripts/test`, Debian packages `prometheus-alertmanager` and `prometheus`).
Recipe and timings: examples/payloads/real-alertmanager.md.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.loopback import free_port

ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")  # Debian's name first
PROMETHEUS_NAMES = ("prometheus",)


def binary(names: tuple[str, ...]) -> str | None:
    """The first of `names` found on PATH (or in /usr/bin), else None."""
    for name in names:
        found = shutil.which(name) or next(
            (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if Path(p).exists()), None
        )
        if found:
            return found
    return None


def unavailable(reason: str) -> NoReturn:
    """Fail under CI=true (CI installs the binaries), else skip with the reason."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"real Alertmanager/Prometheus needed but unavailable: {reason}", pytrace=False)
    pytest.skip(f"real Alertmanager/Prometheus unavailable: {reason}")


def require(names: tuple[str, ...], package: str) -> str:
    """The path of the binary, or skip/fail (see `unavailable`) naming the Debian package."""
    path = binary(names)
    if path is None:
        unavailable(f"{names[0]} is not installed (Debian: apt-get install {package})")
    return path


def rfc3339(moment: datetime) -> str:
    """A UTC time as Alertmanager's API takes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def api_alert(
    labels: dict[str, str],
    starts_at: datetime,
    *,
    ends_at: datetime | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One alert for `POST /api/v2/alerts`, as Prometheus sends it.

    A `starts_at` older than group_wait makes a new group flush at once. An `ends_at` in the
    past resolves the alert (post it again with the same labels and `starts_at`).
    """
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations or {"summary": f"{labels.get('alertname', 'test')} (test)"},
        "startsAt": rfc3339(starts_at),
        "generatorURL": "http://127.0.0.1/graph",
    }
    if ends_at is not None:
        alert["endsAt"] = rfc3339(ends_at)
    return alert


def webhook_config(
    url: str,
    credentials_file: Path,
    *,
    group_wait: str = "1s",
    group_interval: str = "2s",
    repeat_interval: str = "1h",
) -> str:
    """An Alertmanager configuration: one webhook receiver with a bearer token read from
    `credentials_file` and `send_resolved: true`, grouped by alertname, short intervals."""
    return json.dumps(
        {
            "route": {
                "receiver": "responder",
                "group_by": ["alertname"],
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [
                {
                    "name": "responder",
                    "webhook_configs": [
                        {
                            "url": url,
                            "send_resolved": True,
                            "http_config": {
                                "authorization": {
                                    "type": "Bearer",
                                    "credentials_file": str(credentials_file),
                                }
                            },
                        }
                    ],
                }
            ],
        },
        indent=2,
    )  # JSON is YAML


class _Process:
    """A server binary in its own temporary directory, on a free loopback port."""

    name = "process"

    def __init__(self, directory: Path | None = None) -> None:
        self.port = free_port()
        self.dir = directory or Path(tempfile.mkdtemp(prefix=f"responder-{self.name}-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 20.0) -> None:
        """Start the binary and wait until `/-/ready` answers 200."""
        if self._process is not None:
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.args(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise AssertionError(f"{self.name} exited with {code}:\n{self.log()[-3000:]}")
            if self.get("/-/ready")[0] == 200:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.name} not ready in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self, *needles: str) -> list[str]:
        """The log lines containing every one of `needles`."""
        return [line for line in self.log().splitlines() if all(n in line for n in needles)]

    def get(self, path: str) -> tuple[int, bytes]:
        """GET `path`; (0, b"") when nothing answers."""
        return self._call(urllib.request.Request(self.url + path))

    def post_json(self, path: str, body: Any) -> tuple[int, bytes]:
        """POST `body` as JSON to `path`."""
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        return self._call(request)

    @staticmethod
    def _call(request: urllib.request.Request) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def __enter__(self) -> _Process:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Alertmanager(_Process):
    """`prometheus-alertmanager` with `config` (YAML text), loopback only, clustering off."""

    name = "alertmanager"

    def __init__(self, config: str, directory: Path | None = None) -> None:
        super().__init__(directory)
        self.binary = require(ALERTMANAGER_NAMES, "prometheus-alertmanager")
        self.config_path = self.dir / "alertmanager.yml"
        self.config_path.write_text(config)

    def args(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--cluster.listen-address=",  # no gossip listener on 0.0.0.0:9094
            "--log.level=debug",
        ]

    def post_alerts(self, *alerts: dict[str, Any]) -> None:
        """`POST /api/v2/alerts` (what Prometheus does); asserts 200."""
        status, body = self.post_json("/api/v2/alerts", list(alerts))
        assert status == 200, f"Alertmanager refused the alerts: {status} {body!r}"

    def notify_successes(self) -> int:
        """How many notifications the receiver accepted (2xx), from the debug log."""
        return len(self.log_lines('msg="Notify success"'))

    def notify_failures(self) -> list[str]:
        """The log lines of flushes whose notification failed (Alertmanager re-sends them)."""
        return self.log_lines('msg="Notify for alerts failed"')

    def alerts(self) -> list[dict[str, Any]]:
        """`GET /api/v2/alerts`: the alerts Alertmanager holds."""
        status, body = self.get("/api/v2/alerts")
        assert status == 200, body
        found: list[dict[str, Any]] = json.loads(body)
        return found


class Prometheus(_Process):
    """`prometheus` evaluating `rules` (YAML text) every second and sending its alerts to the
    Alertmanager at `alertmanager_url`, with a 1 s resend delay (the default 1 m would hold
    back the first notification; see the recipe)."""

    name = "prometheus"

    def __init__(self, rules: str, alertmanager_url: str, directory: Path | None = None) -> None:
        super().__init__(directory)
        self.binary = require(PROMETHEUS_NAMES, "prometheus")
        rules_path = self.dir / "rules.yml"
        rules_path.write_text(rules)
        self.config_path = self.dir / "prometheus.yml"
        target = alertmanager_url.removeprefix("http://")
        self.config_path.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "15s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules_path)],
                    "alerting": {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]},
                },
                indent=2,
            )
        )

    def args(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--rules.alert.resend-delay=1s",
        ]
