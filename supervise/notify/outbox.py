"""The outbox: side effects as rows, written in the business transaction, delivered by jobs.

Flow: a service calls `queue_message` (same transaction as the change). After the commit,
`enqueue_after_commit` hands each new row's id to RQ. If Redis is down that enqueue fails and is
only logged: `drain` (cron, every minute) finds rows still pending whose job Redis does not hold
and enqueues them again. `deliver` locks the row and does nothing if it is no longer pending, so a
job that runs twice delivers once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from supervise.dbtypes import utcnow
from supervise.notify.models import OutboxMessage

if TYPE_CHECKING:
    from supervise.cases.models import Case

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
_NEW_IDS = "supervise.outbox.new"


def queue_message(
    session: Session,
    *,
    kind: str,
    channel: str,
    case: Case | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> OutboxMessage:
    """Record a side effect to deliver once this transaction commits. Payloads hold ids only."""
    message = OutboxMessage(
        kind=kind, channel=channel, case=case, payload=payload or {}, dedupe_key=dedupe_key
    )
    session.add(message)
    return message


def enqueue_after_commit(session: Session, ids: list[int]) -> None:
    """Hand rows inserted set-wise (not through the ORM) to RQ once the transaction commits."""
    if ids:
        session.info.setdefault(_NEW_IDS, []).extend(ids)


def job_id(message_id: int) -> str:
    return f"outbox-{message_id}"


# -- enqueue after commit ------------------------------------------------------------------------


def _remember_new_messages(session: Session, flush_context, instances=None) -> None:
    new = [obj for obj in session.new if isinstance(obj, OutboxMessage)]
    if new:
        session.info.setdefault(_NEW_IDS, []).extend(new)


def _collect_ids(session: Session, flush_context) -> None:
    pending = session.info.get(_NEW_IDS)
    if pending:
        session.info[_NEW_IDS] = [m.id if isinstance(m, OutboxMessage) else m for m in pending]


def _forget(session: Session, *args) -> None:
    session.info.pop(_NEW_IDS, None)


def install_session_hooks(session_class: type[Session], enqueue) -> None:
    """Enqueue delivery jobs for the outbox rows a transaction wrote, once it has committed.

    `enqueue(ids)` must not raise: losing the enqueue is fine (the drain catches it), losing the
    commit is not.
    Installed once per process, whatever the number of apps: the hooks live on the class.
    """
    if getattr(session_class, "_supervise_outbox_hooks", False):
        return
    session_class._supervise_outbox_hooks = True

    def after_commit(session: Session) -> None:
        ids = session.info.pop(_NEW_IDS, None)
        if ids:
            enqueue([i for i in ids if isinstance(i, int)])

    event.listen(session_class, "before_flush", _remember_new_messages)
    event.listen(session_class, "after_flush_postexec", _collect_ids)
    event.listen(session_class, "after_commit", after_commit)
    event.listen(session_class, "after_soft_rollback", _forget)


# -- delivery ----------------------------------------------------------------------------------


def _lock_pending(session: Session, message_id: int) -> OutboxMessage | None:
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending")
        .with_for_update(skip_locked=True)  # PostgreSQL: a second worker skips a row in delivery
    )
    return session.scalar(stmt)


def deliver(session: Session, message_id: int, channels: dict[str, Any]) -> str:
    """Deliver one message through its channel and mark it; returns what happened.

    Commits. Raises after recording the failure so RQ's Retry backs off and tries again; after
    MAX_ATTEMPTS the row is `dead` (a dead letter admins can see) and the job stops raising.
    """
    message = _lock_pending(session, message_id)
    if message is None:
        session.rollback()
        return "skipped"
    try:
        channels[message.channel].send(session, message)
    except Exception as exc:
        session.rollback()
        message = session.get(OutboxMessage, message_id)
        message.attempts += 1
        message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if message.attempts >= MAX_ATTEMPTS:
            message.status = "dead"
            session.commit()
            log.error("outbox message %s is dead after %s attempts", message_id, message.attempts)
            return "dead"
        session.commit()
        raise
    message.attempts += 1
    message.status = "delivered"
    message.delivered_at = utcnow()
    session.commit()
    log.debug("outbox message %s (%s/%s) delivered", message.id, message.kind, message.channel)
    return "delivered"


def stale_pending_ids(session: Session, older_than: timedelta = timedelta(seconds=10)) -> list[int]:
    """Pending rows old enough that their commit-time enqueue should have run by now."""
    cutoff = utcnow() - older_than
    stmt = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "pending", OutboxMessage.created_at < cutoff)
        .order_by(OutboxMessage.id)
        .limit(1000)
    )
    return list(session.scalars(stmt))
