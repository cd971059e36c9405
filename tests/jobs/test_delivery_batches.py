"""Delivery in batches (one job, one transaction for many in-app rows), and the admin's answer for
rows whose outcome is unknown."""

from __future__ import annotations

import socketserver
import threading
from email.message import EmailMessage

from rq import Queue, SimpleWorker
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry
from sqlalchemy import func, select

from supervise.extensions import db
from supervise.notify import outbox
from supervise.notify.channels import EmailChannel, SmtpTransport
from supervise.notify.models import Notification, OutboxMessage
from supervise.queueing import redis_connection
from supervise.staff.models import User
from tests.web.test_admin import admin, changes  # noqa: F401


def _user_id(username: str) -> int:
    return db.session.scalar(select(User.id).where(User.username == username))


def test_500_inapp_rows_are_delivered_by_at_most_5_jobs(app, demo):
    conn = redis_connection(app)
    conn.flushdb()
    watcher = _user_id("demo-intake")
    for _ in range(500):
        outbox.queue_message(
            db.session, kind="deadline_overdue", channel="inapp", payload={"user_ids": [watcher]}
        )
    db.session.commit()  # one commit: its rows go to RQ as batches, not 500 jobs
    queued = Queue("default", connection=conn).job_ids
    assert 1 <= len(queued) <= 5 and all(j.startswith("outbox-") for j in queued)

    SimpleWorker(["default"], connection=conn).work(burst=True)
    finished = FinishedJobRegistry("default", connection=conn).get_job_ids()
    assert 1 <= len(finished) <= 5
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).where(OutboxMessage.status == "delivered")) == 500
    assert (
        db.session.scalar(select(func.count(Notification.id)).where(Notification.user_id == watcher)) == 500
    )


def test_a_failing_row_does_not_hold_back_its_batch_and_is_retried_alone(app, demo):
    conn = redis_connection(app)
    conn.flushdb()
    watcher = _user_id("demo-intake")
    good = [
        outbox.queue_message(
            db.session, kind="deadline_overdue", channel="inapp", payload={"user_ids": [watcher]}
        )
        for _ in range(3)
    ]
    bad = outbox.queue_message(
        db.session, kind="deadline_overdue", channel="inapp", payload={"role": "supervisor"}
    )  # no org_id: KeyError
    db.session.commit()

    class Flaky:
        def send(self, session, message):
            if message.id == bad.id:
                raise ConnectionError("flaky")
            session.add(Notification(user_id=watcher, outbox_id=message.id, kind=message.kind, title="t"))
            session.flush()

    ids = [m.id for m in (*good, bad)]
    result = outbox.deliver_many(db.session, ids, {"inapp": Flaky()})
    assert (result["delivered"], result["failed"]) == (3, [bad.id])
    db.session.expire_all()
    assert {db.session.get(OutboxMessage, i).status for i in ids[:3]} == {"delivered"}
    row = db.session.get(OutboxMessage, bad.id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "ConnectionError: flaky")

    # Through the job: the failed row gets a job of its own, backed off by the scheduler.
    Queue("default", connection=conn).empty()
    Queue("default", connection=conn).enqueue("workers.jobs.deliver_outbox_batch", [bad.id])
    SimpleWorker(["default"], connection=conn).work(burst=True)
    assert ScheduledJobRegistry("default", connection=conn).get_job_ids() == [f"outbox-{bad.id}"]


def test_unknown_rows_wait_for_an_admin_who_resends_or_closes(app, client, admin):  # noqa: F811
    conn = redis_connection(app)
    conn.flushdb()
    rows = [
        outbox.queue_message(db.session, kind="escalated", channel="email", payload={"user_ids": []})
        for _ in range(2)
    ]
    db.session.flush()
    for row in rows:
        row.status, row.claimed_by = "unknown", "worker-gone"
        row.last_error = outbox.UNKNOWN_NOTE
    db.session.commit()
    conn.flushdb()
    resend, close = (r.id for r in rows)

    html = client.get("/staff/admin/outbox").get_data(as_text=True)
    assert html.count("结果未知</strong>") == 2
    assert f'action="/staff/admin/outbox/{resend}/resend"' in html
    assert f'action="/staff/admin/outbox/{close}/close"' in html
    assert f"/staff/admin/outbox/{resend}/retry" not in html  # no blind "重新投递" for these

    assert admin(f"/staff/admin/outbox/{resend}/resend").status_code == 302
    assert admin(f"/staff/admin/outbox/{close}/close").status_code == 302
    db.session.expire_all()
    assert db.session.get(OutboxMessage, resend).status == "pending"
    assert db.session.get(OutboxMessage, close).status == "delivered"
    assert Queue("default", connection=conn).job_ids == [f"outbox-{resend}"]
    assert changes("outbox.unknown_resend")[0].detail["claimed_by"] == "worker-gone"
    assert len(changes("outbox.unknown_delivered")) == 1
    # Answered once: a second press (another admin) changes nothing.
    again = admin(f"/staff/admin/outbox/{close}/close")
    assert again.status_code == 302
    assert len(changes("outbox.unknown_delivered")) == 1


class CountingSmtp(socketserver.StreamRequestHandler):
    """A mail server that takes everything and counts connections and messages."""

    def handle(self) -> None:
        self.server.connections += 1
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                while (chunk := self.rfile.readline()) and chunk != b".\r\n":
                    pass
                self.server.messages += 1
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_the_mails_of_a_batch_share_one_smtp_connection(app, demo):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), CountingSmtp)
    server.daemon_threads = True
    server.connections = server.messages = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        db.session.get(User, _user_id("demo-intake")).email = "intake@example.org"
        rows = [
            outbox.queue_message(
                db.session, kind="escalated", channel="email", payload={"user_ids": [_user_id("demo-intake")]}
            )
            for _ in range(3)
        ]
        db.session.commit()
        transport = SmtpTransport("127.0.0.1", server.server_address[1], starttls=False)
        channels = {"email": EmailChannel(transport, "noreply@example.org", "http://x")}
        result = outbox.deliver_many(db.session, [r.id for r in rows], channels, worker="w1")
        assert result["delivered"] == 3
        assert (server.connections, server.messages) == (1, 3)
        # Alone (the per-row job), a mail still opens and closes its own connection.
        alone = EmailMessage()
        alone["From"], alone["To"] = "noreply@example.org", "intake@example.org"
        transport.send(alone)
        assert server.connections == 2
    finally:
        server.shutdown()
        server.server_close()
