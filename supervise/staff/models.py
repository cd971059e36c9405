"""Staff accounts and API tokens."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.dbtypes import UTCDateTime, utcnow
from supervise.extensions import db
from supervise.orgs.models import Org


class Role(enum.StrEnum):
    INTAKE = "intake"  # 受理员 (discipline bodies)
    HANDLER = "handler"  # 承办人 (bodies and units)
    SUPERVISOR = "supervisor"  # 督办 / 审核 (discipline bodies)
    LEADER = "leader"  # 单位负责人 (units): assigns inside the unit
    ADMIN = "admin"


# Which roles make sense where (DESIGN.md §2a): intake and review are a discipline body's work.
BODY_ROLES = frozenset({Role.INTAKE, Role.HANDLER, Role.SUPERVISOR, Role.ADMIN})
UNIT_ROLES = frozenset({Role.LEADER, Role.HANDLER, Role.ADMIN})
ROLE_ORDER = (Role.INTAKE, Role.HANDLER, Role.SUPERVISOR, Role.LEADER, Role.ADMIN)


class UserRole(db.Model):
    """One role a user holds in their org; a small office's one person may hold several."""

    __tablename__ = "user_roles"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r.value) for r in Role)})", name="role_valid"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254))  # escalations and weekly reports
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    # A password someone else chose (an admin's new account or reset, an import) is one-time:
    # every staff page leads to 修改密码 until the person sets their own.
    password_must_change: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    org: Mapped[Org] = relationship()
    role_rows: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    # Two-factor sign-in (supervise/staff/twofactor): None until the person starts setting it up.
    two_factor: Mapped[TwoFactor | None] = relationship(back_populates="user", uselist=False)

    # Set when a session is loaded or started: Flask-Login keeps get_id() in the cookie, and that
    # must be the revocable server-side session token, never the user id.
    session_token = None  # not a column: no annotation, so the ORM leaves it alone

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    def get_id(self) -> str | None:
        return self.session_token

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(row.role for row in self.role_rows)

    @property
    def role_list(self) -> list[str]:
        """The roles in a stable order, for display."""
        return [r.value for r in ROLE_ORDER if r.value in self.roles]

    def has_role(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)

    def set_roles(self, roles: Iterable[str]) -> None:
        wanted = set(roles)
        self.role_rows = [row for row in self.role_rows if row.role in wanted] + [
            UserRole(role=role) for role in sorted(wanted - self.roles)
        ]

    @classmethod
    def holding(cls, *roles: str) -> ColumnElement[bool]:
        """SQL: the user holds one of `roles`."""
        return cls.id.in_(select(UserRole.user_id).where(UserRole.role.in_(roles)))

    def __repr__(self) -> str:
        return f"<User {self.username} {','.join(self.role_list)}@{self.org_id}>"


class TwoFactor(db.Model):
    """A staff member's TOTP secret (Fernet-sealed like a reporter's identity), in a table of its
    own rather than columns of `users`: every sign-in writes `last_step`, and any write to `users`
    makes every process reload its reference data (supervise/refdata.py)."""

    __tablename__ = "two_factor"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A secret being set up (a first phone, or a new one): it replaces `secret_enc` only once a
    # code from it is confirmed, so a half-done change never locks anyone out.
    pending_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last 30-second time step a code was accepted for: a code seen once is refused after.
    last_step: Mapped[int | None] = mapped_column()

    user: Mapped[User] = relationship(back_populates="two_factor")


class RecoveryCode(db.Model):
    """One of a staff member's ten recovery codes (for a lost phone), stored as an HMAC only and
    usable once."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored. Named so its owner and the
    admins can tell tokens apart, expiring, revocable, and ended by a password change."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
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
