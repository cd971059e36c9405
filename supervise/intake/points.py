"""Supervision points: lookup by token and the per-day scan counter."""

from __future__ import annotations

from sqlalchemy import select

from supervise.dbtypes import dialect_insert, utcnow
from supervise.deadlines.calendar import local_date
from supervise.extensions import db
from supervise.intake.models import Point, PointScan


def point_by_token(token: str) -> Point | None:
    return db.session.scalar(select(Point).where(Point.token == token))


def count_scan(point: Point) -> None:
    """One more scan today: a single upsert, safe under concurrent scans."""
    stmt = dialect_insert(db.session, PointScan).values(point_id=point.id, day=local_date(utcnow()), count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[PointScan.point_id, PointScan.day], set_={"count": PointScan.count + 1}
    )
    db.session.execute(stmt)
    db.session.commit()
