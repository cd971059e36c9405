"""The submit path against the stack's own speed: `POST /api/v1/cases` vs a bare one-INSERT endpoint.

Both run under the same gunicorn configuration (supervise/gunicorn_conf.py, 2 processes × 4
threads, access log on as in production) against the same PostgreSQL database and are loaded by
wrk (Debian's package) with the same JSON body and a distinct client address per request
(X-Forwarded-For, trusted by ProxyFix as behind a real proxy), so the per-IP limits count every
request as a new citizen's. The two are run alternately — baseline, app, baseline, app … — so a
noisy neighbour on a shared machine weighs on both; the figure is the median of the per-round
throughput ratios, and the app's p95 latency.

    python -m bench.submit                      # 3 rounds × 10 s, 16 connections
    python -m bench.submit --rounds 5 --seconds 15 --connections 16 --json out.json

It uses its own database (`<bench database>_submit`, re-created each run, migrated and seeded with
the demo) and Redis db 14, and checks its own results: every 201 the app answered is a case with
its first event and its outbox row, and nothing else was written.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from bench.figures import Figure

REPO = common.BENCH_DIR.parent
DB_NAME = common.DB_NAME + "_submit"
DATABASE_URL = common.DATABASE_URL.rsplit("/", 1)[0] + "/" + DB_NAME
REDIS_URL = "redis://127.0.0.1:6379/14"
# The baseline's table: the case's columns a citizen fills in, a unique receipt, a timestamp.
BARE_TABLE = """CREATE TABLE IF NOT EXISTS bare_submissions (
    id bigserial PRIMARY KEY,
    tracking_no varchar(20) NOT NULL UNIQUE,
    category varchar(40) NOT NULL,
    subject text NOT NULL,
    content text NOT NULL,
    client varchar(45),
    received_at timestamptz NOT NULL DEFAULT now()
)"""
GOAL_RATIO = 0.6
GOAL_P95_MS = 100.0

# One wrk script for both servers: the same body, a new client address per request (the round
# number in the first octets, so a later round does not reuse an earlier one's addresses), and a
# JSON summary on stdout at the end.
WRK_SCRIPT = r"""
local threads = {}
local counter = 0
local round = 0
local body = '{"category": "petty_corruption", "subject": "某窗口工作人员", ' ..
  '"content": "办理业务时被要求先请吃饭才给盖章，已经第三次了。压测提交。"}'

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  round = tonumber(args[1] or "0")
end

function request()
  counter = counter + 1
  local ip = string.format("10.%d.%d.%d",
    (round * 16 + tid) % 256, math.floor(counter / 256) % 256, counter % 256)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip}, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass
class Run:
    target: str
    requests: int
    seconds: float
    status_errors: int
    socket_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def ok_requests(self) -> int:
        return self.requests - self.status_errors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        SUPERVISE_DATA_DIR=str(common.DATA_DIR / "submit"),
        SUPERVISE_ENV="development",
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="4",
        GUNICORN_MAX_REQUESTS="0",
        PROXY_FIX_X_FOR="1",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def prepare() -> None:
    """A fresh database (the app's migrations and demo, the baseline's table) and a fresh Redis db:
    the per-IP counters of an earlier run would refuse this one's addresses."""
    import psycopg
    import redis
    from psycopg import sql

    redis.Redis.from_url(REDIS_URL).flushdb()
    with common.admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
    supervise = str(REPO / ".venv" / "bin" / "supervise") if (REPO / ".venv").exists() else "supervise"
    for command in (["init"], ["demo"]):
        subprocess.run([supervise, *command], env=_env(), cwd=REPO, check=True, capture_output=True)  # noqa: S603
    with psycopg.connect(DATABASE_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(BARE_TABLE)


class Server:
    """One gunicorn (the app's configuration) in its own process group, stopped with the group."""

    def __init__(self, target: str, app: str, log: Path, **env: str):
        self.target, self.port = target, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        gunicorn = shutil.which("gunicorn", path=str(REPO / ".venv" / "bin")) or "gunicorn"
        self.log = log.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [gunicorn, "-c", "python:supervise.gunicorn_conf", app],
            env=_env(GUNICORN_BIND=f"127.0.0.1:{self.port}", **env),
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.target} server exited; see {self.log.name}")
            try:
                urllib.request.urlopen(self.url + path, timeout=2)  # noqa: S310 - our own http:// server
                return
            except urllib.error.HTTPError:  # an answer, whatever its status: the server is up
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.target} server not ready after {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def wrk(url: str, script: Path, seconds: float, connections: int, round_no: int, target: str) -> Run:
    threads = min(connections, 2)
    duration = f"{max(1, round(seconds))}s"
    argv = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        duration,
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    out = subprocess.run([*argv, url, "--", str(round_no)], capture_output=True, text=True, check=True).stdout  # noqa: S603
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    data = json.loads(line[4:])
    return Run(
        target=target,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        status_errors=data["status_errors"],
        socket_errors=data["socket_errors"],
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


def _counts() -> dict[str, int]:
    import psycopg

    with psycopg.connect(DATABASE_URL.replace("+psycopg", "")) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM events WHERE action = 'submit'),"
            " (SELECT count(*) FROM outbox WHERE kind = 'case_received'),"
            " (SELECT count(*) FROM bare_submissions)"
        ).fetchone()
    return dict(zip(("cases", "submit_events", "outbox", "bare"), row, strict=True))


def measure(rounds: int = 3, seconds: float = 10, connections: int = 16, warmup: float = 3) -> dict[str, Any]:
    """Run the baseline and the app alternately; returns every run and the summary figures."""
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is needed (Debian: apt-get install wrk)")
    prepare()
    logs = Path(tempfile.mkdtemp(prefix="bench-submit-"))
    script = logs / "submit.lua"
    script.write_text(WRK_SCRIPT)
    bare = Server("bare", "bench.bare_app:app", logs / "bare.log", BARE_DATABASE_URL=DATABASE_URL)
    app = Server("app", "supervise.wsgi:app", logs / "app.log")
    runs: list[Run] = []
    try:
        bare.wait_ready("/")
        app.wait_ready("/readyz")
        before = _counts()
        # Warm-up (not counted in the figures): connection pools, imports, caches, the JIT of the OS.
        warm = [
            wrk(s.url + p, script, warmup, connections, 200, s.target)
            for s, p in ((bare, "/submit"), (app, "/api/v1/cases"))
        ]
        for round_no in range(rounds):
            runs.append(wrk(bare.url + "/submit", script, seconds, connections, round_no + 1, "bare"))
            runs.append(wrk(app.url + "/api/v1/cases", script, seconds, connections, round_no + 1, "app"))
        after = _counts()
    finally:
        app.stop()
        bare.stop()
    app_runs = [r for r in runs if r.target == "app"] + [w for w in warm if w.target == "app"]
    bare_runs = [r for r in runs if r.target == "bare"] + [w for w in warm if w.target == "bare"]
    check(before, after, app_runs, bare_runs, connections)
    pairs = [(b, a) for b, a in zip(runs[::2], runs[1::2], strict=True)]
    ratios = [a.rate / b.rate for b, a in pairs]
    result = {
        "rounds": [
            {
                "bare_rate": b.rate,
                "app_rate": a.rate,
                "ratio": a.rate / b.rate,
                "bare_p95_ms": b.p95_ms,
                "app_p50_ms": a.p50_ms,
                "app_p95_ms": a.p95_ms,
                "app_p99_ms": a.p99_ms,
            }
            for b, a in pairs
        ],
        "ratio": statistics.median(ratios),
        "bare_rate": statistics.median(b.rate for b, _ in pairs),
        "app_rate": statistics.median(a.rate for _, a in pairs),
        "app_p95_ms": statistics.median(a.p95_ms for _, a in pairs),
        "app_p95_ms_worst": max(a.p95_ms for _, a in pairs),
        "connections": connections,
        "seconds": seconds,
        "logs": str(logs),
    }
    shutil.rmtree(logs, ignore_errors=True)
    return result


def check(
    before: dict[str, int], after: dict[str, int], app_runs: list[Run], bare_runs: list[Run], slack: int
):
    """Every answered submission is one case with its submit event and its outbox row; none failed.

    wrk counts the requests it saw answered; a request in flight when a run ends may be committed
    without being counted, so the database may hold up to one per connection per run more."""
    problems = []
    for runs, key in ((app_runs, "cases"), (bare_runs, "bare")):
        failed = sum(r.status_errors + r.socket_errors for r in runs)
        if failed:
            problems.append(f"{runs[0].target}: {failed} request(s) not answered 2xx")
        answered = sum(r.ok_requests for r in runs)
        added = after[key] - before[key]
        if not answered <= added <= answered + slack * len(runs):
            problems.append(f"{runs[0].target}: {answered} answered 201 but {added} row(s) added")
    added_cases = after["cases"] - before["cases"]
    for key in ("submit_events", "outbox"):
        if after[key] - before[key] != added_cases:
            problems.append(f"{after[key] - before[key]} new {key} for {added_cases} new cases")
    if problems:
        raise AssertionError("; ".join(problems))


def figures(cases: int = 0, smoke: bool = False) -> list[Figure]:
    """`cases` is not used: the submit path is measured on its own fresh database."""
    if smoke and not shutil.which("wrk"):  # a laptop's PostgreSQL run of the suite: say so, go on
        return [Figure("submit: throughput vs bare insert", f"≥ {GOAL_RATIO}×", "not run: wrk not installed")]
    result = measure(**({"rounds": 1, "seconds": 2, "connections": 4, "warmup": 1} if smoke else {}))
    command = "python -m bench.submit" + (" (smoke)" if smoke else "")
    return [
        Figure(
            name="submit: throughput vs bare insert",
            goal=f"≥ {GOAL_RATIO}×",
            measured=f"{result['ratio']:.2f}× ({result['app_rate']:.0f}/s vs {result['bare_rate']:.0f}/s)",
            ratio=result["ratio"],
            ok=None if smoke else result["ratio"] >= GOAL_RATIO,
            note=command,
        ),
        Figure(
            name=f"submit: p95 at {result['connections']} connections",
            goal=f"≤ {GOAL_P95_MS:.0f} ms",
            measured=f"{result['app_p95_ms']:.1f} ms (worst round {result['app_p95_ms_worst']:.1f})",
            ok=None if smoke else result["app_p95_ms"] <= GOAL_P95_MS,
            note=command,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.submit", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args(argv)
    result = measure(args.rounds, args.seconds, args.connections, args.warmup)
    print(
        f"{'round':>5} {'bare/s':>8} {'app/s':>8} {'ratio':>6} {'bare p95':>9} {'app p50':>8} {'app p95':>8}"
    )
    for i, r in enumerate(result["rounds"], 1):
        print(
            f"{i:>5} {r['bare_rate']:>8.0f} {r['app_rate']:>8.0f} {r['ratio']:>6.2f} "
            f"{r['bare_p95_ms']:>7.1f}ms {r['app_p50_ms']:>6.1f}ms {r['app_p95_ms']:>6.1f}ms"
        )
    print(
        f"median ratio {result['ratio']:.2f} (goal ≥ {GOAL_RATIO}), app p95 {result['app_p95_ms']:.1f} ms "
        f"(goal ≤ {GOAL_P95_MS:.0f} ms) at {result['connections']} connections"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
