"""The engine bench in miniature, on both backends: real daemons run every alert's GET + POST
rule to `succeeded`, exactly once, and the bench reports runs/s, CPU per run and the
exactly-once check against its same-run baseline. Nothing is written (`--no-write`); no
figure is asserted but the exactly-once count (the others mean nothing at this size)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import REPO


@pytest.mark.timeout(300)
def test_the_engine_bench_runs_every_alert_exactly_once_on_both_backends(
    tmp_path: Path, postgres_dsn: str, redis_url: str
) -> None:
    if not postgres_dsn.startswith("postgresql://postgres@127.0.0.1:5432/") or not (
        redis_url.startswith("redis://127.0.0.1:6379/")
    ):
        pytest.skip("the benches use the local servers (127.0.0.1:5432 db test, :6379) only")
    out = tmp_path / "engine.json"
    argv = ["--quick", "--scale", "0.3", "--no-write", "--json", str(out), "engine"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.suite", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [engine] = json.loads(out.read_text())
    rows: dict[str, dict[str, Any]] = {row["figure"]: row for row in engine["rows"]}
    for backend in ("embedded", "postgres+redis"):
        throughput = rows[f"{backend}: completed runs/s"]
        assert throughput["value"] > 0
        assert throughput["baseline"] > 0
        assert throughput["ratio"] == pytest.approx(throughput["value"] / throughput["baseline"])
        assert rows[f"{backend}: daemon CPU per run"]["value"] > 0
        once = rows[f"{backend}: runs not completed exactly once"]
        assert (once["value"], once["met"]) == (0, True), engine["notes"]
    assert "| figure | value | baseline (same run) | ratio | target | met? |" in done.stdout
