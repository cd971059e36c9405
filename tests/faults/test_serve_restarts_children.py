"""`supervise serve` restarts a child that dies instead of stopping everything.

The worker is killed with SIGKILL (the OOM killer's way): serve logs the exit with a restart count,
starts a new worker after a short backoff, the web keeps answering throughout (same gunicorn
master). The embedded Redis is killed next and comes back the same way, and the new worker
delivers a case submitted afterwards. Ctrl-C still stops all cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.conftest import VALID_SUBMISSION
from tests.faults.conftest import free_port
from tests.test_serve import wait_for

CLI = [sys.executable, "-m", "supervise.cli"]


def child(serve: subprocess.Popen, command: str) -> psutil.Process | None:
    """serve's direct child running `command` (worker, cron), gunicorn (web) or redis-server."""
    for proc in psutil.Process(serve.pid).children():
        try:
            argv = proc.cmdline()
        except psutil.NoSuchProcess:
            continue
        if (
            (command == "web" and "gunicorn" in argv)
            or (command == "redis" and argv[:1] and argv[0].endswith("redis-server"))
            or argv[-1:] == [command]
        ):
            return proc
    return None


def healthy(base: str) -> bool:
    with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
        return response.status == 200


@pytest.mark.slow
def test_serve_restarts_a_killed_worker_and_the_web_stays_up(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SUPERVISE_DATA_DIR"] = str(tmp_path)  # a private data dir, its own embedded Redis
    subprocess.run([*CLI, "init"], env=env, check=True, capture_output=True, timeout=120)
    subprocess.run([*CLI, "demo"], env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        serve = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), "--web-workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: healthy(base), 60, "the web")
        old_worker = wait_for(lambda: child(serve, "worker"), 10, "the worker child")
        web = child(serve, "web")
        os.kill(old_worker.pid, signal.SIGKILL)

        # The web answers all the while the worker is gone and coming back.
        def restarted():
            assert healthy(base), "the web stopped answering"
            new = child(serve, "worker")
            return new if new is not None and new.pid != old_worker.pid else None

        new_worker = wait_for(restarted, 15, "serve to start a new worker")
        assert serve.poll() is None
        assert child(serve, "web").pid == web.pid  # the same gunicorn master: never stopped
        text = log.read_text(errors="replace")
        assert f"worker exited with {-signal.SIGKILL}; restart #1" in text, text
        assert "worker restarted (restart #1)" in text, text

        # The embedded Redis, killed too, comes back; the worker and cron ride out its absence.
        old_redis = child(serve, "redis")
        os.kill(old_redis.pid, signal.SIGKILL)
        wait_for(
            lambda: (new := child(serve, "redis")) is not None and new.pid != old_redis.pid,
            15,
            "serve to start Redis again",
        )
        wait_for(lambda: "redis restarted (restart #1)" in log.read_text(errors="replace"), 10, "Redis")

        # The new worker works: a case submitted now has its notification delivered.
        request = urllib.request.Request(
            f"{base}/api/v1/cases",
            data=json.dumps(VALID_SUBMISSION).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            tracking_no = json.load(response)["tracking_no"]

        def delivered():
            with sqlite3.connect(Path(tmp_path) / "supervise.db") as conn:
                rows = conn.execute(
                    "SELECT o.status FROM outbox o JOIN cases c ON c.id = o.case_id WHERE c.tracking_no = ?",
                    (tracking_no,),
                ).fetchall()
            return rows and {status for (status,) in rows} == {"delivered"}

        wait_for(delivered, 20, "the restarted worker to deliver")
        assert new_worker.is_running()
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGINT)  # Ctrl-C
        serve.wait(60)
    assert serve.returncode == 0, log.read_text(errors="replace")
    text = log.read_text(errors="replace")
    # Nothing of the killed worker (its RQ scheduler) lived on to fail when Redis stopped.
    assert "stopping everything" not in text and "Traceback" not in text, text


def test_restart_backoff_grows_and_resets_after_a_healthy_run(monkeypatch):
    from supervise import cli

    clock = [1000.0]
    monkeypatch.setattr(cli.time, "monotonic", lambda: clock[0])
    restarts = cli.ChildRestarts()
    waits = []
    for _ in range(7):  # a worker that dies as soon as it starts
        assert restarts.exited("worker", 1)
        assert not restarts.exited("worker", 1)  # the same exit, seen again: counted once
        waits.append(restarts.restart_at["worker"] - clock[0])
        assert not restarts.due("worker")
        clock[0] += waits[-1]
        assert restarts.due("worker")
        restarts.started("worker")
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    assert restarts.count["worker"] == 7
    clock[0] += 120  # ran for two minutes: healthy, the next wait is short again
    restarts.exited("worker", -9)
    assert restarts.exited_line("worker", -9) == "worker exited with -9; restart #8 in 1 s"
    clock[0] += 1
    restarts.failed_to_start("worker")  # e.g. the embedded Redis would not start: wait longer
    assert not restarts.due("worker") and restarts.restart_at["worker"] - clock[0] == 2
