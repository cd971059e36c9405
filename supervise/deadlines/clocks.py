"""The deadlines a case carries (DESIGN.md §4), computed on the working calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from supervise.deadlines.calendar import DueDate, WorkingCalendar, local_date


@dataclass(frozen=True)
class DeadlinePolicy:
    response_days: int = 15  # 15个工作日内答复
    stage_days: int = 5  # an org must accept, reject or transfer within this
    due_soon_days: int = 3
    auto_close_days: int = 10


@dataclass(frozen=True)
class Clocks:
    calendar: WorkingCalendar
    policy: DeadlinePolicy

    def response_due(self, start: datetime) -> DueDate:
        """Due date of a response clock started at `start` (receipt or reopening)."""
        return self.calendar.add_working_days(local_date(start), self.policy.response_days)

    def stage_due(self, arrived: datetime) -> DueDate:
        return self.calendar.add_working_days(local_date(arrived), self.policy.stage_days)

    def extended(self, due_at: datetime, days: int) -> DueDate:
        return self.calendar.add_working_days(local_date(due_at), days)

    def working_days_left(self, due_at: datetime, now: datetime) -> int:
        """Working days from today to the due day (0 on the due day, negative once late)."""
        return self.calendar.working_days_between(local_date(now), local_date(due_at))

    def is_overdue(self, due_at: datetime, now: datetime) -> bool:
        return now > due_at

    def is_due_soon(self, due_at: datetime, now: datetime) -> bool:
        return (
            not self.is_overdue(due_at, now)
            and self.working_days_left(due_at, now) <= self.policy.due_soon_days
        )
