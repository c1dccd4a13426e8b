"""Rule scale: load + validate time of 10 to 10,000 rules, and match time per alert.

Rule files are written as the daemon reads them (YAML, 500 rules per file); the time is that
of `load_snapshot`, what `responder serve` and every reload run: read, validate (schema,
actions, templates, severities, duplicate ids) and index. The rules have the shape of
`bench_matching` (distinct `alertname` matchers plus a regex, a negative matcher and a
severity condition; 5 wildcard rules) and a templated `http.request` step.

Match time: `RuleIndex.match` for one firing alert whose name one rule matches, each call
timed on its own (perf_counter_ns), p50 and p99. Baselines: for loading, parsing the same
files with PyYAML's SafeLoader alone (the floor of reading them); for matching, the 10-rule
set (flat means a ratio near 1).

    bench/run rule_scale [--quick]
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import yaml

from bench.bench_matching import WILDCARDS, make_alert
from bench.context import Context
from bench.loadgen import percentile
from bench.report import BenchResult, Row, Target
from responder.actions.shipped import default_registry
from responder.adapters.clock import SystemClock
from responder.core.severities import SeverityScale
from responder.engine.rulebook import RuleSnapshot
from responder.settings import DEFAULT_SEVERITY_LEVELS
from responder.web.rules_reload import load_snapshot

PER_FILE = 500

NAMED = """\
id: rule-{i}
match:
  source: {source}
  matchers: ['alertname="Alert{i}"', 'namespace=~"prod-.*"', 'team!="sandbox"']
  severity: ">= warning"
guards:
  key: "{{{{ labels.pod }}}}"
  cooldown: 10m
steps:
  - id: check
    action: http.request
    with: {{url: "http://{{{{ labels.pod }}}}.svc:8080/health"}}
"""
WILDCARD = """\
id: wildcard-{i}
match:
  matchers: ['team="team-{i}"', 'namespace=~"prod-.*"']
steps:
  - id: note
    action: log
    with: {{message: "{{{{ alert.name }}}} for team-{i}"}}
"""


def write_rules(directory: Path, size: int) -> None:
    """`size` rules in files of PER_FILE documents: named rules, then the wildcards."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = [
        NAMED.format(i=i, source="alertmanager" if i % 2 else "any")
        for i in range(size - WILDCARDS)
    ] + [WILDCARD.format(i=i) for i in range(WILDCARDS)]
    for start in range(0, len(documents), PER_FILE):
        text = "---\n".join(documents[start : start + PER_FILE])
        (directory / f"rules-{start // PER_FILE:03d}.yaml").write_text(text)


def parse_only(directory: Path) -> float:
    """Seconds to parse every file with PyYAML's SafeLoader (no validation)."""
    start = time.perf_counter()
    for path in sorted(directory.glob("*.yaml")):
        list(yaml.load_all(path.read_text(), Loader=yaml.SafeLoader))
    return time.perf_counter() - start


def match_times_us(snapshot: RuleSnapshot, calls: int, size: int) -> list[float]:
    """Per-call `match` time (µs) of an alert one named rule (and one wildcard) matches."""
    alert = make_alert(f"Alert{(size - WILDCARDS) // 2}")
    match = snapshot.index.match
    assert len(match(alert)) == 2
    for _ in range(1000):  # warm up
        match(alert)
    samples = []
    clock = time.perf_counter_ns
    gc.collect()
    for _ in range(calls):
        start = clock()
        match(alert)
        samples.append((clock() - start) / 1e3)
    return samples


def run(ctx: Context) -> BenchResult:
    """Every size: write, parse (baseline), load + validate + index, match."""
    sizes = (10, 100) if ctx.quick else (10, 100, 1_000, 10_000)
    calls = ctx.count(50_000, 2_000)
    result = BenchResult(
        "rule_scale",
        "Rule scale",
        f"`load_snapshot` (read, validate, index) of {', '.join(f'{s:,}' for s in sizes)} "
        f"rules in files of {PER_FILE}; match time per alert over {calls:,} single timed "
        "calls. Baselines: PyYAML SafeLoader parsing the same files; the 10-rule match time.",
    )
    known = default_registry().names()
    scale = SeverityScale(DEFAULT_SEVERITY_LEVELS)
    clock = SystemClock()
    base_p50 = base_p99 = None
    for size in sizes:
        directory = ctx.scratch(f"rules-{size}")
        write_rules(directory, size)
        parse_s = parse_only(directory)
        ctx.say(f"{size:,} rules: load")
        gc.collect()
        start = time.perf_counter()
        snapshot = load_snapshot(directory, known, scale, clock)
        load_s = time.perf_counter() - start
        assert len(snapshot.rules) == size
        samples = match_times_us(snapshot, calls, size)
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        if base_p50 is None:
            base_p50, base_p99 = p50, p99
        load_target = Target("<=", 5.0) if size == 10_000 else None
        result.rows.extend(
            [
                Row(
                    f"{size:,} rules: load + validate + index",
                    load_s,
                    "s",
                    parse_s,
                    "YAML parse only",
                    load_target,
                ),
                Row(f"{size:,} rules: match p50", p50, "µs", base_p50, "10 rules"),
                Row(
                    f"{size:,} rules: match p99",
                    p99,
                    "µs",
                    base_p99,
                    "10 rules",
                    Target("<=", 50.0),
                ),
            ]
        )
    return result
