"""The e-mail channel against a real SMTP server (aiosmtpd, in-process) and the development sink."""

from __future__ import annotations

import datetime as dt
import email
import socket
import ssl
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from supervise.cases.models import Case
from supervise.extensions import db
from supervise.notify import outbox
from supervise.notify.channels import default_channels
from supervise.notify.models import OutboxMessage
from supervise.orgs.models import Org
from supervise.staff.models import Role, User
from supervise.staff.services import create_user

SUPERVISOR_EMAIL = "lead@example.org"


def free_port() -> int:
    """A port nothing listens on (the OS picked it free; we close it again at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts (or refuses every recipient)."""

    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.envelopes: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


def _serve(app, handler: Inbox, **server_options):
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **server_options)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port, SMTP_STARTTLS=False)
    return controller


@pytest.fixture
def smtp_server(app):
    """A real SMTP server on 127.0.0.1 (plain, no STARTTLS), with the app configured to use it."""
    handler = Inbox()
    controller = _serve(app, handler)
    yield handler
    controller.stop()


def escalation(submit, *, email_of_supervisor: str | None = SUPERVISOR_EMAIL) -> tuple[int, str]:
    """A case and the sweep's "escalated" e-mail row for the county's supervisors; (row id, tracking no)."""
    tracking_no = submit()["tracking_no"]
    case = db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))
    county = db.session.scalar(select(Org).where(Org.code == "demo-county"))
    # Only the addresses set here count, whatever the demo data gives.
    db.session.execute(update(User).values(email=None))
    supervisor = db.session.scalar(select(User).where(User.username == "demo-supervisor"))
    supervisor.email = email_of_supervisor
    message = outbox.queue_message(
        db.session,
        kind="escalated",
        channel="email",
        case=case,
        payload={
            "org_id": county.id,
            "role": "supervisor",
            "level": 1,
            "clock": "response",
            "due_day": "2026-12-01",
        },
    )
    db.session.commit()
    return message.id, tracking_no


def test_escalation_mail_reaches_a_real_smtp_server_once(app, submit, smtp_server):
    message_id, tracking_no = escalation(submit)
    # A second supervisor without an address is simply not among the recipients.
    county = db.session.scalar(select(Org).where(Org.code == "demo-county"))
    create_user(db.session, username="lead-2", org=county, role=Role.SUPERVISOR.value, password="x" * 12)
    db.session.commit()

    assert outbox.deliver(db.session, message_id, default_channels()) == "delivered"
    assert outbox.deliver(db.session, message_id, default_channels()) == "skipped"

    assert len(smtp_server.envelopes) == 1
    assert smtp_server.envelopes[0].rcpt_tos == [SUPERVISOR_EMAIL]
    (mail,) = smtp_server.messages()
    assert mail["To"] == SUPERVISOR_EMAIL
    assert mail["Subject"] == f"督办（一级）：诉求件 {tracking_no} 的答复期限已超期"
    assert f"outbox-{message_id}" in mail["Message-ID"]
    body = mail.get_body().get_content()
    assert "2026-12-01" in body and f"/staff/cases/{tracking_no}" in body
    row = db.session.get(OutboxMessage, message_id)
    assert (row.status, row.attempts) == ("delivered", 1)


def test_without_smtp_host_mail_goes_to_the_file_sink(app, submit, tmp_path):
    app.config.update(SMTP_HOST="", DATA_DIR=str(tmp_path))
    message_id, tracking_no = escalation(submit)
    assert outbox.deliver(db.session, message_id, default_channels()) == "delivered"
    (written,) = (tmp_path / "mail").glob("*.eml")
    mail = email.message_from_bytes(written.read_bytes(), policy=policy.default)
    assert mail["To"] == SUPERVISOR_EMAIL and tracking_no in mail["Subject"]


def test_recipients_without_addresses_are_a_delivered_no_op(app, submit, tmp_path):
    app.config.update(SMTP_HOST="", DATA_DIR=str(tmp_path))
    message_id, _ = escalation(submit, email_of_supervisor=None)
    assert outbox.deliver(db.session, message_id, default_channels()) == "delivered"
    assert not (tmp_path / "mail").exists()
    assert db.session.get(OutboxMessage, message_id).status == "delivered"


@pytest.mark.parametrize("server", ["nothing listening", "recipient refused"])
def test_a_refusing_server_counts_attempts_until_the_row_is_dead(app, submit, server):
    controller = None
    if server == "nothing listening":
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), SMTP_STARTTLS=False)
    else:
        controller = _serve(app, Inbox(refuse=True))
    try:
        message_id, _ = escalation(submit)
        for attempt in range(1, outbox.MAX_ATTEMPTS):
            with pytest.raises(OSError):  # ConnectionRefusedError, SMTPRecipientsRefused: both OSError
                outbox.deliver(db.session, message_id, default_channels())
            row = db.session.get(OutboxMessage, message_id)
            assert (row.status, row.attempts) == ("pending", attempt)
        assert outbox.deliver(db.session, message_id, default_channels()) == "dead"
    finally:
        if controller is not None:
            controller.stop()
    row = db.session.get(OutboxMessage, message_id)
    assert (row.status, row.attempts) == ("dead", outbox.MAX_ATTEMPTS)
    assert row.last_error.startswith(
        "ConnectionRefusedError" if controller is None else "SMTPRecipientsRefused"
    )
    assert outbox.deliver(db.session, message_id, default_channels()) == "skipped"


def self_signed_context(directory) -> ssl.SSLContext:
    """A server TLS context with a certificate nobody vouches for (what a man in the middle has)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_starttls_refuses_a_certificate_it_cannot_verify(app, submit, tmp_path):
    handler = Inbox()
    controller = _serve(app, handler, tls_context=self_signed_context(tmp_path), require_starttls=True)
    app.config.update(SMTP_STARTTLS=True, SMTP_USERNAME="mailer", SMTP_PASSWORD="secret-password")
    try:
        message_id, _ = escalation(submit)
        with pytest.raises(ssl.SSLCertVerificationError):
            outbox.deliver(db.session, message_id, default_channels())
    finally:
        controller.stop()
    assert handler.envelopes == []  # neither the login nor the message went to the unverified server
    row = db.session.get(OutboxMessage, message_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("SSLCertVerificationError")


# -- who is told: the discipline-body walk (DESIGN.md §2a) -------------------------------------------


def _usernames(payload: dict) -> list[str]:
    from supervise.notify.channels import recipients

    return [u.username for u in recipients(db.session, payload)]


def _org_id(code: str) -> int:
    return db.session.scalar(select(Org.id).where(Org.code == code))


def _drop_role(username: str, role: str) -> None:
    user = db.session.scalar(select(User).where(User.username == username))
    user.set_roles(user.roles - {role})
    db.session.commit()


def test_a_body_without_a_supervisor_is_served_by_the_supervisors_of_the_body_above(app, submit, tmp_path):
    """城关镇纪委 without a supervisor account yet: its escalation notice (in-app and e-mail) reaches
    the county's supervisors, the body above it — not the township government 城关镇 it hangs below."""
    from supervise.notify.models import Notification

    app.config.update(SMTP_HOST="", DATA_DIR=str(tmp_path))
    jw = _org_id("demo-town-1-jw")
    assert _usernames({"org_id": jw, "role": "supervisor"}) == ["demo-town-1-jw-intake"]
    _drop_role("demo-town-1-jw-intake", Role.SUPERVISOR.value)  # intake only now
    assert _usernames({"org_id": jw, "role": "supervisor"}) == ["demo-supervisor"]
    assert _usernames({"org_id": jw, "role": "intake"}) == ["demo-town-1-jw-intake"]  # found at home
    # The weekly report never walks: each org's own supervisors get their own subtree's view.
    assert _usernames({"org_id": jw, "role": "supervisor", "exact_org": True}) == []
    # A 派驻组 with nobody in a role: the county above it.
    group = _org_id("demo-county-group-1")
    _drop_role("demo-group-1-intake", Role.SUPERVISOR.value)
    assert _usernames({"org_id": group, "role": "supervisor"}) == ["demo-supervisor"]

    tracking_no = submit(category="efficiency")["tracking_no"]
    case = db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))
    db.session.execute(update(User).values(email=None))
    county_supervisor = db.session.scalar(select(User).where(User.username == "demo-supervisor"))
    county_supervisor.email = SUPERVISOR_EMAIL
    payload = {"org_id": jw, "role": "supervisor", "level": 1, "clock": "response", "due_day": "2026-12-01"}
    messages = [
        outbox.queue_message(db.session, kind="escalated", channel=channel, case=case, payload=payload)
        for channel in ("inapp", "email")
    ]
    db.session.commit()
    for message_id in [m.id for m in messages]:
        assert outbox.deliver(db.session, message_id, default_channels()) == "delivered"
    told = db.session.execute(
        select(User.username, Notification.title).join(User, User.id == Notification.user_id)
    ).all()
    assert told == [("demo-supervisor", f"督办（一级）：诉求件 {tracking_no} 的答复期限已超期")]
    (written,) = (tmp_path / "mail").glob("*.eml")
    assert email.message_from_bytes(written.read_bytes(), policy=policy.default)["To"] == SUPERVISOR_EMAIL


def test_a_units_notices_are_never_walked_past_the_unit(app, demo):
    """A unit (village, township government, department) is told only through its own accounts:
    nobody above it — not its 纪委, not the township, not the county — gets what was meant for it."""
    village = _org_id("demo-town-1-village-1")
    assert _usernames({"org_id": village, "role": "leader"}) == ["demo-town-1-village-1-leader"]
    assert _usernames({"org_id": village, "role": "supervisor"}) == []  # no such role at a unit
    assert _usernames({"org_id": village, "role": "intake"}) == []
    _drop_role("demo-town-1-village-1-leader", Role.LEADER.value)
    assert _usernames({"org_id": village, "role": "leader"}) == []
    for username in ("demo-town-1-leader", "demo-dept-civil-leader"):
        user = db.session.scalar(select(User).where(User.username == username))
        user.active = False
    db.session.commit()
    assert _usernames({"org_id": _org_id("demo-town-1"), "role": "leader"}) == []
    assert _usernames({"org_id": _org_id("demo-dept-civil"), "role": "leader"}) == []
    assert _usernames({"org_id": _org_id("demo-town-1"), "role": "handler"}) == ["demo-town-1-handler"]


def test_an_sms_carries_its_row_as_the_providers_out_id(app, submit):
    """The provider's idempotency key is the row: a repeat of the same row is one SMS to them."""
    from supervise.cases.services import identity_box
    from supervise.notify.channels import LoggingSmsGateway, SmsChannel

    class Gateway(LoggingSmsGateway):
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send_once(self, phone: str, text: str, out_id: str) -> None:
            self.sent.append(out_id)

    tracking_no = submit()["tracking_no"]
    case = db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))
    case.reporter_phone_enc = identity_box().seal("13812345678")
    row = outbox.queue_message(db.session, kind="case_accepted", channel="sms", case=case)
    db.session.commit()
    gateway = Gateway()
    assert (
        outbox.deliver(db.session, row.id, {"sms": SmsChannel(gateway, identity_box())}, worker="w")
        == "delivered"
    )
    assert gateway.sent == [f"outbox-{row.id}"]
    db.session.expire_all()
    row = db.session.get(OutboxMessage, row.id)
    assert (row.status, row.claimed_by) == ("delivered", "w")  # it was claimed before the send
