"""Working days on the official calendar (DESIGN.md §4)."""

from datetime import UTC, date, datetime

import pytest

from supervise.deadlines.calendar import WorkingCalendar, end_of_day_utc, get_calendar
from supervise.extensions import db


@pytest.fixture
def cal(app):
    return get_calendar(db.session)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # National Day 2026 (Oct 1–7 off) skipped, the swapped Saturday Oct 10 counted.
        (date(2026, 9, 28), date(2026, 10, 23)),
        # Received on a Sunday: counting starts on Monday Sep 28.
        (date(2026, 9, 27), date(2026, 10, 22)),
        # Spring Festival 2026: Feb 15–23 off; Sat Feb 14 and Sat Feb 28 are workdays.
        (date(2026, 2, 10), date(2026, 3, 9)),
        # A plain stretch: Mon 2026-06-01 → Mon 2026-06-22 (Dragon Boat Jun 19 off).
        (date(2026, 6, 1), date(2026, 6, 23)),
    ],
)
def test_response_due_dates(cal, received, due):
    result = cal.add_working_days(received, 15)
    assert result.day == due
    assert result.provisional is False


def test_swapped_saturday_is_a_working_day_and_holiday_is_not(cal):
    assert cal.is_working_day(date(2026, 10, 10))  # Saturday, 调休
    assert not cal.is_working_day(date(2026, 10, 5))  # Monday, National Day
    assert not cal.is_working_day(date(2026, 10, 11))  # plain Sunday


def test_year_without_official_data_falls_back_and_is_provisional(cal):
    # A far year, so the test holds when chinesecalendar publishes the next one.
    assert 2099 not in cal.official_years
    result = cal.add_working_days(date(2098, 12, 20), 15)  # a Saturday
    assert result.provisional is True
    # Rule-based: New Year's Day 2099 (a Thursday) is off.
    assert not cal.is_working_day(date(2099, 1, 1))
    assert result.day == date(2099, 1, 12)


def test_never_crashes_on_a_far_date(cal):
    assert cal.add_working_days(date(2999, 6, 1), 15).provisional
    assert cal.add_working_days(date(1990, 1, 1), 15).day.year == 1990


def test_working_days_between(cal):
    assert cal.working_days_between(date(2026, 9, 28), date(2026, 10, 23)) == 15
    assert cal.working_days_between(date(2026, 10, 23), date(2026, 9, 28)) == -15
    assert cal.working_days_between(date(2026, 10, 1), date(2026, 10, 7)) == 0


def test_due_at_is_end_of_day_in_shanghai():
    assert end_of_day_utc(date(2026, 10, 23)) == datetime(2026, 10, 23, 15, 59, 59, tzinfo=UTC)


def test_calendar_is_a_binary_search_over_a_table():
    """Exceptions override weekdays; the same answers without any database."""
    cal = WorkingCalendar({date(2030, 1, 1): "holiday", date(2030, 1, 5): "workday"}, [2030])
    assert not cal.is_working_day(date(2030, 1, 1))
    assert cal.is_working_day(date(2030, 1, 5))
    assert cal.add_working_days(date(2029, 12, 31), 1).day == date(2030, 1, 2)
