"""The `/ui` page in a real headless Chromium: an approver approves a step of a real
`responder serve` process over the DevTools protocol (no extra packages); the page's headers
and markup are checked in tests/web/test_ui.py."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.daemons import HEADERS, Daemon
from tests.support.operator_api import OperatorApi
from tests.support.payload_builders import am_alert, am_body

ALICE = {"Authorization": "Bearer alice-token"}
# A label with markup: the page must show it as text, never parse it.
INSTANCE = "<b id=injected>db-1</b>:9100"
RULE = """
id: gated-ui
match: {matchers: ['alertname="DiskFull"']}
steps:
  - {id: look, action: log, with: {message: "evidence for {{ labels.instance }}"}}
  - id: act
    action: log
    approval: true
    with: {message: "acting on {{ labels.instance }}"}
"""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self._ws.receive_json(), timeout=15)
            if "id" not in message:
                self.events.append(message)
            elif message["id"] == call_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def js(self, expression: str) -> Any:
        reply = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_js(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                page = await self.js("document.body ? document.body.innerText : ''")
                raise AssertionError(f"not true in {timeout}s: {expression}\npage:\n{page}")
            await asyncio.sleep(0.1)


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium is not installed (apt-get install chromium; scripts/test does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
def daemon(tmp_path: Path, rules_dir: Path) -> Iterator[Daemon]:
    (rules_dir / "gated.yaml").write_text(RULE)
    started = Daemon(tmp_path / "daemon", rules_dir, RESPONDER_APPROVER_TOKENS="alice:alice-token")
    try:
        started.wait_ready()
        yield started
    finally:
        if started.proc.poll() is None:
            started.proc.kill()
            started.proc.wait()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[DevTools]:
    executable = _chromium()
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    log = (tmp_path / "chromium.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        executable,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        port = await _devtools_port(profile / "DevToolsActivePort", proc, tmp_path)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as reply:
                pages = [t for t in await reply.json() if t["type"] == "page"]
            if not pages:
                async with session.put(f"http://127.0.0.1:{port}/json/new?about:blank") as reply:
                    pages = [await reply.json()]
            url = pages[0]["webSocketDebuggerUrl"]
            async with session.ws_connect(url, max_msg_size=0) as ws:
                yield DevTools(ws)
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the browser and its children
        await asyncio.wait_for(proc.wait(), timeout=10)
        log.close()


async def _devtools_port(path: Path, proc: asyncio.subprocess.Process, tmp_path: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.returncode is None, (tmp_path / "chromium.log").read_text()
        if path.exists() and path.read_text().strip():
            return int(path.read_text().splitlines()[0])
        await asyncio.sleep(0.05)
    raise AssertionError("no DevToolsActivePort:\n" + (tmp_path / "chromium.log").read_text())


async def _screenshot(browser: DevTools, path: Path) -> None:
    """A PNG of the page as it is now, 1280 px wide (the README's picture of the UI)."""
    await browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=1280,
        height=860,
        deviceScaleFactor=1,
        mobile=False,
    )
    shot = await browser.call("Page.captureScreenshot", format="png")
    path.write_bytes(base64.b64decode(shot["data"]))


def _step_state(within: str, step_id: str) -> str:
    """JS for the `data-step-state` of one step shown inside `within` (undefined if absent)."""
    return f"document.querySelector('{within} [data-step-id={step_id}]')?.dataset.stepState"


async def test_an_approver_approves_in_the_browser_and_sees_the_step_run(
    browser: DevTools, daemon: Daemon
) -> None:
    alert = am_alert(fingerprint="ui1", labels={"instance": INSTANCE})
    status, _ = daemon.request("/v1/webhooks/alertmanager", am_body(alert), HEADERS)
    assert status == 202
    api = OperatorApi.of_daemon(daemon, ALICE)
    approval = await api.pending_approval(timeout=15)
    card = f'[data-approval-id="{approval["approval_id"]}"]'
    run_row = f'[data-run-id="{approval["run_id"]}"]'

    await browser.call("Log.enable")
    await browser.call("Runtime.enable")
    await browser.call("Page.navigate", url=f"http://127.0.0.1:{daemon.port}/ui")
    await browser.wait_js("document.readyState == 'complete' && !!document.getElementById('token')")

    # a wrong token: the 401 problem is shown inline and the login form stays
    await browser.js(
        "document.getElementById('token').value = 'wrong-token';"
        "document.getElementById('login-button').click()"
    )
    notice = await browser.wait_js("document.getElementById('notice').textContent")
    assert "401" in notice
    assert "Unauthorized" in notice
    assert await browser.js("sessionStorage.length") == 0
    assert await browser.js("!document.getElementById('login').hidden")

    await browser.js(
        "document.getElementById('token').value = 'alice-token';"
        "document.getElementById('login-button').click()"
    )
    text = await browser.wait_js(f"document.querySelector('{card}')?.innerText")
    assert "gated-ui" in text
    assert "act" in text
    assert "log" in text
    assert f"acting on {INSTANCE}" in text  # the rendered request params
    evidence = await browser.js(f"document.querySelector('{card} .evidence').innerText")
    assert f"evidence for {INSTANCE}" in evidence  # the diagnostic step's output, as text
    assert await browser.js(_step_state(card, "look")) == "succeeded"
    assert await browser.js("document.getElementById('injected')") is None  # escaped, not parsed
    assert await browser.js(_step_state(run_row, "act")) == "waiting_approval"
    # the token lives in this tab's sessionStorage only: no cookie, not in the URL
    assert await browser.js("sessionStorage.getItem('responder.token')") == "alice-token"
    assert await browser.js("document.cookie") == ""
    assert "alice-token" not in await browser.js("location.href")

    if os.environ.get("UI_SCREENSHOT"):  # UI_SCREENSHOT=docs/ui.png refreshes the README's
        await _screenshot(browser, Path(os.environ["UI_SCREENSHOT"]))

    await browser.js(f"document.querySelector('{card} .comment').value = 'checked in the UI'")
    await browser.js(f"document.querySelector('{card} [data-decision=approve]').click()")
    await browser.wait_js(f"!document.querySelector('{card}')")
    await browser.wait_js(f"{_step_state(run_row, 'act')} === 'succeeded'")
    await browser.wait_js(f"document.querySelector('{run_row}').dataset.runState === 'succeeded'")
    assert not await browser.js("document.getElementById('notice').textContent")
    logged = json.dumps(browser.events)
    assert "Content Security Policy" not in logged
    assert "exceptionThrown" not in logged

    run = await api.run(approval["run_id"])
    assert [s["state"] for s in run["steps"]] == ["succeeded", "succeeded"]
    granted = next(e for e in run["audit"] if e["kind"] == "approval_granted")
    assert (granted["actor"], granted["reason"]) == ("alice", "checked in the UI")
    assert await api.approvals(status="pending") == []
