"""REDIS_URL naming a Redis Sentinel: the app, an RQ worker and the rate limiter find the master
through a real redis-sentinel watching a private redis-server (no replica: one sentinel with a
quorum of one is enough to show every client asks the sentinel, not a fixed address)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import func, select

from supervise.app import create_app
from supervise.extensions import db
from supervise.notify.models import OutboxMessage
from supervise.queueing import redis_connection, redis_server_binary
from tests.conftest import TEST_FERNET_KEY, VALID_SUBMISSION, app_config
from tests.faults.conftest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sentinel(private_redis, tmp_path):
    """A redis-sentinel on a free port monitoring `private_redis` as `mymaster`; yields its port."""
    port = free_port()
    conf = tmp_path / "sentinel.conf"  # sentinel rewrites its config file: it must be writable
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {private_redis.port} 1\n"
        "sentinel down-after-milliseconds mymaster 2000\n"
    )
    proc = subprocess.Popen(
        [redis_server_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.kill()
        proc.wait(10)


def test_app_worker_and_rate_limits_go_through_the_sentinel(services, demo, sentinel, private_redis):
    url = f"redis+sentinel://127.0.0.1:{sentinel}/mymaster/3"
    app = create_app(app_config(services, REDIS_URL=url, SUBMIT_RATE_LIMIT="2/hour", RATELIMIT_ENABLED=True))
    master = Redis(port=private_redis.port, db=3)
    with app.app_context():
        # The app's client: asked the sentinel, landed on the private server's db 3.
        redis_connection(app).set("probe", "through-sentinel")
        assert master.get("probe") == b"through-sentinel"

        client = app.test_client()
        answers = [client.post("/api/v1/cases", json=VALID_SUBMISSION).status_code for _ in range(3)]
        # The limiter's counters live on the master too (limits' redis+sentinel storage).
        assert answers == [201, 201, 429]
        assert any(b"LIMITS" in key for key in master.keys("*"))

        # Committed outbox rows were enqueued to the master's RQ queue…
        pending = db.session.scalar(select(func.count()).select_from(OutboxMessage))
        assert pending > 0
        assert master.llen("rq:queue:default") == pending

    # …and a real `supervise worker` process, given only the sentinel URL, delivers them.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        SUPERVISE_DATA_DIR=str(services["data_dir"]),
        DATABASE_URL=services["database_url"],
        REDIS_URL=url,
        SECRET_KEY="test-secret",
        SUPERVISE_ENCRYPTION_KEY=TEST_FERNET_KEY,
    )
    done = subprocess.run(
        [sys.executable, "-m", "supervise.cli", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with app.app_context():
        statuses = db.session.scalars(select(OutboxMessage.status)).all()
    assert statuses and set(statuses) == {"delivered"}, statuses
    assert master.llen("rq:queue:default") == 0

    # `supervise cron` too: it registers itself and enqueues its interval jobs on the master.
    cron = subprocess.Popen(
        [sys.executable, "-m", "supervise.cli", "cron"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not (master.keys("rq:cron_scheduler:*") and master.keys("rq:queue:*")):
            assert cron.poll() is None and time.monotonic() < deadline, "cron did not reach the master"
            time.sleep(0.2)
    finally:
        cron.kill()
        cron.wait(10)


def test_sentinel_url_parts_and_the_limiters_spelling():
    from supervise.app import _limiter_storage, _limiter_storage_options
    from supervise.config import _weak_secret_problems
    from supervise.queueing import parse_sentinel_url

    url = "redis+sentinel://:s%40cret@10.0.0.21:26379,10.0.0.22/supervise/2"
    assert parse_sentinel_url(url) == {
        "sentinels": [("10.0.0.21", 26379), ("10.0.0.22", 26379)],
        "service": "supervise",
        "db": 2,
        "password": "s@cret",
    }
    # limits reads the whole path as the service name: the db number travels in the options.
    assert _limiter_storage(url) == "redis+sentinel://10.0.0.21:26379,10.0.0.22:26379/supervise"
    # (and, as every Redis client of the app, without redis-py's maintenance handshake)
    options, plain = _limiter_storage_options(url), _limiter_storage_options("redis://10.0.0.20:6379/0")
    for handshake in (options.pop("maint_notifications_config"), plain.pop("maint_notifications_config")):
        assert handshake.enabled is False
    assert options == {"db": 2, "use_replicas": False, "password": "s@cret"}
    assert plain == {}
    with pytest.raises(ValueError, match="service name"):
        parse_sentinel_url("redis+sentinel://10.0.0.21:26379")
    # A replica URL with .env.example's placeholder password is refused like DATABASE_URL's.
    problems = _weak_secret_problems({"DATABASE_READ_URL": "postgresql://ro:CHANGE-ME@10.0.0.12/supervise"})
    assert problems == ["DATABASE_READ_URL has a placeholder password (like .env.example's CHANGE-ME)"]


def test_a_failover_needs_no_restart(services, private_redis, tmp_path):
    """Kill the master: the sentinel promotes the replica and the same app's client finds it."""
    replica_port = free_port()
    replica_dir = tmp_path / "replica"  # its own dir: the master writes its sync snapshot to tmp_path
    replica_dir.mkdir()
    Redis(port=private_redis.port).config_set("repl-diskless-sync-delay", 0)  # sync now, not in 5 s
    master = ("127.0.0.1", str(private_redis.port))
    replica = subprocess.Popen(
        [redis_server_binary(), "--port", str(replica_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(replica_dir), "--replicaof", *master],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(replica_port)
        deadline = time.monotonic() + 10
        while Redis(port=replica_port).info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.1)
        port = free_port()
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor mymaster 127.0.0.1 {private_redis.port} 1\n"
            "sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n"
        )
        sentinel = subprocess.Popen(
            [redis_server_binary(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            app = create_app(app_config(services, REDIS_URL=f"redis+sentinel://127.0.0.1:{port}/mymaster/0"))
            conn = redis_connection(app)
            conn.set("before", "1")
            time.sleep(1)  # the sentinel has seen the replica in the master's INFO
            private_redis.kill()
            deadline = time.monotonic() + 20
            while True:
                try:
                    conn.set("after", "2")  # the same client object: no restart, no new URL
                    break
                except Exception:
                    assert time.monotonic() < deadline, "no failover within 20 s"
                    time.sleep(0.3)
            assert Redis(port=replica_port).get("after") == b"2"
            assert Redis(port=replica_port).get("before") == b"1"
        finally:
            sentinel.kill()
            sentinel.wait(10)
    finally:
        replica.kill()
        replica.wait(10)
