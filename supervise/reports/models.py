"""Stored weekly reports, and the claim a periodic job makes on its period before doing work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from supervise.dbtypes import UTCDateTime, utcnow
from supervise.extensions import db


class WeeklyReport(db.Model):
    """One build of a week's report: figures frozen at build time, so later edits to cases do not
    change last week's numbers. Rebuilding adds a version; the old one stays."""

    __tablename__ = "weekly_reports"
    __table_args__ = (UniqueConstraint("week", "version", name="uq_weekly_reports_week_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(8))  # ISO week, "2026-W47"
    version: Mapped[int] = mapped_column(default=1)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    built_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the weekly job
    reason: Mapped[str | None] = mapped_column(String(200))  # why it was rebuilt
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


@event.listens_for(WeeklyReport, "before_update")
def _reports_are_immutable(mapper, connection, target: WeeklyReport) -> None:
    raise RuntimeError("a stored weekly report never changes: rebuild it as a new version")


class PeriodicRun(db.Model):
    """A periodic job's claim on one period (DESIGN.md §5): RQ's cron has no leader lock and skips
    what it missed, so each job inserts (job, period) before working and catches up what is absent."""

    __tablename__ = "periodic_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def claim_period(session, job: str, period: str) -> bool:
    """Insert (job, period) unless a run has claimed it: True for the one caller that may work."""
    from supervise.dbtypes import dialect_insert

    inserted = session.execute(
        dialect_insert(session, PeriodicRun)
        .values(job=job, period=period)
        .on_conflict_do_nothing()
        .returning(PeriodicRun.period)
    ).scalar()
    return inserted is not None
