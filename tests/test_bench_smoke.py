"""The benchmarks cannot rot (issue 15): `python -m bench all --smoke` runs every benchmark on a tiny
data set, and each checks its own results (a wrong figure raises) — never a timing bound.

Only in the PostgreSQL run of the suite: the benchmarks need a PostgreSQL server (they create their
own databases on the one DATABASE_URL names: `bench_smoke`, and what the modules derive from it)
and Redis at 127.0.0.1:6379 (db 15, and db 14 for bench.submit), as bench/README.md says.
A module that has no `figures` yet is a row saying so and does not fail the run; one that raises
fails it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# The whole smoke, every module: CI time, not a benchmark. 52 s here beside the SQLite suite (CI runs
# the two at once), over 120 s with a benchmark loading the machine too: the bound catches a hang.
SECONDS = 300

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not DATABASE_URL.startswith("postgresql"), reason="the benchmarks need PostgreSQL (DATABASE_URL)"
    ),
]


def bench_database_url() -> str:
    """`bench_smoke` on the suite's PostgreSQL server."""
    parts = urlsplit(DATABASE_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/bench_smoke", "", ""))


def _drop_smoke_databases() -> None:
    """A smoke data set left by an older checkout (another migration head) is not reused: the
    smoke builds its 2,000 cases afresh (seconds)."""
    import psycopg
    from psycopg import sql

    admin = urlunsplit(("postgresql", urlsplit(DATABASE_URL).netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in ("bench_smoke", "bench_smoke_submit"):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_bench_all_smoke_runs_every_benchmark_and_prints_one_table(tmp_path):
    _drop_smoke_databases()
    report = tmp_path / "smoke.json"
    # The bench sets its own DATABASE_URL, REDIS_URL and data dir; the suite's LOG_LEVEL=DEBUG
    # would only make its servers chatty.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "LOG_LEVEL")}
    env["BENCH_DATABASE_URL"] = bench_database_url()
    env["PYTHONUNBUFFERED"] = "1"  # the modules' lines and their tracebacks in the order they came
    command = [sys.executable, "-m", "bench", "all", "--smoke", "--cases", "2000", "--json", str(report)]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=SECONDS)
    except subprocess.TimeoutExpired:
        # Ctrl-C, so the modules' `finally` blocks stop the servers they started; then for good.
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"python -m bench all --smoke took more than {SECONDS} s:\n{output[-4000:]}")

    assert process.returncode == 0, output[-6000:]
    assert "figure" in output and "| goal" in output and "| measured" in output, output[-3000:]
    assert any("figures with a goal met it" in line for line in output.splitlines()[-3:]), output[-3000:]
    modules = json.loads(report.read_text(encoding="utf-8"))["modules"]
    assert [m["module"] for m in modules if m["error"]] == []
    assert any(m["figures"] for m in modules), "no benchmark gave a figure"
