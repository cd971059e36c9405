"""Verified phones for real-name reports: a one-time code by SMS (短信验证码).

A real-name report gets priority and an acknowledgement by SMS, so the number must be the
reporter's own: before a submission is accepted as real-name, the number proves itself with a
6-digit code sent to it, valid 5 minutes, good once, void after 5 wrong tries. Without a verified
number the case is filed anonymous (name and number not stored) and the citizen is told so.

What is stored, and why:

- The number sealed with the identity box (the delivery job decrypts it, as for a case's SMS) and a
  keyed hash of it (`phone_hash`) to find a number's codes without decrypting every row.
- No code at all: a code is derived from the row's random salt under the server's key
  (`_derive`), so the delivery job can send it and the check can compare it, while a database dump
  alone holds no code. Whoever holds the dump *and* SECRET_KEY could derive the codes of the rows
  still live (5 minutes) — the same reach as an encrypted copy, without one more column.
- Rows live one day past their expiry, for the per-number caps (counted from `created_at`), then
  each new code's transaction deletes them.

The code is never logged here; the SMS row's payload holds the row's id only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, g, has_request_context
from flask_babel import gettext as _
from limits.errors import StorageError
from redis.exceptions import RedisError
from sqlalchemy import Index, LargeBinary, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from supervise.cases.identity import IdentityBox, mask_phone, normalise_phone
from supervise.dbtypes import UTCDateTime, utcnow
from supervise.errors import InvalidInput, TooManyAttempts
from supervise.extensions import db
from supervise.i18n import N_
from supervise.notify.channels import SmsContent, sms_source
from supervise.notify.models import OutboxMessage
from supervise.notify.outbox import queue_message
from supervise.throttle import count_windows

log = logging.getLogger(__name__)

CODE_DIGITS = 6
VALID_MINUTES = 5
MAX_TRIES = 5
KEEP_AFTER_EXPIRY = timedelta(days=1)  # longer than the longest per-number window (an hour)


class PhoneVerification(db.Model):
    """One code sent to one number. Only the newest code of a number counts: a new one voids the
    earlier ones (their late SMS, if still queued, is not sent)."""

    __tablename__ = "phone_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64))
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    salt: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Tries judged so far (a try is counted before it is judged, so parallel guesses cannot pass
    # the limit); MAX_TRIES wrong ones void the code.
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_phone_verifications_phone_hash_created_at", "phone_hash", "created_at"),)

    def live(self, now: datetime) -> bool:
        return self.used_at is None and self.attempts < MAX_TRIES and now < self.expires_at


# -- keys --------------------------------------------------------------------------------------


def _secret() -> bytes:
    return current_app.config["SECRET_KEY"].encode()


def phone_hash(phone: str) -> str:
    """A keyed hash of the normalised number, with its own purpose prefix: the table cannot be
    joined to cases' reporter_hash, nor turned back into numbers without the server's key."""
    message = f"verify-phone:{normalise_phone(phone)}".encode()
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()


def _derive(salt: str) -> str:
    """The row's code: 6 digits from an HMAC of its 128-bit random salt (the bias of reducing 256
    bits mod 10⁶ is nil)."""
    digest = hmac.new(_secret(), f"phone-code:{salt}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest) % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def normalise_code(code: str | None) -> str:
    """A Chinese keyboard may type full-width digits ("１２３４５６") or spaces between groups."""
    return "".join(unicodedata.normalize("NFKC", code or "").split())


def _box() -> IdentityBox:
    return IdentityBox(current_app.config["ENCRYPTION_KEY"])


# -- sending a code ----------------------------------------------------------------------------

TOO_SOON = N_("验证码发送过于频繁，请 %(wait)s后再获取")
TOO_MANY_FROM_HERE = N_("从您所在网络获取验证码的次数过多，请 %(wait)s后再试")


@dataclass(frozen=True)
class IssuedCode:
    verification_id: int
    masked_phone: str
    resend_after: int  # seconds until this number may ask again


def _wait_words(seconds: int) -> str:
    if seconds <= 60:  # "60 秒" after a code, not "1 分钟"
        return _("%(n)s 秒", n=seconds)
    return _("%(n)s 分钟", n=-(-seconds // 60))


def _number_wait(session: Session, digest: str, now: datetime) -> int | None:
    """Seconds until this number may have another code under PHONE_CODE_LIMIT ("1/minute;5/hour"),
    or None. Counted from the table (sliding windows, exact, no Redis needed): caps that protect a
    stranger's phone from being bombarded hold even when Redis is away."""
    from supervise.intake.limits import parse_limit

    waits = []
    for item in parse_limit(current_app.config["PHONE_CODE_LIMIT"]):
        window = timedelta(seconds=item.get_expiry())
        recent = list(
            session.scalars(
                select(PhoneVerification.created_at)
                .where(PhoneVerification.phone_hash == digest, PhoneVerification.created_at > now - window)
                .order_by(PhoneVerification.created_at.desc())
                .limit(item.amount)
            )
        )
        if len(recent) >= item.amount:
            waits.append(max(1, int((recent[-1] + window - now).total_seconds() + 0.999)))
    return max(waits) if waits else None


def _address_wait(ip: str) -> int | None:
    """Per-address cap (PHONE_CODE_IP_LIMIT) in Redis: the address is never written to the
    database beside a number. Redis away: not counted (the per-number caps still hold)."""
    from supervise.intake.limits import parse_limit

    try:
        return count_windows("phone-code-ip", ip, parse_limit(current_app.config["PHONE_CODE_IP_LIMIT"]))
    except (RedisError, StorageError):
        log.warning("phone code request not counted per address: Redis unavailable")
        return None


def create_code(session: Session, phone: str, now: datetime | None = None) -> PhoneVerification:
    """A new code for `phone` and its SMS, in the session's transaction (the caller commits): the
    row and its outbox message commit together or not at all. No caps here (`request_code`)."""
    now = now or utcnow()
    digest = phone_hash(phone)
    # The number's earlier codes stop working: only the newest one is ever judged.
    session.execute(
        update(PhoneVerification)
        .where(
            PhoneVerification.phone_hash == digest,
            PhoneVerification.used_at.is_(None),
            PhoneVerification.expires_at > now,
        )
        .values(expires_at=now)
    )
    session.execute(delete(PhoneVerification).where(PhoneVerification.expires_at < now - KEEP_AFTER_EXPIRY))
    row = PhoneVerification(
        phone_hash=digest,
        phone_enc=_box().seal(normalise_phone(phone)),
        salt=secrets.token_hex(16),
        created_at=now,
        expires_at=now + timedelta(minutes=VALID_MINUTES),
    )
    session.add(row)
    session.flush()
    queue_message(session, kind="phone_code", channel="sms", payload={"verification_id": row.id})
    return row


def request_code(phone: str, ip: str, now: datetime | None = None) -> IssuedCode:
    """获取验证码: check the caps (per address, then per number), create the code, queue its SMS,
    commit. Raises TooManyAttempts (429, `retry_after` in details) with the wait in Chinese."""
    session = db.session
    now = now or utcnow()
    wait = _address_wait(ip)
    if wait is not None:
        raise _refuse(TOO_MANY_FROM_HERE, wait)
    digest = phone_hash(phone)
    wait = _number_wait(session, digest, now)
    if wait is not None:
        raise _refuse(TOO_SOON, wait)
    row = create_code(session, phone, now)
    session.commit()
    # The row's id only: neither the number nor the code enters a log line.
    log.info("phone code %s queued", row.id)
    return IssuedCode(row.id, mask_phone(normalise_phone(phone)) or "", _resend_after(session, digest, now))


def _refuse(message: str, wait: int) -> TooManyAttempts:
    if has_request_context():
        g.retry_after = wait  # the Retry-After header (intake/views.py), on the API's answer too
    return TooManyAttempts(_(message, wait=_wait_words(wait)), {"retry_after": wait})


def _resend_after(session: Session, digest: str, now: datetime) -> int:
    return _number_wait(session, digest, now) or 0


@sms_source("phone_code")
def code_sms(session: Session, message: OutboxMessage) -> SmsContent | None:
    """The SMS of a code, built at sending time. Nothing is sent for a code that was used,
    replaced, burnt or has expired by the time the job runs: a late SMS would only confuse."""
    row = session.get(PhoneVerification, (message.payload or {}).get("verification_id"))
    if row is None or not row.live(utcnow()):
        return None
    phone = _box().open(row.phone_enc)
    if not phone:
        return None
    return SmsContent(phone, "phone_code", {"code": _derive(row.salt), "minutes": str(VALID_MINUTES)})


# -- judging a submission ----------------------------------------------------------------------

# Why a submission with a name and number was filed anonymous (shown on the submitted page and
# in the API's answer as `real_name_note`).
UNVERIFIED_NOTES = {
    "missing": N_("您没有填写短信验证码"),
    "not_requested": N_("此手机号没有获取过验证码"),
    "expired": N_("验证码已过期"),
    "burnt": N_("验证码错误次数过多，已失效"),
    "used": N_("验证码已使用过"),
    "unverified": N_("没有通过验证"),  # a replayed form: the first submission's outcome stands
}
ANONYMOUS_NOTICE = N_(
    "您的手机号未验证（%(why)s），本件已按匿名反映受理：您填写的姓名和手机号没有保存，"
    "也不会收到短信通知。请保存查询编号和查询码，凭它们查询办理进度。"
)
WRONG_CODE = N_("验证码不正确，还可以再试 %(n)s 次")
BURNT_NOW = N_("验证码错误次数过多，已失效。请重新获取验证码；如不再验证而直接提交，本件将按匿名反映受理。")
CODE_FORMAT = N_("验证码为 6 位数字")


@dataclass(frozen=True)
class PhoneCheck:
    """The outcome for one submission: `verified`, or why not (a key of UNVERIFIED_NOTES); `asked`
    is whether the submission gave a name and number at all."""

    asked: bool
    verified: bool = False
    reason: str | None = None

    @property
    def note(self) -> str | None:
        """Chinese: why a real-name submission was filed anonymous, or None."""
        if not self.asked or self.verified or self.reason is None:
            return None
        return _(ANONYMOUS_NOTICE, why=_(UNVERIFIED_NOTES[self.reason]))


NOT_ASKED = PhoneCheck(asked=False)


def settle(session: Session, phone: str | None, code: str | None, now: datetime) -> PhoneCheck:
    """Judge a submission's number and code against the number's newest code.

    - right code of a live row: verified, and the row marked used *in the session's transaction*
      (the caller writes the case in it, so the code is spent exactly when the case exists);
    - wrong code of a live row: the try is committed and InvalidInput raised on `phone_code` —
      a typo is fixed in seconds, and silently dropping the real-name report the citizen was
      making would be worse than asking again;
    - anything else (no code typed, none requested, expired, burnt, used): not verified; the
      caller files the case anonymous and says why.
    """
    if not phone:
        return NOT_ASKED
    typed = normalise_code(code)
    if not typed:
        return PhoneCheck(asked=True, reason="missing")
    if len(typed) != CODE_DIGITS or not typed.isascii() or not typed.isdigit():
        raise InvalidInput(_(CODE_FORMAT), {"phone_code": [_(CODE_FORMAT)]})
    row = session.scalar(
        select(PhoneVerification)
        .where(PhoneVerification.phone_hash == phone_hash(phone))
        .order_by(PhoneVerification.created_at.desc(), PhoneVerification.id.desc())
        .limit(1)
    )
    if row is None:
        return PhoneCheck(asked=True, reason="not_requested")
    reason = _dead_reason(row, now)
    if reason:
        return PhoneCheck(asked=True, reason=reason)
    # Count the try before judging it, in its own commit: parallel guesses each need a try of
    # their own, so no more than MAX_TRIES are ever judged.
    counted = session.execute(
        update(PhoneVerification)
        .where(
            PhoneVerification.id == row.id,
            PhoneVerification.attempts < MAX_TRIES,
            PhoneVerification.used_at.is_(None),
        )
        .values(attempts=PhoneVerification.attempts + 1)
    ).rowcount
    session.commit()
    session.refresh(row)
    if not counted:
        return PhoneCheck(asked=True, reason=_dead_reason(row, now) or "burnt")
    if not hmac.compare_digest(_derive(row.salt), typed):
        left = MAX_TRIES - row.attempts
        message = _(BURNT_NOW) if left <= 0 else _(WRONG_CODE, n=left)
        raise InvalidInput(message, {"phone_code": [message]})
    # Spent with the case (the caller's commit); a concurrent submission that got here first wins.
    spent = session.execute(
        update(PhoneVerification)
        .where(PhoneVerification.id == row.id, PhoneVerification.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if not spent:
        return PhoneCheck(asked=True, reason="used")
    return PhoneCheck(asked=True, verified=True)


def _dead_reason(row: PhoneVerification, now: datetime) -> str | None:
    if row.used_at is not None:
        return "used"
    if row.attempts >= MAX_TRIES:
        return "burnt"
    if now >= row.expires_at:
        return "expired"
    return None


def anonymous_data(data: dict) -> dict:
    """The submission without the identity it could not verify."""
    return {**data, "name": None, "phone": None}
