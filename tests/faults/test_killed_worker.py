"""A worker SIGKILLed mid-job (a deploy, the OOM killer): its rows are delivered within a minute.

Before, the drain counted a started job as alive until RQ's own cleanup (about eleven minutes),
so an escalation notice waited that long. Now a started job whose worker is gone (heartbeat key,
last heartbeat, or on this host its pid) is dead, and the drain re-enqueues its rows.

The job is made to block the way a real one does: the test holds SQLite's write lock, so the
worker's insert waits on the busy timeout inside its transaction when it is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from supervise.extensions import db
from supervise.notify.models import Notification, OutboxMessage
from supervise.notify.outbox import queue_message


def _until(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture
def deployment(tmp_path, private_redis, monkeypatch):
    """A data dir with a migrated SQLite database, one staff user, and the env for `supervise`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"SUPERVISE_DATA_DIR": str(tmp_path), "REDIS_URL": private_redis.url}
    cli = [sys.executable, "-m", "supervise.cli"]
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True, timeout=60)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SUPERVISE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    from supervise.app import create_app
    from supervise.orgs.services import create_org
    from supervise.staff.services import create_user

    app = create_app()
    with app.app_context():
        org = create_org(db.session, "county", "某县纪委监委", "commission")
        user, _ = create_user(db.session, username="watcher", org=org, role="supervisor", password="x" * 12)
        db.session.commit()
        yield app, env, cli, tmp_path / "supervise.db", user.id
        db.session.remove()


def _worker(cli: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*cli, "worker"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its work-horse (RQ puts the horse in a session of its own), as a
    container stop or the OOM killer taking the whole cgroup does."""
    if proc.poll() is None:
        horses = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)


def test_a_killed_workers_row_is_delivered_within_a_minute(deployment, private_redis, tmp_path):
    _app, env, cli, database, user_id = deployment
    conn = Redis.from_url(private_redis.url)
    message = queue_message(
        db.session, kind="deadline_overdue", channel="inapp", payload={"user_ids": [user_id]}
    )
    db.session.commit()  # the commit hook enqueues its job on the private Redis
    message_id = message.id
    assert Queue("default", connection=conn).job_ids == [f"outbox-{message_id}"]

    lock = sqlite3.connect(database, isolation_level=None, timeout=30)
    lock.execute("BEGIN IMMEDIATE")  # the worker's insert now waits for the lock
    first = _worker(cli, env, tmp_path / "worker-1.log")
    second = None
    try:
        started = StartedJobRegistry("default", connection=conn)
        _until(lambda: started.get_job_ids(cleanup=False), 30, "the worker to start the delivery job")
        time.sleep(1)
        _kill(first)
        killed_at = time.monotonic()
        lock.execute("ROLLBACK")
        db.session.expire_all()
        assert db.session.get(OutboxMessage, message_id).status == "pending"  # rolled back, not lost

        second = _worker(cli, env, tmp_path / "worker-2.log")

        def delivered() -> bool:
            # What `supervise cron` runs every minute; the row counts as stale after 10 s.
            Queue("default", connection=conn).enqueue("workers.jobs.drain_outbox")
            time.sleep(1)
            db.session.expire_all()
            return db.session.get(OutboxMessage, message_id).status == "delivered"

        _until(delivered, 60, "the row to be delivered by the second worker")
        assert time.monotonic() - killed_at < 60
        notices = db.session.scalars(select(Notification).where(Notification.outbox_id == message_id)).all()
        assert [n.user_id for n in notices] == [user_id]  # once
        assert "is dead; its rows are re-enqueued" in (tmp_path / "worker-2.log").read_text()
    finally:
        lock.close()
        _kill(first)
        if second is not None:
            _kill(second)
