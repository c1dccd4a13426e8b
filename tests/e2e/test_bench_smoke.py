"""The benchmarks keep working: `bench/run --quick` in miniature, checked for well-formed rows.

No figure is asserted (they mean nothing at this size, on a shared machine): only that every
bench runs against real processes and reports rows with a figure, a value, a baseline and a
target verdict, that the run's results file is written where it is told (never into the
repository's bench/results/ from a smoke run), and that the summary in docs/performance.md is
the one generated from the latest results file. About 30-60 s in all: a dozen processes start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import results, summary
from tests.support.paths import REPO

EVERY_BENCH = ["intake", "ack_latency", "reaction", "storm", "rule_scale", "footprint", "engine"]


def _needs(tool: str) -> None:
    if shutil.which(tool) is None:
        message = f"{tool} is not installed (apt-get install {tool})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def _bench_run(tmp_path: Path, *args: str) -> tuple[str, list[dict[str, Any]]]:
    out = tmp_path / "results.json"
    quick = ["--quick", "--scale", "0.3", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench.suite", *quick, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    benches: list[dict[str, Any]] = json.loads(out.read_text())
    return done.stdout, benches


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
    kept = sorted(results.RESULTS_DIR.iterdir())
    out = tmp_path / "results"
    markdown, benches = _bench_run(
        tmp_path, "--results-dir", str(out), "--backend", "embedded", *EVERY_BENCH
    )
    assert sorted(results.RESULTS_DIR.iterdir()) == kept  # a smoke run keeps out of bench/
    (written,) = out.iterdir()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-[0-9a-f]{7,}(-dirty)?\.json", written.name)
    run = results.load(written)
    assert run["benches"] == benches
    assert (run["quick"], run["complete"], run["source"]) == (True, False, "bench/run")
    assert [r["name"] for r in benches] == EVERY_BENCH
    for result in benches:
        assert result["rows"], result["name"]
        for row in result["rows"]:
            _well_formed(row)
    assert markdown.startswith("## Benchmark run ")
    assert "Machine: nproc " in markdown
    header = "| figure | value | baseline (same run) | ratio | target | met? |"
    assert markdown.count(header) == len(EVERY_BENCH)
    targets = {row["figure"]: row for r in benches for row in r["rows"] if row["target"]}
    assert "embedded: ack latency p99" in targets
    assert "start-up to ready" in targets

    # the summary regenerates from a results file: every row with a target, nothing else
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\n{summary.BEGIN}\nstale\n{summary.END}\n\nprose\n")
    assert summary.update(page, written) == (written, True)
    text = page.read_text()
    assert "stale" not in text
    assert text.endswith(f"{summary.END}\n\nprose\n")
    table = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(table) == len(targets)
    assert summary.update(page, written) == (written, False)


def test_the_performance_summary_is_generated_from_the_latest_results_file() -> None:
    latest = results.latest()
    page = summary.DOCS.read_text(encoding="utf-8")
    expected = summary.render(results.load(latest), latest, summary.DOCS)
    assert expected in page, "run: .venv/bin/python -m bench.summary"


@pytest.mark.timeout(300)
def test_the_storm_bench_reads_back_postgres_and_redis(
    tmp_path: Path, postgres_dsn: str, redis_url: str
) -> None:
    if not postgres_dsn.startswith("postgresql://postgres@127.0.0.1:5432/") or not (
        redis_url.startswith("redis://127.0.0.1:6379/")
    ):
        pytest.skip("the benches use the local servers (127.0.0.1:5432 db test, :6379) only")
    _, benches = _bench_run(tmp_path, "--no-write", "--backend", "postgres+redis", "storm")
    (storm,) = benches
    figures = {row["figure"]: row for row in storm["rows"]}
    assert set(figures) == {
        "postgres+redis: keys with exactly one run started",
        "postgres+redis: acknowledged alerts missing from the store",
        "postgres+redis: answers other than 202 and 503 (5xx, none)",
        "postgres+redis: peak RSS (VmHWM)",
    }
    for row in storm["rows"]:
        _well_formed(row)
