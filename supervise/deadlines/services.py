"""Deadline services for commands, views and jobs: each is one unit of work and commits."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from supervise.cases.models import Case, Event
from supervise.cases.states import OPEN_STATES, Action, Status
from supervise.deadlines import tracking
from supervise.deadlines.calendar import load_year, local_date
from supervise.deadlines.clocks import Clocks
from supervise.deadlines.models import RESPONSE_KINDS, CalendarYear, CaseClock, ClockKind
from supervise.deadlines.sweep import CLOCK_LABELS, SweepResult, sweep
from supervise.extensions import db


def run_sweep(now: datetime | None = None) -> SweepResult:
    """One deadline sweep as of `now` (default: the current time)."""
    from supervise.cases.services import make_context

    ctx = make_context(now)
    return sweep(db.session, ctx.clocks, ctx.now)


def import_calendar_year(
    year: int, days: dict[date, tuple[str, str]], source: str, now: datetime | None = None
) -> int:
    """Load a year's official schedule, then `recompute_year` (which commits)."""
    load_year(db.session, year, days, source)
    return recompute_year(year, now)


def recompute_year(year: int, now: datetime | None = None) -> int:
    """After a year's calendar changed (in this transaction): recompute the running clocks it
    touches and record an event on each case whose deadline moved. Commits; returns how many."""
    from supervise.cases.services import make_context

    db.session.flush()
    ctx = make_context(now)  # a calendar rebuilt with the new year (its fingerprint changed)
    changed = tracking.recompute_for_year(db.session, ctx.clocks, year, ctx.now)
    for clock, old_due in changed:
        old_day, new_day = local_date(old_due), local_date(clock.due_at)
        moved = f"由 {old_day.isoformat()} 调整为 {new_day.isoformat()}" if old_day != new_day else "不变"
        db.session.add(
            Event(
                case_id=clock.case_id,
                at=ctx.now,
                action=Action.DEADLINE_CHANGED.value,
                actor_kind="system",
                public=clock.kind in RESPONSE_KINDS,
                note=f"{year}年节假日安排公布，{CLOCK_LABELS[clock.kind]}{moved}",
                data={
                    "clock": clock.kind,
                    "from": old_due.isoformat(),
                    "to": clock.due_at.isoformat(),
                    "provisional": clock.due_provisional,
                },
            )
        )
    db.session.commit()
    return len(changed)


def provisional_deadlines(session: Session) -> tuple[int, list[int]]:
    """Running deadlines computed on a year with no official schedule yet, and those years: what
    admins are warned about until they import the State Council's notice."""
    count, first, last = session.execute(
        select(func.count(CaseClock.id), func.min(CaseClock.due_at), func.max(CaseClock.due_at)).where(
            CaseClock.met_at.is_(None), CaseClock.due_provisional.is_(True)
        )
    ).one()
    if not count:
        return 0, []
    official = set(session.scalars(select(CalendarYear.year)))
    years = range(local_date(first).year, local_date(last).year + 1)
    return count, [y for y in years if y not in official]


def backfill_clocks(session: Session, clocks: Clocks) -> int:
    """Give open cases from before the clocks existed a response clock (and a stage clock while
    they await intake), from their receipt; `supervise init` runs it. Idempotent."""
    stmt = select(Case).where(
        Case.status.in_([s.value for s in OPEN_STATES]),
        ~exists().where(CaseClock.case_id == Case.id),
    )
    count = 0
    for case in session.scalars(stmt):
        # Same due day as before: counted from receipt over however many days it had (reopenings
        # and extensions included).
        start = local_date(case.received_at)
        days = max(1, clocks.calendar.working_days_between(start, local_date(case.response_due_at)))
        tracking.start_clock(session, clocks, case, ClockKind.RESPONSE, case.received_at, days=days)
        if case.status == Status.RECEIVED:
            tracking.start_clock(session, clocks, case, ClockKind.STAGE, case.received_at)
        count += 1
    return count
