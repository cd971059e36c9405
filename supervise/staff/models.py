"""Staff accounts and API tokens."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.dbtypes import UTCDateTime, utcnow
from supervise.extensions import db
from supervise.orgs.models import Org


class Role(enum.StrEnum):
    INTAKE = "intake"  # 受理员
    HANDLER = "handler"  # 承办人
    SUPERVISOR = "supervisor"  # 督办 / 领导
    ADMIN = "admin"


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('intake', 'handler', 'supervisor', 'admin')", name="role_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254))  # escalations and weekly reports
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    org: Mapped[Org] = relationship()

    # Set when a session is loaded or started: Flask-Login keeps get_id() in the cookie, and that
    # must be the revocable server-side session token, never the user id.
    session_token = None  # not a column: no annotation, so the ORM leaves it alone

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    def get_id(self) -> str | None:
        return self.session_token

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}@{self.org_id}>"


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class StaffSession(db.Model):
    """A signed-in browser. The cookie holds only `token`; revoking the row ends the session on the
    server (logout, password change, a disabled account), whatever the browser still holds."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship()


class AuditEntry(db.Model):
    """Who did what, when: logins, refusals, identity views, staff actions, admin changes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    username: Mapped[str | None] = mapped_column(String(64))  # as typed, for failed logins
    action: Mapped[str] = mapped_column(String(32), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    user: Mapped[User | None] = relationship()


class ReplyTemplate(db.Model):
    """常用回复: a reusable feedback text of one org."""

    __tablename__ = "reply_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
