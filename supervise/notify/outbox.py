"""The outbox: side effects as rows, written in the business transaction, delivered by jobs.

Flow: a service calls `queue_message` (same transaction as the change). After the commit,
`enqueue_after_commit` hands the new rows' ids to RQ, up to BATCH_SIZE per job. If Redis is down
that enqueue fails and is only logged: the drain (cron) finds rows still pending whose job Redis
does not hold alive (a started job whose worker stopped heartbeating is dead) and enqueues them
again. Delivery locks each row and does nothing if it is no longer pending, so a job that runs
twice delivers once; an e-mail or SMS is claimed (`sending`) before the provider is called, so a
worker killed mid-send leaves an `unknown` row for an admin, never a second message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from supervise.dbtypes import utcnow
from supervise.notify.models import OutboxMessage

if TYPE_CHECKING:
    from supervise.cases.models import Case

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
_NEW_IDS = "supervise.outbox.new"


class PermanentFailure(Exception):
    """A send that no retry can fix (an invalid number, a template the provider has not approved,
    the daily cap): the row goes `dead` at once with this reason, instead of after MAX_ATTEMPTS."""


class OutcomeUnknown(Exception):
    """The request may have reached the provider (a read timeout after it was sent): re-sending
    could deliver it twice, so the row becomes `unknown` for an admin, as a dead worker's does."""


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

# Channels whose send leaves our database (a provider's server): at most once, so each row is
# claimed (`sending`, committed) before the provider is called. The others write our own tables
# (or a file derived from the row) in the delivery transaction: exactly once without a claim.
EXTERNAL = frozenset({"email", "sms", "robot"})  # robot: a WeCom / DingTalk group (supervise/robots)
# One delivery job handles up to this many rows: one transaction for in-app notices, one SMTP
# connection for mail. A sweep's 30,000 notices are 60 jobs, not 30,000.
BATCH_SIZE = 500
# A claim this old whose worker is dead (or unknown) did not finish: the SMTP timeout is 30 s.
CLAIM_TIMEOUT = timedelta(minutes=2)


def _lock_pending(session: Session, message_id: int) -> OutboxMessage | None:
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending")
        .with_for_update(skip_locked=True)  # PostgreSQL: a second worker skips a row in delivery
    )
    return session.scalar(stmt)


def _record_failure(session: Session, message_id: int, exc: Exception) -> str:
    """Count a failed attempt (the row is pending again); `dead` after MAX_ATTEMPTS or at once on a
    PermanentFailure; `unknown` on an OutcomeUnknown (never re-sent by itself). Commits."""
    message = session.get(OutboxMessage, message_id)
    if message.status not in ("pending", "sending"):
        # Delivered meanwhile by another job (the row was unlocked after this one's commit).
        session.rollback()
        return "skipped"
    message.attempts += 1
    message.status = "pending"
    message.claimed_at = message.claimed_by = None
    message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if isinstance(exc, OutcomeUnknown):
        message.status = "unknown"
        session.commit()
        log.error("outbox message %s: outcome unknown (%s); not re-sent, an admin decides", message_id, exc)
        return "unknown"
    if isinstance(exc, PermanentFailure) or message.attempts >= MAX_ATTEMPTS:
        message.status = "dead"
        session.commit()
        log.error("outbox message %s is dead after %s attempts", message_id, message.attempts)
        return "dead"
    session.commit()
    return "failed"


def deliver(session: Session, message_id: int, channels: dict[str, Any], worker: str | None = None) -> str:
    """Deliver one message through its channel and mark it; returns what happened.

    Commits. Raises after recording the failure so RQ's Retry backs off and tries again; after
    MAX_ATTEMPTS the row is `dead` (a dead letter admins can see) and the job stops raising.
    An external send is claimed first (`sending`, committed, with `worker`): if this process dies
    between the provider's "accepted" and our commit, the row stays `sending` and the drain turns
    it into `unknown` for an admin, instead of a second SMS ten minutes later.
    """
    message = _lock_pending(session, message_id)
    if message is None:
        session.rollback()
        return "skipped"
    if message.channel in EXTERNAL:
        message.status = "sending"
        message.claimed_at = utcnow()
        message.claimed_by = worker
        session.commit()
    try:
        channels[message.channel].send(session, message)
    except Exception as exc:
        session.rollback()
        outcome = _record_failure(session, message_id, exc)
        if outcome != "failed":
            return outcome
        raise
    message.attempts += 1
    message.status = "delivered"
    message.delivered_at = utcnow()
    session.commit()
    log.debug("outbox message %s (%s/%s) delivered", message.id, message.kind, message.channel)
    return "delivered"


def deliver_many(
    session: Session, ids: list[int], channels: dict[str, Any], worker: str | None = None
) -> dict[str, Any]:
    """Deliver a batch of rows in one job; returns counts and the ids that failed (to retry).

    Internal rows (in-app, thumbnails): every pending one is locked at once (SKIP LOCKED on
    PostgreSQL: rows another worker holds are its), sent, and committed once; if one fails, the
    chunk is redone with a savepoint per row so the others still go. External rows: one by one
    through `deliver` (claim, send, mark), sharing one SMTP connection.
    """
    result: dict[str, Any] = {"delivered": 0, "skipped": 0, "dead": 0, "unknown": 0, "failed": []}
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = sorted(ids[start : start + BATCH_SIZE])
        rows = _lock_internal(session, chunk)
        session.info[BATCH_INFO] = {}  # recipients by payload, for this chunk (channels.py)
        try:
            failures = _send_internal(session, rows, channels, savepoints=False)
        except Exception:
            # Something failed only at the chunk's flush (a unique index race): redo the chunk row
            # by row in savepoints, so the good rows still go and the bad one is retried alone.
            session.rollback()
            session.info[BATCH_INFO] = {}
            rows = _lock_internal(session, chunk)
            failures = _send_internal(session, rows, channels, savepoints=True)
        finally:
            session.info.pop(BATCH_INFO, None)
        result["delivered"] += len(rows) - len(failures)
        for message_id, exc in failures:
            outcome = _record_failure(session, message_id, exc)
            if outcome == "failed":
                result["failed"].append(message_id)
            else:
                result[outcome] += 1
        handled = {m.id for m in rows}
        external = [
            i
            for i in session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.id.in_([i for i in chunk if i not in handled]),
                    OutboxMessage.channel.in_(EXTERNAL),
                )
            )
        ]
        session.rollback()
        result["skipped"] += len(chunk) - len(handled) - len(external)
        with _mail_connection(channels):
            for message_id in external:
                try:
                    outcome = deliver(session, message_id, channels, worker)
                except Exception:
                    result["failed"].append(message_id)
                    continue
                result[outcome] += 1
    log.debug("outbox batch: %s", {k: v for k, v in result.items() if k != "failed"})
    return result


BATCH_INFO = "supervise.outbox.batch"


def _lock_internal(session: Session, ids: list[int]) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.status == "pending",
                OutboxMessage.channel.not_in(EXTERNAL),
            )
            .order_by(OutboxMessage.id)
            .with_for_update(skip_locked=True)  # PostgreSQL: rows another worker holds are its
        )
    )


def _send_internal(
    session: Session, rows: list[OutboxMessage], channels: dict[str, Any], *, savepoints: bool
) -> list[tuple[int, Exception]]:
    """Send each row and mark it delivered, then commit. Without savepoints (the fast path: no
    round trips per row, the notices inserted in bulk at the flush) an error raises and the caller
    redoes the chunk with them; with them, a failing row is returned instead and the rest commit."""
    failures: list[tuple[int, Exception]] = []
    for message in rows:
        if savepoints:
            try:
                with session.begin_nested():
                    channels[message.channel].send(session, message)
            except Exception as exc:
                failures.append((message.id, exc))
                continue
        else:
            channels[message.channel].send(session, message)
        message.attempts += 1
        message.status = "delivered"
        message.delivered_at = utcnow()
    session.commit()
    return failures


def _mail_connection(channels: dict[str, Any]):
    """One SMTP connection for the e-mails of a batch, where the transport can hold one."""
    transport = getattr(channels.get("email"), "transport", None)
    opened = getattr(transport, "connection", None)
    return opened() if opened else contextlib.nullcontext()


def stale_pending_ids(session: Session, older_than: timedelta = timedelta(seconds=10)) -> list[int]:
    """Pending rows old enough that their commit-time enqueue should have run by now."""
    cutoff = utcnow() - older_than
    stmt = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "pending", OutboxMessage.created_at < cutoff)
        .order_by(OutboxMessage.id)
        .limit(5000)
    )
    return list(session.scalars(stmt))


def settle_abandoned_claims(
    session: Session, worker_alive: Callable[[str], bool], older_than: timedelta = CLAIM_TIMEOUT
) -> list[int]:
    """`sending` rows whose claim is old and whose worker is gone become `unknown`. Commits.

    Whether the provider sent them we cannot know (the worker died between its call and our
    commit), so they are not re-sent: an admin decides on the dead-letter page.
    """
    cutoff = utcnow() - older_than
    claims = session.execute(
        select(OutboxMessage.id, OutboxMessage.claimed_by).where(
            OutboxMessage.status == "sending", OutboxMessage.claimed_at < cutoff
        )
    ).all()
    lost = [message_id for message_id, worker in claims if not worker or not worker_alive(worker)]
    if lost:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(lost), OutboxMessage.status == "sending")
            .values(status="unknown", last_error=UNKNOWN_NOTE)
        )
        session.commit()
        log.error("outbox messages %s: worker died while sending; outcome unknown, an admin decides", lost)
    return lost


# Stored in last_error (English, like the exceptions stored there): the page explains it in Chinese.
UNKNOWN_NOTE = "worker died between the provider call and the commit: sent or not is unknown"


def resolve_unknown(session: Session, message_id: int, *, delivered: bool) -> bool:
    """An admin's answer for an `unknown` row: it reached them (closed as delivered) or it did not
    (pending again, with fresh attempts). Conditional, so two admins answer once; does not commit."""
    values: dict[str, Any] = (
        {"status": "delivered", "delivered_at": utcnow()}
        if delivered
        else {"status": "pending", "attempts": 0, "claimed_at": None, "claimed_by": None}
    )
    done = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "unknown")
        .values(**values)
    )
    return done.rowcount == 1
