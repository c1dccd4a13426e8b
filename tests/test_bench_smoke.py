"""The benchmarks keep working: `bench/run --quick` in miniature, checked for well-formed rows.

No figure is asserted (they mean nothing at this size, on a shared machine): only that every
bench runs against real processes and reports rows with a figure, a value, a baseline and a
target verdict. About 30-60 s in all: a dozen processes start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EVERY_BENCH = ["intake", "ack_latency", "reaction", "storm", "rule_scale", "footprint"]


def _needs(tool: str) -> None:
    if shutil.which(tool) is None:
        message = f"{tool} is not installed (apt-get install {tool})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def _bench_run(tmp_path: Path, *args: str) -> tuple[str, list[dict[str, Any]]]:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.suite", "--quick", "--scale", "0.3", "--no-write",
         "--json", str(out), *args],
        cwd=REPO, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results: list[dict[str, Any]] = json.loads(out.read_text())
    return done.stdout, results


def _well_formed(row: dict[str, Any]) -> None:
    assert isinstance(row["figure"], str)
    assert row["figure"]
    value, baseline = row["value"], row["baseline"]
    assert isinstance(value, int | float), row
    assert baseline is None or isinstance(baseline, int | float), row
    if row["ratio"] is not None:
        assert baseline
        assert row["ratio"] == pytest.approx(value / baseline)
    assert row["met"] in (True, False, None)
    assert (row["target"] is None) == (row["met"] is None), row


@pytest.mark.timeout(600)
def test_every_bench_runs_in_miniature_on_the_embedded_default(tmp_path: Path) -> None:
    _needs("wrk")
    markdown, results = _bench_run(tmp_path, "--backend", "embedded", *EVERY_BENCH)
    assert [r["name"] for r in results] == EVERY_BENCH
    for result in results:
        assert result["rows"], result["name"]
        for row in result["rows"]:
            _well_formed(row)
    assert markdown.startswith("## Benchmark run ")
    assert "Machine: nproc " in markdown
    header = "| figure | value | baseline (same run) | ratio | target | met? |"
    assert markdown.count(header) == len(EVERY_BENCH)
    targets = {row["figure"]: row for r in results for row in r["rows"] if row["target"]}
    assert "embedded: ack latency p99" in targets
    assert "start-up to ready" in targets


@pytest.mark.timeout(300)
def test_the_storm_bench_reads_back_postgres_and_redis(
    tmp_path: Path, postgres_dsn: str, redis_url: str
) -> None:
    if not postgres_dsn.startswith("postgresql://postgres@127.0.0.1:5432/") or not (
        redis_url.startswith("redis://127.0.0.1:6379/")
    ):
        pytest.skip("the benches use the local servers (127.0.0.1:5432 db test, :6379) only")
    _, results = _bench_run(tmp_path, "--backend", "postgres+redis", "storm")
    (storm,) = results
    figures = {row["figure"]: row for row in storm["rows"]}
    assert set(figures) == {
        "postgres+redis: keys with exactly one run started",
        "postgres+redis: acknowledged alerts missing from the store",
        "postgres+redis: answers other than 202 and 503 (5xx, none)",
        "postgres+redis: peak RSS (VmHWM)",
    }
    for row in storm["rows"]:
        _well_formed(row)
