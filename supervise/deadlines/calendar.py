"""Working-day arithmetic (工作日) on the official Chinese calendar.

A working day is Monday to Friday, minus public holidays, plus swapped weekend workdays (调休).
The exceptions live in `calendar_days`, seeded from `chinesecalendar` and editable by admins. A
year with no official data yet (the State Council publishes each schedule in November) falls back
to Monday–Friday minus the statutory holidays computed by rule, and anything computed across it is
*provisional*.

Every working day of the covered years is precomputed into a sorted array of ordinals, so a due
date is one binary search plus an index: O(log n), whatever the number of cases.
"""

from __future__ import annotations

import csv
import io
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise import refdata
from supervise.deadlines.models import CalendarDay, CalendarYear

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Years we precompute around the ones asked about; beyond them the table grows on demand.
_MARGIN_YEARS = 3


@dataclass(frozen=True)
class DueDate:
    day: date
    provisional: bool

    @property
    def at(self) -> datetime:
        """The end of the due day, 23:59:59 Asia/Shanghai, in UTC."""
        return end_of_day_utc(self.day)


def end_of_day_utc(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=SHANGHAI).astimezone(UTC)


def start_of_day_utc(day: date) -> datetime:
    """00:00 Asia/Shanghai of `day`, in UTC."""
    return datetime.combine(day, time(0, 0), tzinfo=SHANGHAI).astimezone(UTC)


def local_date(moment: datetime) -> date:
    """The calendar day in Asia/Shanghai of an aware datetime."""
    return moment.astimezone(SHANGHAI).date()


def rule_based_holidays(year: int) -> dict[date, str]:
    """Statutory holidays of a year with no official schedule, by rule (no 调休 can be known)."""
    import holidays  # imported here: only the fallback path needs it

    try:
        return {d: str(name) for d, name in holidays.China(years=year).items()}
    except Exception:  # an unknown year must not break a deadline: Mon–Fri it is
        return {}


class WorkingCalendar:
    """Immutable view of the calendar over a range of years; extends itself when asked beyond."""

    def __init__(self, exceptions: dict[date, str], official_years: Iterable[int]):
        self._exceptions = dict(exceptions)
        self.official_years = frozenset(official_years)
        self._lock = threading.Lock()
        self._first_year = 0
        self._last_year = -1
        self._ordinals: list[int] = []
        today = datetime.now(UTC).year
        known = [*self.official_years, today]
        self._build(min(known) - 1, max(known) + _MARGIN_YEARS)

    # -- building -------------------------------------------------------------------------
    def _year_workdays(self, year: int) -> list[int]:
        if year in self.official_years:
            holidays = {d for d, k in self._exceptions.items() if d.year == year and k == "holiday"}
            workdays = {d for d, k in self._exceptions.items() if d.year == year and k == "workday"}
        else:
            holidays, workdays = set(rule_based_holidays(year)), set()
        out = []
        day = date(year, 1, 1)
        while day.year == year:
            if day in workdays or (day.weekday() < 5 and day not in holidays):
                out.append(day.toordinal())
            day += timedelta(days=1)
        return out

    def _build(self, first_year: int, last_year: int) -> None:
        first_year, last_year = max(first_year, date.min.year), min(last_year, date.max.year)
        ordinals: list[int] = []
        for year in range(first_year, last_year + 1):
            ordinals.extend(self._year_workdays(year))
        self._first_year, self._last_year, self._ordinals = first_year, last_year, ordinals

    def _cover(self, first_year: int, last_year: int) -> None:
        if first_year >= self._first_year and last_year <= self._last_year:
            return
        with self._lock:
            self._build(min(first_year, self._first_year), max(last_year, self._last_year))

    # -- questions --------------------------------------------------------------------------
    def is_working_day(self, day: date) -> bool:
        self._cover(day.year, day.year)
        i = bisect_left(self._ordinals, day.toordinal())
        return i < len(self._ordinals) and self._ordinals[i] == day.toordinal()

    def is_provisional(self, first: date, last: date) -> bool:
        return any(y not in self.official_years for y in range(first.year, last.year + 1))

    def add_working_days(self, start: date, days: int) -> DueDate:
        """The `days`-th working day after `start`; `start` itself never counts (期间开始之日不计入).

        A start on a non-working day makes the next working day day 1, which the same rule gives.
        """
        if days < 1:
            raise ValueError("days must be at least 1")
        # Enough years for any realistic count (a working year has ~250 days).
        self._cover(start.year, start.year + days // 240 + 1)
        first = bisect_right(self._ordinals, start.toordinal())
        while first + days - 1 >= len(self._ordinals):
            if self._last_year >= date.max.year:
                raise ValueError("date out of range")
            self._cover(self._first_year, self._last_year + 5)
        due = date.fromordinal(self._ordinals[first + days - 1])
        return DueDate(due, self.is_provisional(start, due))

    def working_days_before(self, day: date, days: int) -> date:
        """The working day `days` working days before `day` (`day` itself when `days` is 0).

        For a working `day` this inverts `add_working_days`; it tells when "due soon" begins.
        """
        self._cover(day.year - days // 240 - 1, day.year)
        i = bisect_left(self._ordinals, day.toordinal()) - days
        while i < 0:
            if self._first_year <= date.min.year:
                raise ValueError("date out of range")
            self._cover(self._first_year - 5, self._last_year)
            i = bisect_left(self._ordinals, day.toordinal()) - days
        return date.fromordinal(self._ordinals[i])

    def working_days_between(self, after: date, until: date) -> int:
        """Working days d with after < d <= until (negative if `until` is before `after`)."""
        if until < after:
            return -self.working_days_between(until, after)
        self._cover(after.year, until.year)
        return bisect_right(self._ordinals, until.toordinal()) - bisect_right(
            self._ordinals, after.toordinal()
        )


# -- the calendar in the database -----------------------------------------------------------


def get_calendar(session: Session) -> WorkingCalendar:
    """The working calendar as the database has it, built once per process and rebuilt when the
    calendar tables change (supervise/refdata.py)."""

    def load() -> WorkingCalendar:
        exceptions = {row.day: row.kind for row in session.scalars(select(CalendarDay))}
        return WorkingCalendar(exceptions, session.scalars(select(CalendarYear.year)).all())

    return refdata.cached("calendar", load)


def load_year(session: Session, year: int, days: dict[date, tuple[str, str]], source: str) -> None:
    """Replace a year's exceptions with `days` ({date: (kind, name)}) and mark it official."""
    if any(d.year != year for d in days):
        raise ValueError(f"every date must be in {year}")
    session.query(CalendarDay).filter(CalendarDay.day.between(date(year, 1, 1), date(year, 12, 31))).delete(
        synchronize_session=False
    )
    for day, (kind, name) in sorted(days.items()):
        session.add(CalendarDay(day=day, kind=kind, name=name))
    existing = session.get(CalendarYear, year)
    if existing:
        existing.source = source
        existing.loaded_at = datetime.now(UTC)
    else:
        session.add(CalendarYear(year=year, source=source))
    session.flush()


def seed_from_chinesecalendar(session: Session) -> list[int]:
    """Load every year `chinesecalendar` knows and we do not have yet; returns the years loaded."""
    import chinese_calendar

    by_year: dict[int, dict[date, tuple[str, str]]] = {}
    for kind, table in (("holiday", chinese_calendar.holidays), ("workday", chinese_calendar.workdays)):
        for day, name in table.items():
            by_year.setdefault(day.year, {})[day] = (kind, str(name))
    have = set(session.scalars(select(CalendarYear.year)))
    loaded = []
    for year in sorted(set(by_year) - have):
        load_year(session, year, by_year[year], source="chinesecalendar")
        loaded.append(year)
    return loaded


def parse_calendar_csv(text: str) -> dict[date, tuple[str, str]]:
    """CSV `date,kind[,name]` (kind holiday|workday) → {date: (kind, name)}, as `calendar import` reads it.

    A header row (`date,…`), blank lines and lines starting with `#` are skipped. Raises ValueError
    with a Chinese message naming the line on the first bad row. Does not check the year.
    """
    days: dict[date, tuple[str, str]] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(text.removeprefix("\ufeff"))), 1):
        if not row or row[0].strip().lower() in ("date", "") or row[0].startswith("#"):
            continue
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError:
            raise ValueError(f"第 {lineno} 行：{row[0]!r} 不是日期（应为 YYYY-MM-DD）") from None
        kind = row[1].strip().lower() if len(row) > 1 else ""
        if kind not in ("holiday", "workday"):
            raise ValueError(f"第 {lineno} 行：类型须为 holiday 或 workday，而不是 {kind!r}")
        name = row[2].strip() if len(row) > 2 else ""
        if len(name) > 100:
            raise ValueError(f"第 {lineno} 行：名称不能超过 100 个字")
        days[day] = (kind, name)
    return days
