"""The app under test in-process: its tokens and headers, its settings, its factory's type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from responder.settings import Settings

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READER_TOKEN = "reader-token"
READ = {"Authorization": f"Bearer {READER_TOKEN}"}  # may read the operator API, never decide
JSON = {"Content-Type": "application/json"}

AppFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def make_settings(tmp_path: Path, rules_dir: Path, **overrides: Any) -> Settings:
    """Settings for one test: its own data dir and rules, short timeouts."""
    values: dict[str, Any] = {
        "rules_dir": rules_dir,
        "data_dir": tmp_path / "data",
        "webhook_token": SecretStr(TOKEN),
        "sentry_client_secret": SecretStr("test-client-secret"),
        "reader_tokens": SecretStr(f"tester:{READER_TOKEN}"),
        "workers": 2,
        "drain_seconds": 2.0,
        "rules_poll_seconds": 0.1,
        "timer_poll_seconds": 0.1,
        "step_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)
