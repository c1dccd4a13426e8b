"""Result rows and tables: figure, baseline, ratio, target, met; rendered as Markdown.

A `Row` holds one measured figure and the baseline measured in the same run. Its `Target`
says which number the goal applies to (the figure itself, or the ratio figure/baseline) and
the bound. `as_dict` is the row as it is stored in a results file (`bench.results`), and
`row_cells` renders either form as table cells, so the tables `bench/run` prints and the
summary regenerated from a results file (`bench.summary`) read the same. `render_run` turns a
list of `BenchResult`s into Markdown with a header naming the date, the machine (nproc, CPU
model) and the git revision.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]

Compare = Literal["<=", ">=", "=="]


@dataclass(frozen=True)
class Target:
    """A goal: `on` ('value' or 'ratio') compared with `bound`; `text` is how it is shown."""

    compare: Compare
    bound: float
    on: Literal["value", "ratio"] = "value"
    text: str = ""

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        """Whether the goal holds (None when the number it needs is missing)."""
        number = value if self.on == "value" else ratio
        if number is None:
            return None
        if self.compare == "<=":
            return number <= self.bound
        if self.compare == ">=":
            return number >= self.bound
        return number == self.bound

    def describe(self, unit: str) -> str:
        """How the target reads in a table."""
        if self.text:
            return self.text
        if self.on == "ratio":
            return f"ratio {self.compare} {self.bound:g}"
        return f"{self.compare} {format_number(self.bound)} {unit}".strip()


@dataclass(frozen=True)
class Row:
    """One figure of a bench, with the baseline measured in the same run."""

    figure: str
    value: float | None
    unit: str = ""
    baseline: float | None = None
    baseline_label: str = ""
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        """value / baseline, when both are known and the baseline is not zero."""
        if self.value is None or self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """Whether the target holds (None without a target)."""
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (a results file's rows; `bench/run --json`)."""
        return {
            "figure": self.figure,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_label": self.baseline_label,
            "ratio": self.ratio,
            "target": None if self.target is None else self.target.describe(self.unit),
            "met": self.met,
        }

    def cells(self) -> list[str]:
        """The table cells: figure, value, baseline, ratio, target, met?"""
        return row_cells(self.as_dict())


def row_cells(row: Mapping[str, Any]) -> list[str]:
    """The table cells of a row in its stored form (`Row.as_dict`): figure, value, baseline,
    ratio, target, met?"""
    unit = row["unit"]
    value = "n/a" if row["value"] is None else f"{format_number(row['value'])} {unit}".strip()
    if row["baseline"] is None:
        baseline = "—"
    else:
        baseline = f"{format_number(row['baseline'])} {unit}".strip()
        if row["baseline_label"]:
            baseline += f" ({row['baseline_label']})"
    ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}"
    target = "—" if row["target"] is None else row["target"]
    met = {None: "—", True: "yes", False: "**no**"}[row["met"]]
    return [row["figure"], value, baseline, ratio, target, met]


HEADER = ("figure", "value", "baseline (same run)", "ratio", "target", "met?")


@dataclass
class BenchResult:
    """What one bench measured: a titled table and free-text notes."""

    name: str
    title: str
    description: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values (a results file's benches; `bench/run --json`)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "seconds": self.seconds,
            "rows": [row.as_dict() for row in self.rows],
            "notes": self.notes,
        }

    def markdown(self) -> str:
        """`### title`, the description, the table and the notes."""
        lines = [f"### {self.title}", "", self.description, ""]
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("|---|---:|---:|---:|---|---|")
        lines.extend("| " + " | ".join(row.cells()) + " |" for row in self.rows)
        lines.append("")
        for note in self.notes:
            lines.append(f"- {note}")
        if self.notes:
            lines.append("")
        return "\n".join(lines)


def format_number(number: float) -> str:
    """Thousands separators; up to 3 significant decimals for small numbers."""
    if number == int(number) and abs(number) >= 1:
        return f"{int(number):,}"
    if abs(number) >= 100:
        return f"{number:,.0f}"
    if abs(number) >= 10:
        return f"{number:,.1f}"
    if abs(number) >= 1:
        return f"{number:.2f}"
    return f"{number:.3g}"


def machine() -> str:
    """`nproc` CPUs, the CPU model, the memory, Python and the kernel."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    cpus = os.cpu_count() or 0
    return (
        f"nproc {cpus}, {model}{memory}, Python {platform.python_version()}, "
        f"Linux {platform.release()}"
    )


def git_revision() -> str:
    """The short HEAD revision, with `-dirty` when tracked files have uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def render_run(
    results: list[BenchResult],
    *,
    quick: bool,
    started: datetime | None = None,
    revision: str | None = None,
) -> str:
    """The Markdown section of one `bench/run`: header, then one table per bench."""
    when = (started or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    mode = " (quick smoke run: figures are not meaningful)" if quick else ""
    missed = sum(1 for r in results for row in r.rows if row.met is False)
    lines = [
        f"## Benchmark run {when}{mode}",
        "",
        f"Machine: {machine()}. Git revision: `{revision or git_revision()}`. "
        f"Targets missed: {missed}. Total time: {sum(r.seconds for r in results):.0f} s.",
        "",
    ]
    for result in results:
        lines.append(result.markdown())
    return "\n".join(lines)
