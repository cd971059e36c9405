"""TOTP secrets, codes and recovery codes.

A secret is sealed with the identity box (Fernet, ENCRYPTION_KEY) and never logged or audited. A
code is accepted for the current 30-second step or one either side (a phone's clock drifts), and
each step once only: accepting a code stores its step, and a code of that step or an earlier one is
refused after, so a code read over someone's shoulder cannot be replayed. Recovery codes are kept as
HMAC-SHA256 under SECRET_KEY (they are random, so a slow password hash adds nothing but the cost of
checking ten of them at each use); rotating SECRET_KEY invalidates them, as it does access codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable

import pyotp
from flask import current_app
from sqlalchemy import delete, func, or_, select, update

from supervise.cases.services import identity_box
from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.intake.qr import qr_svg
from supervise.settings import two_factor_required_roles
from supervise.staff import audit
from supervise.staff.models import ROLE_ORDER, RecoveryCode, TwoFactor, User

ISSUER = "码上监督"
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: the codes are read off paper and typed by hand.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10  # 31^10 ≈ 2^49.5: out of reach of the sign-in budgets
_DIGITS = re.compile(r"^\d{6}$")


# -- who must use it ----------------------------------------------------------------------------------


def required_roles() -> frozenset[str]:
    return two_factor_required_roles(current_app.config)


def parse_roles(value: str | Iterable[str]) -> list[str]:
    """Role values from a comma-separated string or a list, in the usual order; ValueError names
    the unknown ones."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    wanted = {p.strip() for p in parts if p.strip()}
    known = [r.value for r in ROLE_ORDER]
    unknown = sorted(wanted - set(known))
    if unknown:
        raise ValueError(", ".join(unknown))
    return [r for r in known if r in wanted]


def is_enabled(user: User) -> bool:
    return user.two_factor is not None and user.two_factor.enabled_at is not None


def enabled_among(user_ids: list[int]) -> set[int]:
    """Which of these users have two-factor sign-in on (one query, for a list page)."""
    if not user_ids:
        return set()
    rows = select(TwoFactor.user_id).where(TwoFactor.user_id.in_(user_ids), TwoFactor.enabled_at.is_not(None))
    return set(db.session.scalars(rows))


def is_required(user: User) -> bool:
    return user.has_role(*required_roles())


def must_enrol(user: User) -> bool:
    """A person whose role requires a second factor and who has none yet: every page but the
    enrolment page (and 修改密码) leads there."""
    return not is_enabled(user) and is_required(user)


# -- enrolment ----------------------------------------------------------------------------------------


def _row(user: User) -> TwoFactor:
    if user.two_factor is None:
        user.two_factor = TwoFactor(user_id=user.id)
        db.session.add(user.two_factor)
    return user.two_factor


def begin_enrolment(user: User) -> None:
    """A new secret waiting for its first code (a first phone, or a new phone replacing the old one,
    which keeps working until the new one is confirmed). The caller commits."""
    _row(user).pending_enc = identity_box().seal(pyotp.random_base32())


def pending_secret(user: User) -> str | None:
    row = user.two_factor
    return identity_box().open(row.pending_enc) if row is not None and row.pending_enc else None


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app scans: issuer 码上监督, account the username."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The QR code of `uri` as an SVG data: URI (an <img> the CSP allows; nothing is fetched)."""
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(uri)).decode("ascii")


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def confirm_enrolment(user: User, code: str) -> list[str] | None:
    """Turn the pending secret on if `code` is one of its codes: new recovery codes (returned, to be
    shown once), audited. None when the code is wrong. The caller commits."""
    secret = pending_secret(user)
    step = _matching_step(secret, code) if secret else None
    if step is None:
        return None
    row = _row(user)
    replacing = row.enabled_at is not None
    row.secret_enc, row.pending_enc, row.enabled_at, row.last_step = row.pending_enc, None, utcnow(), step
    codes = _new_recovery_codes(user)
    audit.record("2fa_enrolled", user=user, detail={"what": "new_device" if replacing else "enabled"})
    return codes


def regenerate_recovery_codes(user: User) -> list[str]:
    """Ten new codes; the old ones stop working. Audited. The caller commits."""
    codes = _new_recovery_codes(user)
    audit.record("2fa_codes_renewed", user=user)
    return codes


def reset(user: User) -> None:
    """Forget the secret and the recovery codes (an admin's reset of a lost phone): the person sets
    it up again at their next sign-in if their role requires it. The caller audits and commits."""
    if user.two_factor is not None:
        db.session.delete(user.two_factor)
        user.two_factor = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def recovery_codes_left(user: User) -> int:
    unused = (RecoveryCode.user_id == user.id) & RecoveryCode.used_at.is_(None)
    return db.session.scalar(select(func.count(RecoveryCode.id)).where(unused))


# -- checking a code at sign-in -----------------------------------------------------------------------


def verify(user: User, code: str) -> str | None:
    """Judge the second step: "totp" or "recovery" when `code` is right (and now spent), else None.

    Six digits are a TOTP code; anything else is tried as a recovery code. The caller commits."""
    if not is_enabled(user):
        return None
    cleaned = re.sub(r"[\s-]", "", code or "")
    if _DIGITS.match(cleaned):
        step = _matching_step(identity_box().open(user.two_factor.secret_enc), cleaned)
        return "totp" if step is not None and _claim_step(user, step) else None
    if _use_recovery_code(user, cleaned.lower()):
        audit.record("2fa_recovery_used", user=user, detail={"left": recovery_codes_left(user)})
        return "recovery"
    return None


def _matching_step(secret: str, code: str) -> int | None:
    """The time step (now, or one either side) whose code is `code`, or None."""
    code = re.sub(r"\s", "", code or "")
    if not _DIGITS.match(code):
        return None
    totp, now = pyotp.TOTP(secret), int(time.time()) // 30
    found = None
    for step in (now - 1, now, now + 1):  # every step compared: no timing hint of which matched
        if hmac.compare_digest(totp.at(step * 30), code):
            found = step
    return found


def _claim_step(user: User, step: int) -> bool:
    """Record `step` as used unless it (or a later one) already was: one conditional UPDATE, so two
    requests racing with the same code cannot both win."""
    claimed = db.session.execute(
        update(TwoFactor)
        .where(
            TwoFactor.user_id == user.id,
            or_(TwoFactor.last_step.is_(None), TwoFactor.last_step < step),
        )
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def _recovery_hash(user_id: int, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"recovery:{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(user.id, raw)))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def _use_recovery_code(user: User, code: str) -> bool:
    if not code or len(code) > 64:
        return False
    used = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_hash(user.id, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return used.rowcount == 1
