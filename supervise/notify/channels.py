"""Delivery channels: in-app notifications and e-mail for staff, SMS for citizens, thumbnails.

Each channel has `send(session, message)`; the outbox calls it under the row lock and marks the
row delivered, or counts a failure and lets RQ retry with backoff (notify/outbox.py).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise.notify.models import Notification, OutboxMessage
from supervise.orgs.routing import OrgTree
from supervise.staff.models import User

log = logging.getLogger(__name__)

TITLES = {
    "case_received": "新诉求件 {tracking_no} 待受理",
    "case_assigned": "诉求件 {tracking_no} 已交办给你",
    "case_reopened": "诉求件 {tracking_no} 需重办",
    "case_transferred": "诉求件 {tracking_no} 转至本单位办理，待交办",
    "case_returned": "诉求件 {tracking_no} 被承办单位退回，待重新处理",
    "review_requested": "诉求件 {tracking_no} 的答复待审核",
    "answer_published": "诉求件 {tracking_no} 的答复已发布",
    "case_rated": "诉求件 {tracking_no} 已收到群众评价",
    "citizen_replied": "诉求件 {tracking_no} 群众已回复",
    "extension_requested": "诉求件 {tracking_no} 申请延期，待审批",
    "deadline_warning": "诉求件 {tracking_no} 的{clock}即将届满",
    "deadline_overdue": "诉求件 {tracking_no} 的{clock}已超期",
    "escalated": "督办（{level}级）：诉求件 {tracking_no} 的{clock}已超期",
}


def title_for(message: OutboxMessage) -> str:
    from supervise.deadlines.sweep import CLOCK_LABELS

    payload = message.payload or {}
    return TITLES.get(message.kind, message.kind).format(
        tracking_no=message.case.tracking_no if message.case else "",
        clock=CLOCK_LABELS.get(payload.get("clock", ""), "期限"),
        level="一" if payload.get("level") == 1 else "二",
    )


def recipients(session: Session, payload: dict) -> list[User]:
    """Named users, or the active users with a role at an org. A discipline body with nobody in
    that role (a 纪委 without a supervisor account yet) is served by the next body up, the same
    walk that routes cases (orgs/routing.py), so whoever is told can open the case. A unit is
    never walked past: transfers to it require its leader. With `exact_org` (the weekly report:
    each org's supervisors get their own subtree's view) only that org's users."""
    if "user_ids" in payload:
        return list(session.scalars(select(User).where(User.id.in_(payload["user_ids"])).order_by(User.id)))
    tree = None
    org_id = payload["org_id"]
    while True:
        stmt = select(User).where(User.org_id == org_id, User.active.is_(True))
        if payload.get("role"):
            stmt = stmt.where(User.holding(payload["role"]))
        found = list(session.scalars(stmt.order_by(User.id)))
        if found or payload.get("exact_org"):
            return found
        tree = tree or OrgTree.load(session)
        if org_id not in tree.nodes or not tree.is_body(org_id):
            return found
        above = tree.body_above(org_id)
        if above == org_id:
            return found
        org_id = above


class InAppChannel:
    """Notifications listed for each staff user (and a log line an operator can follow)."""

    def send(self, session: Session, message: OutboxMessage) -> None:
        title = title_for(message)
        users = [u.id for u in recipients(session, message.payload)]
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
    "case_accepted": "【码上监督】您反映的问题（{tracking_no}）已受理，我们将在规定期限内答复。",
    "case_rejected": "【码上监督】您反映的问题（{tracking_no}）经审查不予受理，理由请凭查询编号和查询码查看。",  # noqa: E501
    "feedback_published": "【码上监督】您反映的问题（{tracking_no}）已有答复，请凭查询编号和查询码查看并评价。",  # noqa: E501
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


class SmtpTransport:
    """Real mail through smtplib (STARTTLS and login when configured)."""

    def __init__(self, host: str, port: int, username: str = "", password: str = "", starttls: bool = True):
        self.host, self.port, self.username, self.password, self.starttls = (
            host,
            port,
            username,
            password,
            starttls,
        )

    def send(self, mail: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            if self.starttls:
                # smtplib's default context checks neither certificate nor host name: a man in the
                # middle would get the login and every message. Verify both.
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(mail)


class FileSinkTransport:
    """Development: each message becomes an .eml file in a folder; nothing leaves the machine."""

    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, mail: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = mail["Message-ID"].strip("<>").replace("/", "_")
        (self.directory / f"{name}.eml").write_bytes(bytes(mail))
        log.info("mail %r written to the development sink %s", mail["Subject"], self.directory)


EMAIL_BODIES = {
    "escalated": (
        "{title}\n\n诉求件 {tracking_no} 的{clock}已于 {due} 届满，尚未办结，现按规定报请督办。\n"
        "请登录码上监督工作台查看：{url}\n"
    ),
}


class EmailChannel:
    """E-mail to staff (escalations and the weekly report to supervisors): one message, every
    recipient with an address."""

    def __init__(self, transport, sender: str, base_url: str):
        self.transport, self.sender, self.base_url = transport, sender, base_url

    def send(self, session: Session, message: OutboxMessage) -> None:
        from supervise.deadlines.sweep import CLOCK_LABELS

        addresses = [u.email for u in recipients(session, message.payload) if u.email]
        if not addresses:
            log.info("outbox message %s: no recipient has an e-mail address", message.id)
            return
        if message.kind == "weekly_report":
            self.transport.send(self._weekly_report(session, message, addresses))
            return
        case = message.case
        title = title_for(message)
        mail = self._envelope(message, title, addresses)
        body = EMAIL_BODIES.get(message.kind, "{title}\n\n{url}\n")
        mail.set_content(
            body.format(
                title=title,
                tracking_no=case.tracking_no if case else "",
                clock=CLOCK_LABELS.get(message.payload.get("clock", ""), "期限"),
                due=message.payload.get("due_day", ""),
                url=f"{self.base_url}/staff/cases/{case.tracking_no}" if case else self.base_url,
            )
        )
        self.transport.send(mail)

    def _envelope(self, message: OutboxMessage, subject: str, addresses: list[str]) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(addresses)
        mail["Date"] = formatdate(localtime=False)
        # Stable per outbox row: a retried delivery is recognisably the same message.
        mail["Message-ID"] = make_msgid(idstring=f"outbox-{message.id}", domain="supervise.local")
        return mail

    def _weekly_report(self, session: Session, message: OutboxMessage, addresses: list[str]) -> EmailMessage:
        """每周超期件通报 for one org's supervisors: their subtree's view as the HTML body (with a
        plain-text alternative) and as an XLSX attachment."""
        from supervise.reports import export
        from supervise.reports.models import WeeklyReport
        from supervise.reports.weekly import view_for

        payload = message.payload
        report = session.get(WeeklyReport, payload["report_id"])
        if report is None:
            # Reports are never deleted: fail loudly (retries, then a dead letter admins see).
            raise LookupError(f"weekly report {payload['report_id']} not found")
        view = {
            **view_for(report.data, payload["org_id"]),
            "version": report.version,
            "built_at": report.built_at.isoformat(),
        }
        mail = self._envelope(message, export.subject(view), addresses)
        mail.set_content(export.to_text(view))
        mail.add_alternative(export.to_html(view), subtype="html")
        maintype, subtype = export.XLSX_MIME
        mail.add_attachment(
            export.to_xlsx(view), maintype=maintype, subtype=subtype, filename=export.attachment_name(view)
        )
        return mail


def email_transport(config) -> SmtpTransport | FileSinkTransport:
    if config.get("SMTP_HOST"):
        return SmtpTransport(
            config["SMTP_HOST"],
            config["SMTP_PORT"],
            config.get("SMTP_USERNAME", ""),
            config.get("SMTP_PASSWORD", ""),
            config.get("SMTP_STARTTLS", True),
        )
    return FileSinkTransport(Path(config["DATA_DIR"]) / "mail")


SMS_GATEWAYS = {"log": LoggingSmsGateway}


class UnavailableChannel:
    """A channel whose settings name something that does not exist: its messages fail (and, after
    their retries, land on the dead-letter page) while every other channel keeps delivering.
    Start-up refuses such settings in production; this is the net under it."""

    def __init__(self, reason: str):
        self.reason = reason

    def send(self, session: Session, message: OutboxMessage) -> None:
        raise RuntimeError(self.reason)


def sms_channel(config, identity_box) -> SmsChannel | UnavailableChannel:
    name = config.get("SMS_GATEWAY", "log")
    gateway = SMS_GATEWAYS.get(name)
    if gateway is None:
        return UnavailableChannel(f"unknown SMS_GATEWAY {name!r}: one of {', '.join(sorted(SMS_GATEWAYS))}")
    return SmsChannel(gateway(), identity_box)


def default_channels() -> dict[str, object]:
    from flask import current_app

    from supervise.cases.services import identity_box, upload_store
    from supervise.intake.uploads import ThumbnailChannel

    config = current_app.config
    return {
        "inapp": InAppChannel(),
        "email": EmailChannel(email_transport(config), config["MAIL_FROM"], config["BASE_URL"]),
        "thumbnail": ThumbnailChannel(upload_store()),
        "sms": sms_channel(config, identity_box()),
    }
