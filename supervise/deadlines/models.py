"""The holiday calendar: the exceptions to "Monday to Friday" for each year."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from supervise.dbtypes import UTCDateTime, utcnow
from supervise.extensions import db


class CalendarDay(db.Model):
    """A date that is not what its weekday says: a holiday on a weekday, or a 调休 workday."""

    __tablename__ = "calendar_days"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind_valid"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100), default="")


class CalendarYear(db.Model):
    """A year whose official schedule is loaded. Years absent here fall back to rules."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(32))  # chinesecalendar | import
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
