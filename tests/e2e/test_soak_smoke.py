"""A few seconds of `python -m bench.soak`, so the soak keeps working (the real run: 30 min)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.paths import REPO


def test_a_short_soak_runs_and_accounts_for_every_alert(postgres_dsn: str) -> None:
    env = {**os.environ, "RESPONDER_SOAK_POSTGRES": postgres_dsn}
    args = [
        "--seconds",
        "8",
        "--rate",
        "30",
        "--redis-restart-every",
        "3",
        "--redis-down-seconds",
        "1",
        "--sample-every",
        "1",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    report = done.stdout
    assert "| alerts acknowledged (202) |" in report, done.stderr[-3000:]
    acked = int(report.split("| alerts acknowledged (202) | ")[1].split(" |")[0])
    stored = int(report.split("| alerts in PostgreSQL afterwards | ")[1].split(" |")[0])
    assert acked > 100
    assert stored >= acked  # nothing acknowledged was lost
    assert "| acknowledged but lost | 0 |" in report
    assert "| Redis restarts | 2 |" in report or "| Redis restarts | 3 |" in report
    assert "| other errors | none |" in report
    # the flatness verdict needs minutes (the first seconds still open pool connections);
    # eight seconds only prove the soak runs and accounts for every alert
    assert done.returncode in (0, 1), report
    assert "Verdict: " in report
