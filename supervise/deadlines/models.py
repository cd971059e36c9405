"""The holiday calendar (the exceptions to "Monday to Friday" for each year) and the case clocks."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, SmallInteger, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

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


class ClockKind(enum.StrEnum):
    """The deadlines of DESIGN.md §4, each its own clock on a case."""

    RESPONSE = "response"  # 答复期限: 15 working days from receipt
    REOPENED = "reopened"  # 重办: a fresh 15 from the reopening day
    EXTENSION = "extension"  # 延期: the response clock again, N days later
    STAGE = "stage"  # 受理/转办期限: 5 working days per org arrival
    ACK = "ack"  # 实名受理告知: a real-name reporter hears within 15 working days
    RATING = "rating"  # 评价期限: no rating within N days closes the case


# The clocks behind the promise "15个工作日内答复": only one of them runs at a time.
RESPONSE_KINDS = frozenset({ClockKind.RESPONSE, ClockKind.REOPENED, ClockKind.EXTENSION})
# Clocks that warn and escalate (the rating window only closes the case).
ESCALATING_KINDS = RESPONSE_KINDS | {ClockKind.STAGE, ClockKind.ACK}

NEXT_CHECK_PENDING = "next_check_at IS NOT NULL"


class CaseClock(db.Model):
    """One deadline of one case: when it runs out, when to warn and escalate, and what happened.

    The sweep reads only rows whose `next_check_at` has passed (a small partial index), so its
    cost follows the number of due clocks, not of cases. Each milestone is a timestamp written
    once under a row lock; `met_at` ends the clock (met, ended by the case, or superseded).
    """

    __tablename__ = "case_clocks"
    __table_args__ = (
        CheckConstraint(f"kind IN ({', '.join(repr(k.value) for k in ClockKind)})", name="kind_valid"),
        CheckConstraint("outcome IS NULL OR outcome IN ('met', 'ended', 'extended')", name="outcome_valid"),
        Index(
            "ix_case_clocks_next_check",
            "next_check_at",
            postgresql_where=text(NEXT_CHECK_PENDING),
            sqlite_where=text(NEXT_CHECK_PENDING),
        ),
        # The weekly report: answers given in a week.
        Index(
            "ix_case_clocks_met_at",
            "met_at",
            postgresql_where=text("met_at IS NOT NULL"),
            sqlite_where=text("met_at IS NOT NULL"),
        ),
        # At most one running clock of a kind on a case.
        Index(
            "uq_case_clocks_running",
            "case_id",
            "kind",
            unique=True,
            postgresql_where=text("met_at IS NULL"),
            sqlite_where=text("met_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))  # who the clock runs against
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The due day is `days` working days after `start_day`: kept so a calendar import can recompute.
    start_day: Mapped[date] = mapped_column(Date)
    days: Mapped[int]
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_provisional: Mapped[bool] = mapped_column(default=False)
    warn_from: Mapped[datetime | None] = mapped_column(UTCDateTime)  # due soon from this moment
    level2_from: Mapped[datetime | None] = mapped_column(UTCDateTime)  # level-2 escalation from here
    # Milestones reached, each written once.
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # also level-1 escalation
    level2_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))

    case = relationship("Case")

    @property
    def level(self) -> int:
        return 2 if self.level2_at else 1 if self.overdue_at else 0

    @property
    def met_late(self) -> bool | None:
        return None if self.met_at is None else self.met_at > self.due_at


class Escalation(db.Model):
    """督办: a clock ran out and the org above was told. Unique per clock and level, so a sweep
    run twice, or by two workers at once, cannot escalate twice."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("clock_id", "level", name="uq_escalations_clock_level"),
        CheckConstraint("level IN (1, 2)", name="level_valid"),
        Index("ix_escalations_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    clock_id: Mapped[int] = mapped_column(ForeignKey("case_clocks.id"))
    level: Mapped[int] = mapped_column(SmallInteger)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)  # escalated to
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
