"""A worker killed after the provider took an e-mail but before our commit: never sent twice.

The mail server here accepts the message and then never answers the end of DATA, so the worker
is inside the provider call, its message delivered, when it is SIGKILLed. Before, the row was
still pending and the next job sent it again (the same SMS ten minutes apart). Now the row was
claimed (`sending`) before the call, the drain turns it into `unknown` once the claim is old and
the worker dead, and it waits on the dead-letter page for an admin.
"""

from __future__ import annotations

import socketserver
import threading
from datetime import timedelta

from redis import Redis
from rq import Queue
from sqlalchemy import update

from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.notify.models import OutboxMessage
from supervise.notify.outbox import queue_message
from supervise.staff.models import User
from tests.faults.test_killed_worker import _kill, _until, _worker, deployment  # noqa: F401


class HangingSmtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to take one message; then silence where "250 queued" should be."""

    received: list[bytes]

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                body = b""
                while (chunk := self.rfile.readline()) and chunk != b".\r\n":
                    body += chunk
                self.server.received.append(body)
                threading.Event().wait(60)  # the message is ours; the worker waits for our reply
                return
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), HangingSmtp)
        self.received: list[bytes] = []


def test_a_mail_in_flight_when_the_worker_dies_is_unknown_not_resent(deployment, private_redis, tmp_path):  # noqa: F811
    _app, env, cli, _database, user_id = deployment
    smtp = Server()
    threading.Thread(target=smtp.serve_forever, daemon=True).start()
    env = env | {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.server_address[1]), "SMTP_STARTTLS": "false"}
    conn = Redis.from_url(private_redis.url)
    db.session.get(User, user_id).email = "watcher@example.org"
    message = queue_message(
        db.session,
        kind="escalated",
        channel="email",
        payload={"user_ids": [user_id], "clock": "response", "level": 1},
    )
    db.session.commit()
    message_id = message.id

    first = _worker(cli, env, tmp_path / "worker-1.log")
    second = None
    try:
        _until(lambda: smtp.received, 30, "the mail server to receive the message")
        db.session.expire_all()
        row = db.session.get(OutboxMessage, message_id)
        assert row.status == "sending" and row.claimed_by  # claimed and committed before the call
        _kill(first)

        second = _worker(cli, env, tmp_path / "worker-2.log")
        # Two minutes later (CLAIM_TIMEOUT), as far as the claim is concerned.
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(claimed_at=utcnow() - timedelta(minutes=3), created_at=utcnow() - timedelta(minutes=3))
        )
        db.session.commit()

        def settled() -> bool:
            Queue("default", connection=conn).enqueue("workers.jobs.drain_outbox")
            db.session.expire_all()
            return db.session.get(OutboxMessage, message_id).status == "unknown"

        _until(settled, 20, "the drain to mark the row unknown")
        for _ in range(3):  # later drains leave it alone: no second mail
            Queue("default", connection=conn).enqueue("workers.jobs.drain_outbox")
        _until(lambda: not Queue("default", connection=conn).job_ids, 10, "the drains to run")
        db.session.expire_all()
        assert db.session.get(OutboxMessage, message_id).status == "unknown"
        assert len(smtp.received) == 1
        assert f"outbox-{message_id}".encode() in smtp.received[0]  # Message-ID: the provider's key
    finally:
        _kill(first)
        if second is not None:
            _kill(second)
        smtp.shutdown()
        smtp.server_close()


def test_claim_is_committed_before_the_send(app, demo):
    """The unit view of the same rule: when the provider is called, the row is `sending` in the
    database (another connection sees it), not merely in this session."""
    from supervise.notify import outbox

    seen: list[str] = []

    class Probe:
        def send(self, session, message):
            with db.engine.connect() as other:
                seen.append(
                    other.scalar(
                        OutboxMessage.__table__.select()
                        .with_only_columns(OutboxMessage.status)
                        .where(OutboxMessage.id == message.id)
                    )
                )

    row = queue_message(db.session, kind="escalated", channel="email", payload={"user_ids": []})
    db.session.commit()
    assert outbox.deliver(db.session, row.id, {"email": Probe()}, worker="w1") == "delivered"
    assert seen == ["sending"]
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).status == "delivered"
