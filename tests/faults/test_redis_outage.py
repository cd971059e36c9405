"""Redis goes away for a while: `supervise worker` and `supervise cron` stay up and catch up.

Both run as real processes against a private Redis and a private SQLite data dir. Redis stops for
about five seconds; a citizen submits meanwhile (the enqueue after the commit fails, the outbox row
waits); Redis comes back on the same port and the case's notification is delivered, with nobody
restarting anything.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import VALID_SUBMISSION

CLI = [sys.executable, "-m", "supervise.cli"]


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def outbox_status(data_dir: Path, tracking_no: str) -> set[str]:
    with sqlite3.connect(data_dir / "supervise.db") as conn:
        rows = conn.execute(
            "SELECT o.status FROM outbox o JOIN cases c ON c.id = o.case_id WHERE c.tracking_no = ?",
            (tracking_no,),
        ).fetchall()
    return {status for (status,) in rows}


@pytest.mark.slow
def test_worker_and_cron_ride_out_a_redis_outage(tmp_path, private_redis, monkeypatch):
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SUPERVISE_DATA_DIR=str(data_dir), REDIS_URL=private_redis.url, PYTHONUNBUFFERED="1")
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "cron")}

    def start(name: str, *args: str) -> subprocess.Popen:
        with logs[name].open("ab") as out:  # append mode: our reads never move the child's writes
            return subprocess.Popen([*CLI, name, *args], env=env, stdout=out, stderr=subprocess.STDOUT)

    # The outbox drain every 2 s (not every minute): cron meets the outage at a tick, as it would
    # a longer one in production.
    procs = {"cron": start("cron", "--config", str(Path(__file__).with_name("fast_cron.py")))}
    try:
        # The schema and the demo orgs, in this process (quicker than `supervise init` + `demo`).
        for key, value in (("SUPERVISE_DATA_DIR", str(data_dir)), ("REDIS_URL", private_redis.url)):
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("DATABASE_URL", raising=False)
        from flask_migrate import upgrade

        from supervise.app import create_app
        from supervise.demo import load_demo
        from supervise.extensions import db

        app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            load_demo(sample_cases=False)
            db.session.remove()
        procs["worker"] = start("worker")
        wait_for(lambda: "Listening on" in read(logs["worker"]), 15, "the worker to listen")
        private_redis.stop()

        # A citizen submits while Redis is away: the case is saved, its notification waits.
        response = app.test_client().post("/api/v1/cases", json=VALID_SUBMISSION)
        assert response.status_code == 201, response.get_json()
        tracking_no = response.get_json()["tracking_no"]
        assert outbox_status(data_dir, tracking_no) == {"pending"}

        # Down ~5 s: cron meets the outage at a tick, the worker in its wait.
        wait_for(lambda: "lost Redis" in read(logs["cron"]), 5, "cron's tick during the outage")
        time.sleep(4)
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} died while Redis was down: {read(logs[name])}"

        private_redis.start()  # same port: Redis is back
        wait_for(
            lambda: outbox_status(data_dir, tracking_no) == {"delivered"},
            25,
            "the notification committed during the outage to be delivered",
        )
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} died after Redis came back: {read(logs[name])}"
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # A clean stop on SIGTERM after the outage; the outage is logged, not a line per retry.
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {read(logs[name])}"
    worker_log, cron_log = read(logs["worker"]), read(logs["cron"])
    assert "Redis is back" in cron_log, cron_log
    assert worker_log.count("could not connect to Redis") <= 1, worker_log
    # No alarming "quitting" or "raised an exception" (we carry on); RQ's scheduler process may
    # print one traceback as it ends (multiprocessing does, past logging), cron none.
    assert "quitting" not in worker_log and "raised an exception" not in worker_log, worker_log
    assert "Traceback" not in cron_log, cron_log


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def test_run_supervised_waits_for_redis_and_logs_once_a_minute(private_redis, caplog):
    """The loop around RQ's: a run ended by a lost Redis is started again once Redis answers,
    the wait logs one line (not one per retry), and a run that ends on request ends it all."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from supervise.resilience import backoff, run_supervised

    assert [backoff(n) for n in (1, 2, 3, 5, 6, 20)] == [1, 2, 4, 16, 30, 30]
    connection = Redis.from_url(private_redis.url, socket_connect_timeout=1)
    calls = []

    def run() -> bool:
        calls.append(time.monotonic())
        if len(calls) == 1:
            private_redis.stop()
            raise RedisConnectionError("Connection closed by server.")
        return True  # the second run ends on request

    restarter = threading.Timer(3.5, private_redis.start)  # back after ~3.5 s: several retries
    restarter.start()
    with caplog.at_level(logging.WARNING, logger="supervise.resilience"):
        run_supervised(run, connection, "test")
    restarter.join()
    assert len(calls) == 2 and calls[1] - calls[0] > 3
    lines = [r.getMessage() for r in caplog.records if r.name == "supervise.resilience"]
    assert sum("unreachable" in line for line in lines) == 1, lines  # not one per retry
    assert any("Redis is back" in line for line in lines), lines
