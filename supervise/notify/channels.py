"""Delivery channels: in-app notifications and e-mail for staff, SMS for citizens, thumbnails.

Each channel has `send(session, message)`; the outbox calls it under the row lock and marks the
row delivered, or counts a failure and lets RQ retry with backoff (notify/outbox.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise.dbtypes import utcnow
from supervise.i18n import N_
from supervise.notify.models import Notification, OutboxMessage

# SMS lives in notify/sms.py (templates, providers, receipts); its names stay importable from here.
from supervise.notify.sms import (  # noqa: F401
    LINK,
    SMS_GATEWAYS,
    SMS_SOURCES,
    SMS_TEXTS,
    LoggingSmsGateway,
    SmsChannel,
    SmsContent,
    SmsSource,
    UnavailableChannel,
    sms_channel,
    sms_source,
)
from supervise.orgs.routing import OrgTree
from supervise.staff.models import User

log = logging.getLogger(__name__)

TITLES = {
    "case_received": N_("新诉求件 {tracking_no} 待受理"),
    "case_assigned": N_("诉求件 {tracking_no} 已交办给你"),
    "case_reopened": N_("诉求件 {tracking_no} 需重办"),
    "case_transferred": N_("诉求件 {tracking_no} 转至本单位办理，待交办"),
    "case_returned": N_("诉求件 {tracking_no} 被承办单位退回，待重新处理"),
    "review_requested": N_("诉求件 {tracking_no} 的答复待审核"),
    "answer_published": N_("诉求件 {tracking_no} 的答复已发布"),
    "case_rated": N_("诉求件 {tracking_no} 已收到群众评价"),
    "citizen_replied": N_("诉求件 {tracking_no} 群众已回复"),
    "extension_requested": N_("诉求件 {tracking_no} 申请延期，待审批"),
    "deadline_warning": N_("诉求件 {tracking_no} 的{clock}即将届满"),
    "deadline_overdue": N_("诉求件 {tracking_no} 的{clock}已超期"),
    "escalated": N_("督办（{level}级）：诉求件 {tracking_no} 的{clock}已超期"),
    # supervise/cases/hotspots.py: the notice opens the unit's newest case, whose page lists the rest.
    "hot_spot": N_("热点提示：诉求件 {tracking_no} 的被反映单位近 30 日被反映较多"),
}


def title_for(message: OutboxMessage) -> str:
    payload = message.payload or {}
    clock = payload.get("clock")
    return notice_title(
        message.kind,
        message.case.tracking_no if message.case else "",
        [clock] if clock else [],
        payload.get("level"),
    )


def notice_title(
    kind: str, tracking_no: str, clocks: list[str], level: int | None, translate=lambda text: text
) -> str:
    """A notice's title; `translate` is gettext where it is shown (the stored title is Chinese)."""
    from supervise.deadlines.sweep import CLOCK_LABELS

    labels = translate(N_("、")).join(translate(CLOCK_LABELS[c]) for c in clocks if c in CLOCK_LABELS)
    return translate(TITLES.get(kind, kind)).format(
        tracking_no=tracking_no,
        clock=labels or translate(N_("期限")),
        level=translate(N_("一")) if level == 1 else translate(N_("二")),
    )


def group_key(message: OutboxMessage) -> str:
    """Notices fold by case and by this key: the kind, and the 督办 level where there is one."""
    level = (message.payload or {}).get("level")
    return f"{message.kind}:{level}" if level else message.kind


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
    """Notifications listed for each staff user (and a log line an operator can follow).

    One unread notice per user, case and group: a sweep that finds a case's response, stage and
    acknowledgement clocks all late tells each person once (the clocks listed in one title), not
    three times. Two deliveries racing to create the same notice meet the partial unique index;
    the loser fails, is retried, and folds into the winner's row.
    """

    def send(self, session: Session, message: OutboxMessage) -> None:
        from supervise.notify.outbox import BATCH_INFO

        title = title_for(message)
        key = group_key(message)
        clock = (message.payload or {}).get("clock")
        batch = session.info.get(BATCH_INFO)
        if batch is None:
            users = [u.id for u in recipients(session, message.payload)]
        else:
            # A sweep's rows share a few payloads (an org and a role): look each up once a batch.
            cache_key = json.dumps(message.payload, sort_keys=True)
            if cache_key not in batch:
                batch[cache_key] = [u.id for u in recipients(session, message.payload)]
            users = batch[cache_key]
        for user_id in users:
            existing = None
            if message.case_id is not None:
                existing = session.scalar(
                    select(Notification).where(
                        Notification.user_id == user_id,
                        Notification.case_id == message.case_id,
                        Notification.group_key == key,
                        Notification.read_at.is_(None),
                    )
                )
            if existing is None:
                session.add(
                    Notification(
                        user_id=user_id,
                        case_id=message.case_id,
                        outbox_id=message.id,
                        kind=message.kind,
                        title=title,
                        group_key=key,
                        clocks=[clock] if clock else None,
                        updated_at=utcnow(),
                    )
                )
                continue
            existing.repeats += 1
            existing.updated_at = utcnow()
            if clock and clock not in (existing.clocks or []):
                existing.clocks = [*(existing.clocks or []), clock]
                existing.title = notice_title(
                    message.kind, message.case.tracking_no, existing.clocks, message.payload.get("level")
                )
        if batch is None:
            # Alone, a clash with a racing delivery shows here; in a batch the notices are
            # inserted together at its flush (one statement, not one per notice).
            session.flush()
        # Ids and the tracking number only: no reporter identity in logs.
        log.debug("in-app notification %r to users %s", title, users)


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

        self._batching = False
        self._open: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=30)
        if self.starttls:
            # smtplib's default context checks neither certificate nor host name: a man in the
            # middle would get the login and every message. Verify both.
            smtp.starttls(context=ssl.create_default_context())
        if self.username:
            smtp.login(self.username, self.password)
        return smtp

    @contextlib.contextmanager
    def connection(self) -> Iterator[None]:
        """One connection for the mails of a delivery batch (a handshake and login per message
        would cap a worker at a few mails a second)."""
        self._batching, self._open = True, None
        try:
            yield
        finally:
            smtp, self._open, self._batching = self._open, None, False
            if smtp is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()

    def _batch_connection(self) -> smtplib.SMTP:
        if self._open is not None:
            try:
                # Checked before the message, not retried after it: a message that failed
                # mid-transfer may have been accepted, and is not sent twice.
                self._open.noop()
            except (smtplib.SMTPException, OSError):
                self._open = None
        if self._open is None:
            self._open = self._connect()
        return self._open

    def send(self, mail: EmailMessage) -> None:
        if self._batching:
            self._batch_connection().send_message(mail)
            return
        with self._connect() as smtp:
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


def default_channels() -> dict[str, object]:
    from flask import current_app

    from supervise.cases.services import identity_box, upload_store
    from supervise.intake.uploads import ThumbnailChannel
    from supervise.robots.channel import robot_channel

    config = current_app.config
    return {
        "inapp": InAppChannel(),
        "email": EmailChannel(email_transport(config), config["MAIL_FROM"], config["BASE_URL"]),
        "thumbnail": ThumbnailChannel(upload_store()),
        "sms": sms_channel(config, identity_box()),
        "robot": robot_channel(config, identity_box()),  # WeCom / DingTalk groups of staff
    }
