"""Results files: each `bench/run` keeps its raw figures in `bench/results/<date>-<rev>.json`.

A record is one run: when it started (UTC), the git revision (`-dirty` when tracked files had
uncommitted changes), the machine, whether it was a quick smoke run, whether every bench ran
(`complete`), and every bench with all its rows in `Row.as_dict` form (figure, value, unit,
baseline, baseline label, ratio, target, met). The summary in docs/performance.md is
regenerated from the newest complete record (`bench.summary`). A record transcribed from an
older Markdown report rather than written by `bench/run` says so in `source`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import REPO, BenchResult, git_revision, machine

RESULTS_DIR = REPO / "bench" / "results"
FORMAT = 1


def record(
    results: list[BenchResult],
    *,
    started: datetime,
    quick: bool,
    complete: bool,
    revision: str | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """One run as JSON-ready values."""
    return {
        "format": FORMAT,
        "started": started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "revision": revision or git_revision(),
        "machine": machine(),
        "quick": quick,
        "complete": complete,
        "source": "bench/run",
        "seconds": round(sum(r.seconds for r in results), 1),
        "targets_missed": sum(1 for r in results for row in r.rows if row.met is False),
        "notes": notes or [],
        "benches": [r.as_dict() for r in results],
    }


def write(run: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write `run` as `<date>-<rev>.json` in `directory` (`-2`, `-3`... when that file exists:
    a second run of one revision on one day keeps the first)."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{run['started'][:10]}-{run['revision']}"
    path = directory / f"{stem}.json"
    counter = 2
    while path.exists():
        path = directory / f"{stem}-{counter}.json"
        counter += 1
    path.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load(path: Path) -> dict[str, Any]:
    """A results file's record, refused if it is not one this code writes."""
    run: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if run.get("format") != FORMAT or not isinstance(run.get("benches"), list):
        raise ValueError(f"{path}: not a bench results file of format {FORMAT}")
    return run


def latest(directory: Path = RESULTS_DIR) -> Path:
    """The newest complete, full-size run in `directory` (by its start time, not its name:
    revisions do not sort)."""
    candidates = []
    for path in directory.glob("*.json"):
        run = load(path)
        if run["complete"] and not run["quick"]:
            candidates.append((run["started"], path.name, path))
    if not candidates:
        raise FileNotFoundError(f"no complete bench run in {directory}; run bench/run")
    return max(candidates)[2]
