"""A real Unleash server for the tests: npm `unleash-server` 7.5.1 on a scratch database.

`running_unleash(server_dsn)` (a context manager, used by a session fixture) gives a running
server on 127.0.0.1 with an admin API token and a backend (SDK) token for `development`:

1. node (20 or newer) and npm must be on PATH; when they are not, the tests are skipped, or
   fail under `CI=true`.
2. unleash-server is installed under `.cache/unleash` (gitignored) with `npm install` when it
   is missing or another version (about 1 minute and 190 MB the first time).
3. A new database `responder_unleash_<hex>` is created on the `postgres_dsn` server (see
   tests/support/postgres_service.py) and dropped with FORCE after the session.
4. `node node_modules/unleash-server/dist/server.js` listens on a free port of 127.0.0.1 with
   telemetry and version checks off; GET /health is polled until it answers 200 (the first
   start runs ~370 migrations: 5-25 s here). Its output goes to `server.log` in a temporary
   directory, shown when it does not start.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.support.loopback import free_port
from tests.support.paths import REPO

VERSION = "7.5.1"
MIN_NODE = 20  # unleash-server 7.x: engines node >= 20 (8.x needs 22)
INSTALL_DIR = REPO / ".cache" / "unleash"
ADMIN_TOKEN = "*:*.responder-test-admin-secret"
BACKEND_TOKEN = "default:development.responder-test-backend-secret"
_START_TIMEOUT = 120.0


@dataclass(frozen=True)
class UnleashServer:
    """A running Unleash: where it is and the tokens it accepts."""

    base_url: str
    admin_token: str
    backend_token: str
    startup_seconds: float


def _unavailable(reason: str) -> NoReturn:
    message = f"no Unleash server for the tests: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _installed_version() -> str | None:
    manifest = INSTALL_DIR / "node_modules" / "unleash-server" / "package.json"
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return str(version) if version else None


def install() -> Path:
    """unleash-server's `dist/server.js`, installing it with npm first when needed."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if node is None or npm is None:
        _unavailable("node and npm are not on PATH (Node.js 20 or newer with npm)")
    found = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    major = found.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < MIN_NODE:
        _unavailable(
            f"node {found.stdout.strip()} is too old: unleash-server {VERSION} needs "
            f"Node.js {MIN_NODE} or newer"
        )
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_DIR / ".install.lock", "w") as lock:  # one installer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() != VERSION:
            done = subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--save-exact",
                    "--loglevel=error",
                    f"unleash-server@{VERSION}",
                ],
                cwd=INSTALL_DIR,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if done.returncode != 0 or _installed_version() != VERSION:
                _unavailable(f"npm install unleash-server@{VERSION} failed: {done.stderr[-2000:]}")
    return INSTALL_DIR / "node_modules" / "unleash-server" / "dist" / "server.js"


@contextlib.contextmanager
def scratch_database(server_dsn: str) -> Iterator[str]:
    """A `postgres://` URL of a new empty database, dropped afterwards."""
    name = f"responder_unleash_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, connect_timeout=5, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    parts = conninfo_to_dict(server_dsn)
    user, password = parts.get("user") or "postgres", parts.get("password")
    credentials = f"{user}:{password}" if password else str(user)
    host, port = parts.get("host") or "127.0.0.1", parts.get("port") or "5432"
    try:
        yield f"postgres://{credentials}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(server_dsn, connect_timeout=5, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextlib.contextmanager
def running_unleash(server_dsn: str) -> Iterator[UnleashServer]:
    """Install if needed, start on a scratch database, wait for /health, stop afterwards."""
    script = install()
    with scratch_database(server_dsn) as database_url, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env: dict[str, Any] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "DATABASE_URL": database_url,
            "DATABASE_SSL": "false",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(port),
            "CHECK_VERSION": "false",
            "SEND_TELEMETRY": "false",
            "INIT_ADMIN_API_TOKENS": ADMIN_TOKEN,
            "INIT_BACKEND_API_TOKENS": BACKEND_TOKEN,
            "LOG_LEVEL": "warn",
        }
        log_path = Path(tmp) / "server.log"
        started = time.monotonic()
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["node", str(script)],
                cwd=INSTALL_DIR,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            while not _healthy(base_url):
                if process.poll() is not None or time.monotonic() - started > _START_TIMEOUT:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    _unavailable(f"unleash-server did not become healthy: {tail}")
                time.sleep(0.25)
            yield UnleashServer(
                base_url, ADMIN_TOKEN, BACKEND_TOKEN, round(time.monotonic() - started, 1)
            )
        finally:
            _stop(process)
