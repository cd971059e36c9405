"""The monthly summary table behind the statistics (统计分析).

One row per (month received, subject unit, owning body, category, channel, 定性) holding additive
counts, so any period, grouping or subtree is a SUM over a few thousand rows instead of a scan of
every case. The workers rebuild a month whenever one of its cases changed (stats/services.refresh).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from supervise.extensions import db

# The additive figures of one row, in the order the refresh's INSERT … SELECT writes them.
COUNT_COLUMNS = (
    "received",
    "answered",
    "answered_on_time",
    "answer_working_days",
    "rated",
    "satisfied",
    "basically_satisfied",
    "unsatisfied",
    "reopened",
    "escalated",
)


class StatsMonthly(db.Model):
    """Counts of the cases received in one month (Asia/Shanghai) with the same dimensions.

    `subject_org_id` is the unit complained about (被反映单位), or the owning body when the case
    names none; `kind` is '' while a case is not yet classified (定性). `answer_working_days` is
    the sum, over the answered cases, of working days from receipt to the first answer.
    """

    __tablename__ = "stats_monthly"
    __table_args__ = (
        UniqueConstraint(
            "month",
            "subject_org_id",
            "owner_org_id",
            "category_id",
            "channel",
            "kind",
            name="uq_stats_monthly_dimensions",
        ),
        Index("ix_stats_monthly_subject_month", "subject_org_id", "month"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(Date)  # the first day of the month received
    subject_org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(20))
    received: Mapped[int] = mapped_column(default=0)
    answered: Mapped[int] = mapped_column(default=0)
    answered_on_time: Mapped[int] = mapped_column(default=0)
    answer_working_days: Mapped[int] = mapped_column(default=0)
    rated: Mapped[int] = mapped_column(default=0)
    satisfied: Mapped[int] = mapped_column(default=0)
    basically_satisfied: Mapped[int] = mapped_column(default=0)
    unsatisfied: Mapped[int] = mapped_column(default=0)
    reopened: Mapped[int] = mapped_column(default=0)
    escalated: Mapped[int] = mapped_column(default=0)
