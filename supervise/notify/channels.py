"""Delivery channels. In-app writes notification rows for staff; email and SMS arrive later."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise.notify.models import Notification, OutboxMessage
from supervise.orgs.models import Org
from supervise.staff.models import User

log = logging.getLogger(__name__)

TITLES = {
    "case_received": "新诉求件 {tracking_no} 待受理",
    "case_assigned": "诉求件 {tracking_no} 已交办给你",
    "case_reopened": "诉求件 {tracking_no} 需重办",
    "citizen_replied": "诉求件 {tracking_no} 群众已回复",
    "extension_requested": "诉求件 {tracking_no} 申请延期，待审批",
}


class InAppChannel:
    """Notifications listed for each staff user (and a log line an operator can follow)."""

    def recipients(self, session: Session, message: OutboxMessage) -> list[int]:
        """Named users, or the users with a role at an org. A village with no intake clerk of its
        own is served by the nearest org above it that has one, so no case arrives unseen."""
        payload = message.payload
        if "user_ids" in payload:
            return list(payload["user_ids"])
        org = session.get(Org, payload["org_id"])
        while org is not None:
            stmt = select(User.id).where(User.org_id == org.id, User.active.is_(True))
            if payload.get("role"):
                stmt = stmt.where(User.role == payload["role"])
            found = list(session.scalars(stmt.order_by(User.id)))
            if found:
                return found
            org = org.parent
        return []

    def send(self, session: Session, message: OutboxMessage) -> None:
        tracking_no = message.case.tracking_no if message.case else ""
        title = TITLES.get(message.kind, message.kind).format(tracking_no=tracking_no)
        users = self.recipients(session, message)
        for user_id in users:
            session.add(
                Notification(
                    user_id=user_id,
                    case_id=message.case_id,
                    outbox_id=message.id,
                    kind=message.kind,
                    title=title,
                )
            )
        session.flush()
        # Ids and the tracking number only: no reporter identity in logs.
        log.info("in-app notification %r to users %s", title, users)


SMS_TEXTS = {
    # No case content in an SMS: only that there is news, and where to look.
    "citizen_message": "【码上监督】您反映的问题（{tracking_no}）有新的留言，请凭查询编号和查询码查看。",
}


class LoggingSmsGateway:
    """The development SMS driver: logs a masked number instead of sending."""

    def send(self, phone: str, text: str) -> None:
        from supervise.cases.identity import mask_phone

        log.info("SMS to %s: %s", mask_phone(phone), text)


class SmsChannel:
    """SMS to the citizen. The number is decrypted only here, at sending time: never in Redis."""

    def __init__(self, gateway, identity_box):
        self.gateway, self.box = gateway, identity_box

    def send(self, session: Session, message: OutboxMessage) -> None:
        phone = self.box.open(message.case.reporter_phone_enc)
        if phone:
            self.gateway.send(phone, SMS_TEXTS[message.kind].format(tracking_no=message.case.tracking_no))


def default_channels() -> dict[str, object]:
    from supervise.cases.services import identity_box, upload_store
    from supervise.intake.uploads import ThumbnailChannel

    return {
        "inapp": InAppChannel(),
        "thumbnail": ThumbnailChannel(upload_store()),
        "sms": SmsChannel(LoggingSmsGateway(), identity_box()),
    }
