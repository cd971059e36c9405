"""Redis down delays delivery, never drops it; jobs run twice deliver once."""

from __future__ import annotations

import contextlib
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
    assert ("drain_outbox", 60) in names


def test_no_personal_data_in_job_arguments(app, submit):
    submit(name="赵六", phone="13700001234")
    conn = redis_connection(app)
    dump = b"".join(conn.dump(k) or b"" for k in conn.keys("*"))
    assert "赵六".encode() not in dump and b"13700001234" not in dump
