"""Who is calling: Bearer tokens for the API (sessions for the staff UI come with its login)."""

from __future__ import annotations

from flask import Request
from flask_login import current_user

from supervise.cases.workflow import Actor
from supervise.errors import Unauthorized
from supervise.extensions import db, login_manager
from supervise.staff.models import User
from supervise.staff.services import user_for_token


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


@login_manager.request_loader
def load_user_from_bearer(request: Request) -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    user = user_for_token(db.session, token.strip())
    if user is not None:
        db.session.commit()  # last_used_at
    return user


def current_actor() -> Actor:
    """The signed-in staff member as a workflow actor, or 401."""
    if not current_user.is_authenticated:
        raise Unauthorized("需要登录或有效的 API 令牌", {"auth": ["Authorization: Bearer <token>"]})
    return Actor.staff(current_user)
