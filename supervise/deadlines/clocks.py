"""The deadlines a case carries (DESIGN.md §4), computed on the working calendar.

Each clock runs `days` working days from a start day (the day itself never counts). Around its
due day sit two more moments: "due soon" from the start of the day that leaves `due_soon_days`
working days, and level-2 escalation at the end of the `level2_days`-th working day after the
due day. Level 1 is the due moment itself (23:59:59 Asia/Shanghai of the due day) passing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from supervise.deadlines.calendar import (
    DueDate,
    WorkingCalendar,
    end_of_day_utc,
    local_date,
    start_of_day_utc,
)
from supervise.deadlines.models import ESCALATING_KINDS, ClockKind

# "Overdue" means past 23:59:59 of the due day: checked from the next second on.
OVERDUE_AFTER = timedelta(seconds=1)


@dataclass(frozen=True)
class DeadlinePolicy:
    """The numbers of §4; admins change them in settings (supervise/settings.py)."""

    response_days: int = 15  # 15个工作日内答复
    stage_days: int = 5  # an org must accept, reject or transfer within this
    due_soon_days: int = 3
    auto_close_days: int = 10
    ack_days: int = 15  # 实名举报: the reporter is told of the acceptance within this
    level2_days: int = 5  # level-2 escalation this many working days after the due day
    max_extensions: int = 1  # per case, unless an admin allows more

    def days_for(self, kind: ClockKind) -> int:
        return {
            ClockKind.RESPONSE: self.response_days,
            ClockKind.REOPENED: self.response_days,
            ClockKind.STAGE: self.stage_days,
            ClockKind.ACK: self.ack_days,
            ClockKind.RATING: self.auto_close_days,
        }[kind]


@dataclass(frozen=True)
class Schedule:
    """When a clock is due, warns and escalates to level 2 (None: this clock does not)."""

    due: DueDate
    warn_from: datetime | None
    level2_from: datetime | None

    @property
    def due_at(self) -> datetime:
        return self.due.at


@dataclass(frozen=True)
class Clocks:
    calendar: WorkingCalendar
    policy: DeadlinePolicy

    def schedule(self, kind: ClockKind | str, start_day: date, days: int) -> Schedule:
        """The due moment and the warning and level-2 moments of a clock."""
        due = self.calendar.add_working_days(start_day, days)
        if ClockKind(kind) not in ESCALATING_KINDS:
            return Schedule(due, None, None)
        warn_day = self.calendar.working_days_before(due.day, self.policy.due_soon_days)
        level2 = self.calendar.add_working_days(due.day, self.policy.level2_days)
        return Schedule(due, start_of_day_utc(warn_day), end_of_day_utc(level2.day) + OVERDUE_AFTER)

    def working_days_left(self, due_at: datetime, now: datetime) -> int:
        """Working days from today to the due day (0 on the due day, negative once late)."""
        return self.calendar.working_days_between(local_date(now), local_date(due_at))

    def is_overdue(self, due_at: datetime, now: datetime) -> bool:
        return now > due_at
