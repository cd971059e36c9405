"""Supervision points: lookup by token (live or retired), reissuing a point's code, and the per-day
scan counter."""

from __future__ import annotations

from sqlalchemy import select

from supervise.dbtypes import dialect_insert, utcnow
from supervise.deadlines.calendar import local_date
from supervise.extensions import db
from supervise.intake.models import Point, PointScan, RetiredPointToken, new_point_token
from supervise.staff.models import User


def point_by_token(token: str) -> Point | None:
    return db.session.scalar(select(Point).where(Point.token == token))


def replaced_point(token: str) -> Point | None:
    """The point whose earlier code this was, when its QR code has since been reissued."""
    return db.session.scalar(
        select(Point)
        .join(RetiredPointToken, RetiredPointToken.point_id == Point.id)
        .where(RetiredPointToken.token == token)
    )


def reissue_token(point: Point, by: User | None) -> RetiredPointToken:
    """Give `point` a new random token and keep the old one as retired (the caller audits and
    commits). Cases already received keep their point; only the printed code changes."""
    retired = RetiredPointToken(token=point.token, point_id=point.id, retired_by_id=by.id if by else None)
    db.session.add(retired)
    point.token = new_point_token()
    return retired


def count_scan(point: Point) -> None:
    """One more scan today: a single upsert, safe under concurrent scans."""
    stmt = dialect_insert(db.session, PointScan).values(point_id=point.id, day=local_date(utcnow()), count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[PointScan.point_id, PointScan.day], set_={"count": PointScan.count + 1}
    )
    db.session.execute(stmt)
    db.session.commit()
