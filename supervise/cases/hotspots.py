"""Hot spots (热点): a unit complained about at least HOTSPOT_THRESHOLD times in 30 days is flagged
to the discipline body that receives its complaints.

A daily job (workers/jobs.py `flag_hot_spots`, hourly to catch up a missed night) counts each unit's
complaints received in the 30 days ending yesterday (Asia/Shanghai) and, for each unit at or over
the threshold, writes in one transaction a `HotSpot` row (unit, window end day, count) and in-app
notices to the body's intake and supervisors. A unit is not flagged again while its last flag is
less than 30 days old, unless its count has at least doubled since; a rerun of the same day writes
nothing (the row is unique per unit and day, and the rule above finds the row it wrote).

The notice is attached to the unit's newest case of the window: it opens a case page of that unit,
whose hot-spot badge lists the unit's other cases of the window the reader may see. Units never see
any of it: a count of complaints about a unit is information about its complainants (§2a).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import Date, ForeignKey, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from supervise.cases.models import Case
from supervise.cases.queries import scoped
from supervise.cases.workflow import Actor
from supervise.dbtypes import UTCDateTime, dialect_insert, utcnow
from supervise.deadlines.calendar import SHANGHAI, local_date
from supervise.extensions import db
from supervise.notify.models import OutboxMessage
from supervise.notify.outbox import enqueue_after_commit
from supervise.orgs.models import UNIT_KINDS, Org
from supervise.orgs.routing import OrgTree
from supervise.staff.models import Role

WINDOW_DAYS = 30
DEFAULT_THRESHOLD = 5
NOTICE_KIND = "hot_spot"


class HotSpot(db.Model):
    """热点: a unit flagged on a day for the complaints about it in the 30 days up to that day."""

    __tablename__ = "hot_spots"
    __table_args__ = (UniqueConstraint("org_id", "window_end", name="uq_hot_spots_org_window_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))  # the unit complained about
    body_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))  # the discipline body told
    window_end: Mapped[date] = mapped_column(Date)  # the last day counted (Asia/Shanghai)
    count: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    org: Mapped[Org] = relationship(foreign_keys=[org_id])


def threshold() -> int:
    """HOTSPOT_THRESHOLD: the admin's setting over the app config, default 5."""
    from supervise.settings import hotspot_threshold

    return hotspot_threshold(current_app.config)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


def window(window_end: date) -> tuple[datetime, datetime]:
    """The 30 days ending on `window_end`, as [start, end) instants."""
    return _midnight(window_end - timedelta(days=WINDOW_DAYS - 1)), _midnight(window_end + timedelta(days=1))


@dataclass
class Flagged:
    unit_id: int
    body_id: int
    count: int


def flag_hot_spots(now: datetime | None = None, session: Session | None = None) -> list[Flagged]:
    """The daily job's work: flag each unit at or over the threshold in the 30 days ending
    yesterday, once (see the module's docstring); commits. Returns what it flagged now."""
    session = session or db.session
    now = now or utcnow()
    window_end = local_date(now) - timedelta(days=1)
    start, end = window(window_end)
    least = threshold()
    counts = session.execute(
        select(Case.subject_org_id, func.count(Case.id))
        .join(Org, Org.id == Case.subject_org_id)
        .where(
            Case.received_at >= start,
            Case.received_at < end,
            Org.kind.in_([k.value for k in UNIT_KINDS]),
        )
        .group_by(Case.subject_org_id)
        .having(func.count(Case.id) >= least)
    ).all()
    if not counts:
        session.rollback()
        return []
    tree = OrgTree.load(session)
    flagged = []
    for unit_id, count in sorted(counts):
        last = session.execute(
            select(HotSpot.window_end, HotSpot.count)
            .where(HotSpot.org_id == unit_id)
            .order_by(HotSpot.window_end.desc())
            .limit(1)
        ).first()
        if last is not None and (window_end - last.window_end).days < WINDOW_DAYS and count < 2 * last.count:
            continue  # flagged within the last 30 days, and not twice as many since
        body_id = tree.owner_for(unit_id, about_leadership=False)
        inserted = session.execute(
            dialect_insert(session, HotSpot)
            .values(org_id=unit_id, body_id=body_id, window_end=window_end, count=count, created_at=now)
            .on_conflict_do_nothing(index_elements=["org_id", "window_end"])
            .returning(HotSpot.id)
        ).scalar()
        if inserted is None:
            continue  # another run wrote it first
        newest = session.scalar(
            select(Case.id)
            .where(Case.subject_org_id == unit_id, Case.received_at >= start, Case.received_at < end)
            .order_by(Case.received_at.desc(), Case.id.desc())
            .limit(1)
        )
        ids = session.execute(
            dialect_insert(session, OutboxMessage.__table__)
            .values(
                [
                    {
                        "kind": NOTICE_KIND,
                        "channel": "inapp",
                        "case_id": newest,
                        "payload": {"org_id": body_id, "role": role, "hot_spot_id": inserted},
                        "dedupe_key": f"hot-spot-{inserted}-{role}",
                        "status": "pending",
                        "attempts": 0,
                        "created_at": now,
                    }
                    for role in (Role.INTAKE.value, Role.SUPERVISOR.value)
                ]
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(OutboxMessage.__table__.c.id)
        ).scalars()
        enqueue_after_commit(session, list(ids))
        flagged.append(Flagged(unit_id, body_id, count))
    session.commit()
    return flagged


@dataclass
class ActiveHotSpot:
    """What a case page shows about its unit's flag: the count and the unit's cases of the window."""

    unit_name: str
    count: int
    window_end: date
    threshold: int
    cases: list[Case]


def active_for(
    case: Case, actor: Actor, now: datetime | None = None, limit: int = 10
) -> ActiveHotSpot | None:
    """The subject unit's hot spot flagged in the last 30 days, for discipline staff only; with the
    unit's cases of that window the actor may see (newest first, at most `limit`)."""
    if case.subject_org_id is None or actor.kind != "staff" or not actor.at_body:
        return None
    session = db.session
    today = local_date(now or utcnow())
    spot = session.scalar(
        select(HotSpot)
        .where(
            HotSpot.org_id == case.subject_org_id, HotSpot.window_end >= today - timedelta(days=WINDOW_DAYS)
        )
        .order_by(HotSpot.window_end.desc())
        .limit(1)
    )
    if spot is None:
        return None
    start, end = window(spot.window_end)
    others = scoped(
        session,
        select(Case).where(
            Case.subject_org_id == case.subject_org_id,
            Case.received_at >= start,
            Case.received_at < end,
            Case.id != case.id,
        ),
        actor,
    )
    cases = list(session.scalars(others.order_by(Case.received_at.desc()).limit(limit)))
    return ActiveHotSpot(spot.org.name, spot.count, spot.window_end, threshold(), cases)
