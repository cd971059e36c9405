"""Supervision points (监督点 / 码): places with a printed QR code."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.dbtypes import UTCDateTime, utcnow
from supervise.extensions import db
from supervise.orgs.models import Org

if TYPE_CHECKING:
    from supervise.staff.models import User


def new_point_token() -> str:
    # 128 random bits: a printed code must not let anyone enumerate the others.
    return secrets.token_urlsafe(16)


class Point(db.Model):
    __tablename__ = "points"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_point_token)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    org: Mapped[Org] = relationship()


class RetiredPointToken(db.Model):
    """A point's earlier QR token, kept when its code was reissued (重新生成二维码).

    The old sticker then opens a page saying 此码已更换, with the place's name and a link to the
    point's current form; it never takes a complaint itself. The token stays unique across live and
    retired codes (128 random bits each), so an old sticker always names exactly one point.
    """

    __tablename__ = "retired_point_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("points.id"), index=True)
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Nullable: a reissue from the command line or an import has no signed-in admin.
    retired_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    point: Mapped[Point] = relationship()
    retired_by: Mapped[User | None] = relationship()


class PointScan(db.Model):
    """How often a point's QR code was opened, per day (Asia/Shanghai)."""

    __tablename__ = "point_scans"

    point_id: Mapped[int] = mapped_column(ForeignKey("points.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class CaseLink(db.Model):
    """A one-time link sent by SMS that opens a case's tracking page without typing both codes.

    Only the SHA-256 of the token is kept: a database dump holds no working link. The access code
    itself never enters a URL; the link is a separate, single-use, expiring key.
    """

    __tablename__ = "case_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
