"""How a citizen's browser holds a case open without the access code travelling in a URL.

Two ways in besides typing both codes at /track:

- **SMS links** (`/t/<token>`): a random 256-bit token, kept only as its SHA-256, single use,
  expiring after `CASE_LINK_DAYS` (7). Redeeming it needs a POST (a button on the page the link
  opens), because SMS apps and WeChat fetch links to draw previews: a GET must not spend it.
- **A short grant in the signed session cookie** (`case_grant`), written after a link is redeemed
  or after the citizen rated or added material, so that the page after the redirect
  (post/redirect/get) can show the case. It names the case, never holds the access code, and
  lasts `GRANT_MINUTES`: a shared phone does not keep a case open for long.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timedelta

from cryptography.fernet import InvalidToken
from flask import current_app, session
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from supervise.cases import services, workflow
from supervise.cases.models import Case
from supervise.cases.states import Rating
from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.intake.models import CaseLink
from supervise.intake.uploads import store_photos

LINK_DAYS = 7
GRANT_MINUTES = 30
GRANT_KEY = "case_grant"
RECEIPT_KEY = "receipt"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_link(session_: Session, case: Case, now: datetime | None = None, nbytes: int = 32) -> str:
    """A fresh one-time token for `case` (added to `session_`, committed by the caller). An SMS
    sent as a provider template passes 24 bytes (32 characters, still 192 bits): the token is a
    template variable there, and Aliyun's variables hold at most 35 characters (notify/sms.py)."""
    now = now or utcnow()
    days = current_app.config.get("CASE_LINK_DAYS", LINK_DAYS)
    token = secrets.token_urlsafe(nbytes)
    session_.add(
        CaseLink(
            case_id=case.id, token_hash=_digest(token), created_at=now, expires_at=now + timedelta(days=days)
        )
    )
    return token


def link_url(token: str) -> str:
    return f"{current_app.config['BASE_URL'].rstrip('/')}/t/{token}"


def link_is_live(token: str, now: datetime | None = None) -> bool:
    now = now or utcnow()
    link = db.session.scalar(select(CaseLink).where(CaseLink.token_hash == _digest(token)))
    return link is not None and link.used_at is None and link.expires_at > now


def redeem(token: str, now: datetime | None = None) -> Case | None:
    """Spend a link: the case it opens, or None when unknown, used or expired.

    One conditional UPDATE: of two taps at once, exactly one wins."""
    now = now or utcnow()
    digest = _digest(token)
    spent = db.session.execute(
        update(CaseLink)
        .where(CaseLink.token_hash == digest, CaseLink.used_at.is_(None), CaseLink.expires_at > now)
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        db.session.rollback()
        return None
    case_id = db.session.scalar(select(CaseLink.case_id).where(CaseLink.token_hash == digest))
    db.session.commit()
    return db.session.get(Case, case_id)


def grant(case: Case) -> None:
    session[GRANT_KEY] = {"no": case.tracking_no, "until": int(time.time()) + GRANT_MINUTES * 60}


def granted_case(tracking_no: str | None = None) -> Case | None:
    """The case this browser was granted (and, if given, only if it is `tracking_no`)."""
    held = session.get(GRANT_KEY)
    if not isinstance(held, dict) or held.get("until", 0) < time.time():
        session.pop(GRANT_KEY, None)
        return None
    if tracking_no is not None and tracking_no.strip().upper() != held.get("no"):
        return None
    return workflow.find_case(db.session, held.get("no", ""))


def forget_grant() -> None:
    session.pop(GRANT_KEY, None)


def keep_receipt(case: Case, access_code: str) -> None:
    """The submitted page's one showing of the codes: read once by `take_receipt`, then gone.

    The session cookie is signed, not secret: the code rides in it encrypted (the identity key),
    for the one redirect between the form and the page showing it."""
    sealed = services.identity_box().seal(access_code).decode()
    session[RECEIPT_KEY] = {"no": case.tracking_no, "code": sealed}


def take_receipt() -> tuple[Case | None, str | None]:
    held = session.pop(RECEIPT_KEY, None)
    if not isinstance(held, dict):
        return None, None
    try:
        code = services.identity_box().open(str(held.get("code", "")).encode())
    except InvalidToken:  # a cookie from before a key rotation: the codes are simply not shown again
        return None, None
    return workflow.find_case(db.session, held.get("no", "")), code


def rate(case: Case, rating: str, comment: str | None) -> Case:
    """评价 on a case this browser holds a grant for (services.rate_case, without the code)."""
    workflow.rate(services.make_context(), case, rating=Rating(rating), comment=comment)
    services.commit()
    return case


def supplement(case: Case, text: str, photos: list[bytes]) -> Case:
    """补充材料 on a case this browser holds a grant for (services.add_supplement, without the code)."""
    images = store_photos(services.upload_store(), list(photos))
    event = workflow.supplement(services.make_context(), case, text=text)
    services._attach(case, event, images)  # the same rows and thumbnail jobs as add_supplement
    services.commit()
    return case
