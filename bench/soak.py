"""Soak: a steady alert rate for a long time, with Redis restarted periodically.

    .venv/bin/python -m bench.soak                 # 30 minutes at 200 alerts/s (issue's run)
    .venv/bin/python -m bench.soak --seconds 20 --rate 50 --redis-restart-every 6   # smoke

Starts, on loopback: a dedicated redis-server (so it can be stopped), a fresh schema in the
PostgreSQL at RESPONDER_SOAK_POSTGRES (default postgresql://127.0.0.1:5432/test), a local
HTTP target for the containment step, and one real `responder serve` process. Then posts one
Alertmanager alert every 1/rate seconds (open loop, 1,000 fingerprints, a new occurrence per
post) and every N seconds stops Redis for 5 s and starts it again. Every 10 s it samples the
daemon's RSS and open file descriptors (/proc) and its asyncio task count (/metrics).

At the end it checks that every acknowledged alert is in PostgreSQL and prints a markdown
report: samples, counts of answers, and whether RSS, fds and tasks stayed flat (last fifth
against the second fifth of the run: growth under 20% for RSS, under 10 fds, under 10 tasks).
Exit status 0 only when nothing acknowledged was lost, no 5xx other than 503 was seen and the
figures stayed flat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg
from aiohttp import web
from psycopg.conninfo import make_conninfo

from bench.processes import REPO, free_port, proc_status_kib

TOKEN = "soak-token"
READER = "soak-reader"


@dataclass
class Tally:
    """What the load generator saw."""

    acked: int = 0
    back_pressure: int = 0  # 503
    other_errors: dict[str, int] = field(default_factory=dict)  # status or exception -> count
    samples: list[dict[str, float]] = field(default_factory=list)
    redis_restarts: int = 0


class Redis:
    """A redis-server of our own on a free port, stoppable and restartable."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _fresh_schema(server: str) -> tuple[str, str]:
    name = f"responder_soak_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, connect_timeout=5, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    return name, make_conninfo(server, options=f"-c search_path={name}")


def _drop_schema(server: str, name: str) -> None:
    with psycopg.connect(server, connect_timeout=5, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _stored_alerts(dsn: str) -> int:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM alerts").fetchone()
    return int(row[0]) if row else 0


RULE = """
id: soak
match: {{matchers: ['alertname="SoakAlert"']}}
guards: {{key: "{{{{ labels.instance }}}}", cooldown: 30s}}
steps:
  - {{id: look, action: log, with: {{message: "soak {{{{ labels.instance }}}}"}}}}
  - id: act
    action: http.request
    with: {{method: POST, url: "{target}/act", json: {{instance: "{{{{ labels.instance }}}}"}}}}
"""


def _body(i: int) -> bytes:
    started = (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    alert = {
        "status": "firing",
        "labels": {"alertname": "SoakAlert", "instance": f"host-{i % 1000}", "seq": str(i)},
        "annotations": {"summary": "soak"},
        "startsAt": started,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": f"{i % 1000:016x}",
    }
    payload = {
        "version": "4",
        "groupKey": '{}:{alertname="SoakAlert"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "responder",
        "groupLabels": {"alertname": "SoakAlert"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert],
    }
    return json.dumps(payload).encode()


async def _post(session: aiohttp.ClientSession, url: str, i: int, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    try:
        async with session.post(url, data=_body(i), headers=headers) as reply:
            await reply.read()
            if reply.status == 202:
                tally.acked += 1
            elif reply.status == 503:
                tally.back_pressure += 1
            else:
                key = str(reply.status)
                tally.other_errors[key] = tally.other_errors.get(key, 0) + 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        key = type(exc).__name__
        tally.other_errors[key] = tally.other_errors.get(key, 0) + 1


def _proc_figures(pid: int) -> tuple[float, int]:
    """RSS in MiB and open file descriptors of the daemon."""
    rss_kib = proc_status_kib(pid, "VmRSS") or 0
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


async def _tasks(session: aiohttp.ClientSession, base: str) -> float:
    async with session.get(f"{base}/metrics") as reply:
        for line in (await reply.text()).splitlines():
            if line.startswith("responder_asyncio_tasks "):
                return float(line.split()[1])
    return -1.0


async def _soak(args: argparse.Namespace, work: Path, dsn: str) -> tuple[Tally, int]:
    tally = Tally()
    redis = Redis(work)
    redis.start()
    hits = 0

    async def act(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        await request.read()
        return web.json_response({"ok": True})

    target_app = web.Application()
    target_app.router.add_post("/act", act)
    runner = web.AppRunner(target_app, access_log=None)
    await runner.setup()
    target_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", target_port).start()
    rules = work / "rules"
    rules.mkdir()
    (rules / "soak.yaml").write_text(RULE.format(target=f"http://127.0.0.1:{target_port}"))
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RESPONDER_LISTEN": f"127.0.0.1:{port}",
        "RESPONDER_RULES_DIR": str(rules),
        "RESPONDER_DATA_DIR": str(work / "data"),
        "RESPONDER_DATABASE_URL": dsn,
        "RESPONDER_MIGRATE_ON_START": "true",
        "RESPONDER_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "RESPONDER_WEBHOOK_TOKEN": TOKEN,
        "RESPONDER_READER_TOKENS": f"soak:{READER}",
        "RESPONDER_HTTP_ALLOWED_HOSTS": "127.0.0.1",
        "RESPONDER_STORM_MAX": "100000",
        "RESPONDER_LOG_FORMAT": "json",
        "RESPONDER_LOG_LEVEL": "warning",
    }
    log = (work / "daemon.log").open("w")
    daemon = subprocess.Popen(  # noqa: ASYNC220 - returns at once; waited for at the end
        [sys.executable, "-m", "responder", "serve"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        deadline = time.monotonic() + 30
        while True:
            try:
                async with session.get(f"{base}/readyz") as reply:
                    if reply.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise RuntimeError("daemon not ready: " + (work / "daemon.log").read_text()[-2000:])
            await asyncio.sleep(0.1)

        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + args.seconds
        next_sample = start
        next_restart = start + args.redis_restart_every
        in_flight: set[asyncio.Task[None]] = set()
        i = 0
        while loop.time() < end:
            now = loop.time()
            if now >= next_restart:
                await asyncio.to_thread(redis.stop)
                tally.redis_restarts += 1
                next_restart = now + args.redis_restart_every
                loop.call_later(args.redis_down_seconds, redis.start)
            if now >= next_sample:
                rss, fds = _proc_figures(daemon.pid)
                tasks = await _tasks(session, base)
                sample = {"t": round(now - start, 1), "rss_mb": round(rss, 1), "fds": fds}
                tally.samples.append({**sample, "tasks": tasks, "acked": tally.acked})
                next_sample = now + args.sample_every
            # open loop: the i-th post is due at start + i/rate, whatever earlier ones did
            due = start + i / args.rate
            if due > now:
                await asyncio.sleep(due - now)
            task = asyncio.create_task(_post(session, f"{base}/v1/webhooks/alertmanager", i, tally))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            i += 1
        await asyncio.gather(*in_flight)
        rss, fds = _proc_figures(daemon.pid)
        tally.samples.append(
            {
                "t": round(loop.time() - start, 1),
                "rss_mb": round(rss, 1),
                "fds": fds,
                "tasks": await _tasks(session, base),
                "acked": tally.acked,
            }
        )
    daemon.send_signal(signal.SIGTERM)
    code = daemon.wait(timeout=60)
    log.close()
    redis.stop()
    await runner.cleanup()
    if code != 0:
        raise RuntimeError(f"daemon exited {code}: " + (work / "daemon.log").read_text()[-2000:])
    return tally, hits


def _flat(samples: list[dict[str, float]]) -> dict[str, tuple[float, float, bool]]:
    """(early, late, flat) per figure: mean of the second fifth against the last fifth."""
    n = len(samples)
    fifth = max(n // 5, 1)
    early = samples[fifth : 2 * fifth] or samples[:1]
    late = samples[-fifth:]

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    result = {}
    for key, limit in (("rss_mb", None), ("fds", 10.0), ("tasks", 10.0)):
        a, b = mean(early, key), mean(late, key)
        flat = b <= a * 1.2 if limit is None else b - a <= limit
        result[key] = (round(a, 1), round(b, 1), flat)
    return result


def _report(args: argparse.Namespace, tally: Tally, stored: int, hits: int) -> tuple[str, bool]:
    flat = _flat(tally.samples)
    lost = tally.acked - stored
    ok = lost <= 0 and not tally.other_errors and all(f for _, _, f in flat.values())
    lines = [
        f"### Soak {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.seconds:g} s at "
        f"{args.rate:g} alerts/s, Redis restarted every {args.redis_restart_every:g} s "
        f"(down {args.redis_down_seconds:g} s)",
        "",
        "| figure | value |",
        "|---|---|",
        f"| alerts acknowledged (202) | {tally.acked} |",
        f"| alerts in PostgreSQL afterwards | {stored} |",
        f"| acknowledged but lost | {max(lost, 0)} |",
        f"| 503 back-pressure answers | {tally.back_pressure} |",
        f"| other errors | {json.dumps(tally.other_errors) if tally.other_errors else 'none'} |",
        f"| Redis restarts | {tally.redis_restarts} |",
        f"| containment POSTs received by the target | {hits} |",
    ]
    for key, (early, late, is_flat) in flat.items():
        lines.append(
            f"| {key}: early / late mean | {early} / {late} ({'flat' if is_flat else 'GROWING'}) |"
        )
    lines += [
        "",
        "| t (s) | RSS (MB) | open fds | asyncio tasks | acked |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {s['t']} | {s['rss_mb']} | {s['fds']:.0f} | {s['tasks']:.0f} | {s['acked']:.0f} |"
        for s in tally.samples
    ]
    lines += ["", f"Verdict: {'PASS' if ok else 'FAIL'}", ""]
    return "\n".join(lines), ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1800.0, help="how long (default 1800)")
    parser.add_argument("--rate", type=float, default=200.0, help="alerts per second (200)")
    parser.add_argument("--redis-restart-every", type=float, default=120.0, help="seconds (120)")
    parser.add_argument("--redis-down-seconds", type=float, default=5.0, help="seconds (5)")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--report", type=Path, help="append the markdown report to this file")
    args = parser.parse_args()
    server = os.environ.get("RESPONDER_SOAK_POSTGRES", "postgresql://127.0.0.1:5432/test")
    schema, dsn = _fresh_schema(server)
    try:
        with tempfile.TemporaryDirectory(prefix="responder-soak-") as tmp:
            tally, hits = asyncio.run(_soak(args, Path(tmp), dsn))
        stored = _stored_alerts(dsn)
    finally:
        _drop_schema(server, schema)
    text, ok = _report(args, tally, stored, hits)
    print(text)
    if args.report is not None:
        with args.report.open("a") as out:
            out.write("\n" + text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
