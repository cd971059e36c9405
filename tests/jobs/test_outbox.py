"""Redis down delays delivery, never drops it; jobs run twice deliver once."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from datetime import timedelta

from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from supervise.cases.models import Case
from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.notify import outbox
from supervise.notify.models import Notification, OutboxMessage
from supervise.queueing import redis_connection, requeue_lost
from tests.conftest import VALID_SUBMISSION


def test_submission_commits_even_when_redis_is_down(app, client, demo, tmp_path):
    real_url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = f"unix://{tmp_path}/gone.sock"
    app.extensions.pop("supervise.redis", None)
    try:
        response = client.post("/api/v1/cases", json=VALID_SUBMISSION)
    finally:
        app.extensions.pop("supervise.redis", None)
        app.config["REDIS_URL"] = real_url
    assert response.status_code == 201
    assert db.session.scalar(select(func.count(Case.id))) == 1
    assert db.session.scalar(select(OutboxMessage.status)) == "pending"


def test_drain_requeues_what_redis_lost_and_each_row_is_delivered_once(app, submit):
    for _ in range(3):
        submit()
    conn = redis_connection(app)
    conn.flushdb()  # Redis restarted without its data: every delivery job is gone
    ids = outbox.stale_pending_ids(db.session, older_than=timedelta(0))
    assert len(ids) == 3
    assert requeue_lost(ids, conn) == 3
    assert requeue_lost(ids, conn) == 0  # queued jobs are alive: not enqueued twice
    SimpleWorker(["default"], connection=conn).work(burst=True)
    db.session.expire_all()
    assert set(db.session.scalars(select(OutboxMessage.status))) == {"delivered"}
    per_message = db.session.execute(
        select(Notification.outbox_id, func.count()).group_by(Notification.outbox_id)
    ).all()
    assert len(per_message) == 3 and {n for _, n in per_message} == {1}  # demo-intake, once each


def test_drain_job_runs_on_a_real_worker(app, submit):
    submit()
    conn = redis_connection(app)
    conn.flushdb()
    db.session.execute(OutboxMessage.__table__.update().values(created_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    Queue("default", connection=conn).enqueue("workers.jobs.drain_outbox")
    SimpleWorker(["default"], connection=conn).work(burst=True)
    db.session.expire_all()
    assert db.session.scalar(select(OutboxMessage.status)) == "delivered"


def test_failed_delivery_is_retried_then_dead(app, submit):
    submit()
    message_id = db.session.scalar(select(OutboxMessage.id))

    class Broken:
        def send(self, session, message):
            raise ConnectionError("gateway down")

    for _attempt in range(outbox.MAX_ATTEMPTS - 1):
        with contextlib.suppress(ConnectionError):
            outbox.deliver(db.session, message_id, {"inapp": Broken()})
    assert outbox.deliver(db.session, message_id, {"inapp": Broken()}) == "dead"
    message = db.session.get(OutboxMessage, message_id)
    assert (message.status, message.attempts) == ("dead", outbox.MAX_ATTEMPTS)
    assert "gateway down" in message.last_error


def test_cron_registers_the_outbox_drain():
    from rq import cron

    cron._job_data_registry.clear()
    import importlib

    import workers.cron

    importlib.reload(workers.cron)
    names = {(d["func"].__name__, d["interval"]) for d in cron._job_data_registry}
    cron._job_data_registry.clear()
    assert ("drain_outbox", 15) in names


def test_no_personal_data_in_job_arguments(app, submit):
    submit(name="赵六", phone="13700001234")
    conn = redis_connection(app)
    dump = b"".join(conn.dump(k) or b"" for k in conn.keys("*"))
    assert "赵六".encode() not in dump and b"13700001234" not in dump


def test_a_worker_is_dead_when_its_heartbeat_is_gone_or_old(app):
    """Another host's worker: no pid to check, so its RQ heartbeat decides (notify/dispatch.py)."""
    from rq.utils import utcformat

    from supervise.notify.dispatch import WORKER_SILENT, worker_alive

    conn = redis_connection(app)
    conn.flushdb()
    assert not worker_alive("gone", conn)  # heartbeat key expired
    now = utcnow()
    conn.hset("rq:worker:elsewhere", mapping={"hostname": "another-host", "pid": "1"})
    conn.hset("rq:worker:elsewhere", "last_heartbeat", utcformat(now - timedelta(seconds=20)))
    assert worker_alive("elsewhere", conn)
    conn.hset("rq:worker:elsewhere", "last_heartbeat", utcformat(now - WORKER_SILENT - timedelta(seconds=5)))
    assert not worker_alive("elsewhere", conn)
    conn.hset("rq:worker:here", mapping={"hostname": socket.gethostname(), "pid": str(os.getpid())})
    conn.hset("rq:worker:here", "last_heartbeat", utcformat(now))
    assert worker_alive("here", conn)  # this very process


def test_a_started_job_of_a_dead_worker_is_not_alive_but_a_live_ones_is(app, submit):
    from rq.job import Job
    from rq.registry import StartedJobRegistry
    from rq.utils import utcformat

    submit()
    conn = redis_connection(app)
    conn.flushdb()
    (message_id,) = outbox.stale_pending_ids(db.session, older_than=timedelta(0))
    job = Queue("default", connection=conn).enqueue(
        "workers.jobs.deliver_outbox_message", message_id, job_id=outbox.job_id(message_id)
    )
    conn.lrem(Queue("default", connection=conn).key, 0, job.id)  # as if a worker had taken it
    registry = StartedJobRegistry("default", connection=conn)
    conn.zadd(registry.key, {f"{job.id}:exec-1": time.time() + 600})
    conn.hset(job.key, mapping={"status": "started", "worker_name": "alive-worker"})
    conn.hset("rq:worker:alive-worker", mapping={"hostname": "another-host", "pid": "1"})
    conn.hset("rq:worker:alive-worker", "last_heartbeat", utcformat(utcnow()))
    assert requeue_lost([message_id], conn) == 0  # its worker heartbeats: still at work

    conn.delete("rq:worker:alive-worker")  # SIGKILL: no more heartbeats, the key expires
    assert requeue_lost([message_id], conn) == 1
    assert Queue("default", connection=conn).job_ids == [outbox.job_id(message_id)]
    assert registry.get_job_ids(cleanup=False) == []
    assert Job.fetch(job.id, connection=conn).get_status() == "queued"
