"""Staff accounts and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import generate_password_hash

from supervise.dbtypes import utcnow
from supervise.errors import InvalidInput
from supervise.i18n import N_
from supervise.orgs.models import Org
from supervise.staff.models import BODY_ROLES, ROLE_ORDER, UNIT_ROLES, ApiToken, Role, User

ROLE_LABELS = {
    "intake": N_("受理员"),
    "handler": N_("承办人"),
    "supervisor": N_("督办/审核"),
    "leader": N_("单位负责人"),
    "admin": N_("管理员"),
}


def parse_roles(role: str | Iterable[str]) -> list[str]:
    """`"intake,supervisor"` or a list → the roles, each checked to exist."""
    roles = [r.strip() for r in (role.split(",") if isinstance(role, str) else role) if r and r.strip()]
    unknown = [r for r in roles if r not in {x.value for x in Role}]
    if not roles or unknown:
        message = f"unknown role {', '.join(unknown) or '(none)'}: one of {', '.join(r.value for r in Role)}"
        raise InvalidInput(message, {"role": [message]})
    return sorted(set(roles), key=[r.value for r in ROLE_ORDER].index)


def check_roles_fit(org: Org, roles: Iterable[str]) -> None:
    """Intake and review belong to discipline bodies, a leader to a unit (DESIGN.md §2a)."""
    allowed = BODY_ROLES if org.is_body else UNIT_ROLES
    wrong = [r for r in roles if r not in allowed]
    if wrong:
        where = "纪检监察机构" if org.is_body else "单位（非纪检监察机构）"
        labels = "、".join(ROLE_LABELS.get(r, r) for r in wrong)
        message = f"{where}的账号不能担任：{labels}"
        raise InvalidInput(message, {"role": [message]})


def create_user(
    session: Session,
    *,
    username: str,
    org: Org,
    role: str | Iterable[str],
    password: str | None = None,
    display_name: str = "",
    must_change: bool = False,
) -> tuple[User, str]:
    """Create an account with one role or several (`"intake,supervisor"`: a small office's one
    person); returns it with its password (generated when none is given). `must_change`: the
    password is one-time, to be replaced at the first sign-in."""
    roles = parse_roles(role)
    check_roles_fit(org, roles)
    if session.scalar(select(User.id).where(User.username == username)):
        raise InvalidInput(f"user {username!r} exists", {"username": ["already taken"]})
    password = password or secrets.token_urlsafe(12)
    user = User(
        username=username,
        org=org,
        display_name=display_name or username,
        password_hash=generate_password_hash(password, current_app.config["PASSWORD_HASH_METHOD"]),
        password_must_change=must_change,
    )
    user.set_roles(roles)
    session.add(user)
    session.flush()
    return user, password


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKEN_DAYS = 90
MIN_PASSWORD = 12
# The most common passwords and the obvious ones of this system: refused whatever their length.
COMMON_PASSWORDS = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "common_passwords.txt").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)


def check_password_policy(password: str, username: str = "") -> None:
    """At least 12 characters, not a common password, not the username (InvalidInput otherwise)."""
    lowered = password.lower()
    if len(password) < MIN_PASSWORD:
        message = f"密码至少 {MIN_PASSWORD} 位"
    elif lowered in COMMON_PASSWORDS or (username and username.lower() in lowered) or len(set(password)) < 4:
        message = N_("密码过于常见或容易猜到，请换一个")
    else:
        return
    raise InvalidInput(message, {"password": [message]})


def issue_token(session: Session, user: User, name: str = "", days: int | None = TOKEN_DAYS) -> str:
    """A new bearer token for the JSON API, shown once; only its hash is kept. It expires after
    `days` (None: never, for an integration an admin chose to keep)."""
    token = "sv_" + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(days=days) if days else None
    session.add(ApiToken(user=user, token_hash=_token_hash(token), name=name[:100], expires_at=expires))
    session.flush()
    return token


def active_tokens(session: Session, user: User) -> list[ApiToken]:
    now = utcnow()
    return list(
        session.scalars(
            select(ApiToken)
            .where(
                ApiToken.user_id == user.id,
                ApiToken.revoked_at.is_(None),
                (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
            )
            .order_by(ApiToken.id)
        )
    )


def revoke_tokens(session: Session, user: User, token_id: int | None = None) -> int:
    """Revoke one of the user's tokens, or all of them (a password change, a disabled account)."""
    count = 0
    for token in active_tokens(session, user):
        if token_id is None or token.id == token_id:
            token.revoked_at = utcnow()
            count += 1
    return count


def user_for_token(session: Session, token: str) -> User | None:
    # The person and their org in the same round trip: every API call asks for both (Actor.staff).
    row = session.scalar(
        select(ApiToken)
        .where(ApiToken.token_hash == _token_hash(token), ApiToken.revoked_at.is_(None))
        .options(joinedload(ApiToken.user).joinedload(User.org))
    )
    now = utcnow()
    if row is None or not row.user.active or (row.expires_at is not None and row.expires_at <= now):
        return None
    # A write per API call would cost more than the call; a minute's precision is plenty.
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
    return row.user
