"""`bench/run`: run the benchmarks, keep their raw results, regenerate the summary.

    bench/run [--quick [--scale F]] [--no-write] [--results-dir DIR] [--docs FILE]
              [--json FILE] [--keep] [--backend NAME ...] [BENCH ...]

BENCH is any of: intake, ack_latency, reaction, storm, rule_scale, footprint, engine (default: all,
in that order; the full set takes about 5-8 minutes on 2 cores). Every run prints its tables
and writes its raw results to `bench/results/<date>-<rev>.json` (`bench.results`); a complete
run (every bench on both backends) then regenerates the summary table of docs/performance.md
from that file (`bench.summary`). `--no-write` writes neither.

`--quick` runs miniature versions (about 1 s of load each) to check the machinery: their
figures mean nothing, so a quick run writes nothing unless `--results-dir` (or `--docs`) is
given; `--scale 0.3` shrinks them further, for the CI smoke test; `--json` also writes the
benches as a JSON list. Every bench runs in its own temporary directory (kept with `--keep`);
the PostgreSQL + Redis figures need the local servers (127.0.0.1:5432 database `test`,
127.0.0.1:6379) and are left out, with a note, without them; `--backend embedded` runs only
the embedded default.
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
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    ack_latency,
    backends,
    engine,
    footprint,
    intake,
    reaction,
    results,
    rule_scale,
    storm,
    summary,
)
from bench.context import Context
from bench.report import BenchResult, git_revision, render_run

BENCHES: dict[str, Callable[[Context], BenchResult]] = {
    "intake": intake.run,
    "ack_latency": ack_latency.run,
    "reaction": reaction.run,
    "storm": storm.run,
    "rule_scale": rule_scale.run,
    "footprint": footprint.run,
    "engine": engine.run,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("benches", nargs="*", metavar="BENCH", help=", ".join(BENCHES))
    parser.add_argument("--quick", action="store_true", help="miniature smoke versions")
    parser.add_argument(
        "--results-dir", type=Path, help=f"where the results file goes ({results.RESULTS_DIR})"
    )
    parser.add_argument(
        "--docs", type=Path, help=f"page whose summary a complete run rewrites ({summary.DOCS})"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--scale", type=float, default=1.0, help="factor on --quick sizes")
    parser.add_argument(
        "--backend",
        action="append",
        choices=[backends.EMBEDDED, backends.POSTGRES_REDIS],
        help="only this backend (repeatable; default: every available one)",
    )
    parser.add_argument("--json", type=Path, help="also write the benches as a JSON list here")
    args = parser.parse_args(argv)
    unknown = [name for name in args.benches if name not in BENCHES]
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    if args.no_write and (args.results_dir or args.docs):
        parser.error("--no-write writes nothing: drop --results-dir and --docs")
    if args.quick and args.docs and not args.results_dir:
        parser.error("a quick run's summary needs --results-dir (quick figures stay out of bench/)")
    return args


def usable_backends(only: list[str] | None) -> tuple[tuple[str, ...], list[str]]:
    """The backends to run (`only`, or every one) that are available here, and a note for
    each one left out."""
    usable = []
    left_out = []
    for name in only or (backends.EMBEDDED, backends.POSTGRES_REDIS):
        problem = backends.available(name)
        if problem is None:
            usable.append(name)
        else:
            left_out.append(f"backend {name} left out: {problem}")
            print(f"note: {left_out[-1]}", file=sys.stderr)
    return tuple(usable), left_out


def run_benches(
    names: list[str],
    *,
    quick: bool,
    keep: bool,
    scale: float = 1.0,
    usable: tuple[str, ...] = (backends.EMBEDDED, backends.POSTGRES_REDIS),
    left_out: list[str] | None = None,
) -> tuple[list[BenchResult], list[str]]:
    """Run `names` in order on the `usable` backends; their results (each noting the backends
    `left_out`), and the names of those that failed."""
    done: list[BenchResult] = []
    failed: list[str] = []
    for name in names:
        workdir = Path(tempfile.mkdtemp(prefix=f"responder-bench-{name}-"))
        ctx = Context(workdir, quick=quick, scale=scale, backends=usable)
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
        result.notes.extend(left_out or [])
        done.append(result)
        ctx.say(f"== {name} done in {result.seconds:.0f} s")
    return done, failed


def main(argv: list[str] | None = None) -> int:
    """Run, print, keep the results; exit 1 if a bench failed (a missed target is no failure)."""
    args = parse_args(argv)
    names = args.benches or list(BENCHES)
    started = datetime.now(UTC)
    revision = git_revision()
    usable, left_out = usable_backends(args.backend)
    done, failed = run_benches(
        names, quick=args.quick, keep=args.keep, scale=args.scale, usable=usable, left_out=left_out
    )
    print(render_run(done, quick=args.quick, started=started, revision=revision))
    if args.json is not None:
        args.json.write_text(json.dumps([r.as_dict() for r in done], indent=2))
    # quick figures mean nothing: they never go into bench/results/ unless asked to
    results_dir = args.results_dir or (None if args.quick else results.RESULTS_DIR)
    docs = args.docs or (None if args.quick else summary.DOCS)
    if not args.no_write and done and results_dir is not None:
        # the summary shows only a full picture: every bench on every backend
        complete = not failed and not left_out and not args.backend and set(names) == set(BENCHES)
        run = results.record(
            done,
            started=started,
            quick=args.quick,
            complete=complete,
            revision=revision,
            notes=left_out,
        )
        path = results.write(run, results_dir)
        print(f"results: {path}", file=sys.stderr)
        if docs is not None and complete:
            _, changed = summary.update(docs, path)
            print(f"summary of {docs} {'rewritten' if changed else 'unchanged'}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
