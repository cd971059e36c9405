"""Staff accounts and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from supervise.dbtypes import utcnow
from supervise.errors import InvalidInput
from supervise.orgs.models import Org
from supervise.staff.models import ApiToken, Role, User


def create_user(
    session: Session,
    *,
    username: str,
    org: Org,
    role: Role | str,
    password: str | None = None,
    display_name: str = "",
) -> tuple[User, str]:
    """Create an account; returns it with its password (generated when none is given)."""
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"unknown role {role!r}", {"role": [f"one of {', '.join(r.value for r in Role)}"]})
    if session.scalar(select(User.id).where(User.username == username)):
        raise InvalidInput(f"user {username!r} exists", {"username": ["already taken"]})
    password = password or secrets.token_urlsafe(12)
    user = User(
        username=username,
        org=org,
        role=str(role),
        display_name=display_name or username,
        password_hash=generate_password_hash(password, current_app.config["PASSWORD_HASH_METHOD"]),
    )
    session.add(user)
    session.flush()
    return user, password


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User) -> str:
    """A new bearer token for the JSON API, shown once; only its hash is kept."""
    token = "sv_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user=user, token_hash=_token_hash(token)))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or not row.user.active:
        return None
    now = utcnow()
    # A write per API call would cost more than the call; a minute's precision is plenty.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
    return row.user
