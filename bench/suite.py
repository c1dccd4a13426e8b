"""`bench/run`: run the benchmarks and append their tables to docs/performance.md.

    bench/run [--quick [--scale F]] [--no-write | --output FILE] [--json FILE] [--keep]
              [--backend NAME ...] [BENCH ...]

BENCH is any of: intake, ack_latency, reaction, storm, rule_scale, footprint (default: all,
in that order; the full set takes about 7 minutes on 2 cores). `--quick` runs miniature
versions (about 1 s of load each) to check the machinery: their figures mean nothing and are
not written unless `--output` is given (`--scale 0.3` shrinks them further, for the CI smoke
test; `--json` also writes every row as JSON). Every bench runs in its own temporary directory
(kept with `--keep`); the PostgreSQL + Redis figures need the local servers
(127.0.0.1:5432 database `test`, 127.0.0.1:6379) and are left out, with a note, without them;
`--backend embedded` runs only the embedded default.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import ack_latency, backends, footprint, intake, reaction, rule_scale, storm
from bench.context import Context
from bench.report import REPO, BenchResult, append_markdown, render_run

BENCHES: dict[str, Callable[[Context], BenchResult]] = {
    "intake": intake.run,
    "ack_latency": ack_latency.run,
    "reaction": reaction.run,
    "storm": storm.run,
    "rule_scale": rule_scale.run,
    "footprint": footprint.run,
}
DEFAULT_OUTPUT = REPO / "docs" / "performance.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("benches", nargs="*", metavar="BENCH", help=", ".join(BENCHES))
    parser.add_argument("--quick", action="store_true", help="miniature smoke versions")
    parser.add_argument("--output", type=Path, help="Markdown file to append the tables to")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--scale", type=float, default=1.0, help="factor on --quick sizes")
    parser.add_argument(
        "--backend",
        action="append",
        choices=[backends.EMBEDDED, backends.POSTGRES_REDIS],
        help="only this backend (repeatable; default: every available one)",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    unknown = [name for name in args.benches if name not in BENCHES]
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    return args


def run_benches(
    names: list[str],
    *,
    quick: bool,
    keep: bool,
    scale: float = 1.0,
    only: list[str] | None = None,
) -> tuple[list[BenchResult], list[str]]:
    """Run `names` in order; their results, and the names of those that failed."""
    usable = []
    skipped_notes = []
    for name in only or (backends.EMBEDDED, backends.POSTGRES_REDIS):
        problem = backends.available(name)
        if problem is None:
            usable.append(name)
        else:
            skipped_notes.append(f"backend {name} left out: {problem}")
            print(f"note: {skipped_notes[-1]}", file=sys.stderr)
    results: list[BenchResult] = []
    failed: list[str] = []
    for name in names:
        workdir = Path(tempfile.mkdtemp(prefix=f"responder-bench-{name}-"))
        ctx = Context(workdir, quick=quick, scale=scale, backends=tuple(usable))
        ctx.say(f"== {name} (in {workdir})")
        started = time.perf_counter()
        try:
            result = BENCHES[name](ctx)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        finally:
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
        result.seconds = time.perf_counter() - started
        result.notes.extend(skipped_notes)
        results.append(result)
        ctx.say(f"== {name} done in {result.seconds:.0f} s")
    return results, failed


def main(argv: list[str] | None = None) -> int:
    """Run, print, append; exit 1 if a bench failed (targets missed are not failures)."""
    args = parse_args(argv)
    names = args.benches or list(BENCHES)
    results, failed = run_benches(
        names, quick=args.quick, keep=args.keep, scale=args.scale, only=args.backend
    )
    section = render_run(results, quick=args.quick)
    print(section)
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    if output is not None and not args.no_write and results:
        append_markdown(output, section)
        print(f"appended to {output}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
