"""Dead letters of the outbox (system-wide): notices that failed every delivery attempt, and
e-mails/SMS whose outcome is unknown (the worker died mid-send): an admin decides those."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from supervise.cases.models import Case
from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.notify.models import OutboxMessage
from supervise.notify.outbox import resolve_unknown
from supervise.queueing import enqueue_outbox
from supervise.staff.admin.common import bp, refused, saved, system_admin_required
from supervise.staff.auth import staff_required
from supervise.staff.models import Role

DEAD_LETTERS_SHOWN = 200
SMS_SHOWN = 50
# The drain re-enqueues pending rows every minute: one still pending after this is stuck somewhere.
STALE_PENDING = timedelta(minutes=10)


@bp.get("/outbox")
@staff_required(Role.ADMIN)
@system_admin_required
def outbox() -> ResponseReturnValue:
    """Outbox rows that failed MAX_ATTEMPTS times, and those whose outcome is unknown: nobody is
    told (or told twice) unless an admin looks here. Unknown ones first: someone may be waiting.

    System-wide because a row is not an org's (a case's notice may go to several orgs' staff)."""
    rows = db.session.execute(
        select(OutboxMessage, Case.tracking_no)
        .outerjoin(Case, Case.id == OutboxMessage.case_id)
        .where(OutboxMessage.status.in_(("dead", "unknown")))
        .order_by(
            (OutboxMessage.status == "unknown").desc(),
            OutboxMessage.created_at.desc(),
            OutboxMessage.id.desc(),
        )
        .limit(DEAD_LETTERS_SHOWN)
    ).all()
    dead_total = db.session.scalar(
        select(func.count(OutboxMessage.id)).where(OutboxMessage.status.in_(("dead", "unknown")))
    )
    stale_pending = db.session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.status == "pending", OutboxMessage.created_at < utcnow() - STALE_PENDING
        )
    )
    # 短信发送记录: the latest SMS rows with the provider's id and receipt (回执), so an admin can
    # answer "did the citizen get it" and match a row in the provider's console. No number, no text.
    sms_rows = db.session.execute(
        select(OutboxMessage, Case.tracking_no)
        .outerjoin(Case, Case.id == OutboxMessage.case_id)
        .where(OutboxMessage.channel == "sms")
        .order_by(OutboxMessage.id.desc())
        .limit(SMS_SHOWN)
    ).all()
    return render_template(
        "staff/admin/outbox.html",
        sms_rows=sms_rows,
        rows=rows,
        dead_total=dead_total,
        shown_limit=DEAD_LETTERS_SHOWN,
        stale_pending=stale_pending,
        stale_minutes=int(STALE_PENDING.total_seconds() // 60),
    )


@bp.post("/outbox/<int:message_id>/retry")
@staff_required(Role.ADMIN)
@system_admin_required
def outbox_retry(message_id: int) -> ResponseReturnValue:
    message = db.session.get(OutboxMessage, message_id) or abort(404)
    kind, channel, attempts, last_error = message.kind, message.channel, message.attempts, message.last_error
    # Conditional, so two admins pressing "retry" at once (or a row retried meanwhile) reset it once.
    reset = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "dead")
        .values(status="pending", attempts=0)
    )
    if reset.rowcount != 1:
        db.session.rollback()
        return refused("admin.outbox", _("消息 %(id)s 已不在投递失败列表中", id=message_id))
    response = saved(
        "outbox.retry",
        _("消息 %(id)s 已重新排队投递", id=message_id),
        "admin.outbox",
        message=message_id,
        kind=kind,
        channel=channel,
        attempts=attempts,
        last_error=(last_error or "")[:200],
    )
    # After the commit, so the worker finds the row pending; if Redis is away the drain enqueues it.
    enqueue_outbox([message_id])
    return response


def _resolve(message_id: int, *, delivered: bool) -> ResponseReturnValue:
    message = db.session.get(OutboxMessage, message_id) or abort(404)
    kind, channel, claimed_by = message.kind, message.channel, message.claimed_by
    if not resolve_unknown(db.session, message_id, delivered=delivered):
        db.session.rollback()
        return refused("admin.outbox", _("消息 %(id)s 已不是结果未知状态", id=message_id))
    response = saved(
        "outbox.unknown_delivered" if delivered else "outbox.unknown_resend",
        _("消息 %(id)s 已按已送达关闭", id=message_id)
        if delivered
        else _("消息 %(id)s 已重新排队投递", id=message_id),
        "admin.outbox",
        message=message_id,
        kind=kind,
        channel=channel,
        claimed_by=claimed_by,
    )
    if not delivered:
        enqueue_outbox([message_id])  # after the commit; the drain covers a Redis outage
    return response


@bp.post("/outbox/<int:message_id>/resend")
@staff_required(Role.ADMIN)
@system_admin_required
def outbox_resend_unknown(message_id: int) -> ResponseReturnValue:
    """结果未知 → 确认未送达，重新投递: the admin checked (the recipient, the provider's console)."""
    return _resolve(message_id, delivered=False)


@bp.post("/outbox/<int:message_id>/close")
@staff_required(Role.ADMIN)
@system_admin_required
def outbox_close_unknown(message_id: int) -> ResponseReturnValue:
    """结果未知 → 已送达，关闭."""
    return _resolve(message_id, delivered=True)
