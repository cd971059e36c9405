"""Starting, stopping, extending and recomputing a case's clocks (the workflow calls these).

Flask-free, like the workflow: functions take the session, the `Clocks` and the time, change rows
in the caller's transaction and never commit. The case keeps copies of its running response and
stage due moments (`response_due_at`, `stage_due_at`) because queues sort and page by them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from supervise.deadlines.calendar import local_date, start_of_day_utc
from supervise.deadlines.clocks import OVERDUE_AFTER, Clocks, Schedule
from supervise.deadlines.models import RESPONSE_KINDS, CaseClock, ClockKind


def next_check(clock: CaseClock) -> datetime | None:
    """The next moment the sweep must look at this clock, or None when nothing is left to do."""
    if clock.met_at is not None:
        return None
    pending = []
    if clock.warn_from is not None and clock.warned_at is None:
        pending.append(clock.warn_from)
    if clock.overdue_at is None:
        pending.append(clock.due_at + OVERDUE_AFTER)
    if clock.level2_from is not None and clock.level2_at is None:
        pending.append(clock.level2_from)
    return min(pending, default=None)


def _apply_schedule(clock: CaseClock, schedule: Schedule) -> None:
    clock.due_at, clock.due_provisional = schedule.due_at, schedule.due.provisional
    clock.warn_from, clock.level2_from = schedule.warn_from, schedule.level2_from
    clock.next_check_at = next_check(clock)


def _mirror_on_case(case, clock: CaseClock) -> None:
    if clock.kind in RESPONSE_KINDS:
        case.response_due_at, case.due_provisional = clock.due_at, clock.due_provisional
    elif clock.kind == ClockKind.STAGE:
        case.stage_due_at = clock.due_at


def running_clocks(session: Session, case, kinds: Iterable[ClockKind] | None = None) -> list[CaseClock]:
    """The case's clocks still running, as this transaction has them (flushed or not).

    Never flushes: a flush in the middle of an action would bump the case's version and make the
    action's own version check fail.
    """
    wanted = None if kinds is None else {k.value for k in kinds}
    found: list[CaseClock] = [c for c in session.new if isinstance(c, CaseClock) and c.case is case]
    if case.id is not None:
        with session.no_autoflush:
            found += session.scalars(
                select(CaseClock).where(CaseClock.case_id == case.id, CaseClock.met_at.is_(None))
            )
    return [c for c in found if c.met_at is None and (wanted is None or c.kind in wanted)]


def new_clock(
    clocks: Clocks,
    case,
    kind: ClockKind,
    now: datetime,
    *,
    start_day: date | None = None,
    days: int | None = None,
) -> CaseClock:
    """A clock for `case` from `now` (or from `start_day`, for an extension), mirrored on the case
    but not tied to it or to a session: `start_clock` adds it; a submission writes it in one
    statement with its case (supervise/cases/inserts.py)."""
    start_day = start_day or local_date(now)
    days = days if days is not None else clocks.policy.days_for(kind)
    clock = CaseClock(
        kind=kind.value,
        # The id, not `case.org`: loading a relationship mid-action would flush the case early
        # and bump its version twice. A new case may have only the relationship set yet.
        org_id=case.org_id if case.org_id is not None else case.org.id,
        started_at=now,
        start_day=start_day,
        days=days,
    )
    _apply_schedule(clock, clocks.schedule(kind, start_day, days))
    _mirror_on_case(case, clock)
    if kind in RESPONSE_KINDS:
        case.due_soon = case.overdue = False
    return clock


def start_clock(
    session: Session,
    clocks: Clocks,
    case,
    kind: ClockKind,
    now: datetime,
    *,
    start_day: date | None = None,
    days: int | None = None,
) -> CaseClock:
    """Start a clock on `case` from `now` (or from `start_day`, for an extension)."""
    clock = new_clock(clocks, case, kind, now, start_day=start_day, days=days)
    clock.case = case
    session.add(clock)
    return clock


def stop_clocks(
    session: Session, case, now: datetime, kinds: Iterable[ClockKind], outcome: str = "met"
) -> list[CaseClock]:
    """End the running clocks of these kinds: met (the thing was done), ended or extended."""
    stopped = running_clocks(session, case, list(kinds))
    for clock in stopped:
        clock.met_at, clock.outcome, clock.next_check_at = now, outcome, None
        if clock.kind in RESPONSE_KINDS:
            case.due_soon = case.overdue = False
        elif clock.kind == ClockKind.STAGE:
            case.stage_due_at = None
    case.escalation_level = max((c.level for c in running_clocks(session, case)), default=0)
    return stopped


def extend_response(session: Session, clocks: Clocks, case, days: int, now: datetime) -> CaseClock:
    """延期: the running response clock ends as `extended`; an extension clock takes over, due
    `days` working days after the old due day (counted from the same start, so a calendar import
    recomputes both the same way)."""
    (current,) = running_clocks(session, case, RESPONSE_KINDS) or [None]
    if current is None:
        raise ValueError("no running response clock to extend")
    stop_clocks(session, case, now, [ClockKind(current.kind)], outcome="extended")
    return start_clock(
        session,
        clocks,
        case,
        ClockKind.EXTENSION,
        now,
        start_day=current.start_day,
        days=current.days + days,
    )


def recompute_for_year(
    session: Session, clocks: Clocks, year: int, now: datetime
) -> list[tuple[CaseClock, datetime]]:
    """After a year's calendar changed: recompute every running clock whose span touches it.

    Returns (clock, old due moment) for each clock whose due moment moved or stopped being
    provisional; the caller records an event on their cases.
    """
    first, last = date(year, 1, 1), date(year, 12, 31)
    stmt = select(CaseClock).where(
        CaseClock.met_at.is_(None),
        CaseClock.start_day <= last,
        or_(CaseClock.due_at >= start_of_day_utc(first), CaseClock.due_provisional.is_(True)),
    )
    changed = []
    for clock in session.scalars(stmt.order_by(CaseClock.id)):
        old_due, old_provisional = clock.due_at, clock.due_provisional
        schedule = clocks.schedule(clock.kind, clock.start_day, clock.days)
        # A milestone the new schedule puts back in the future is not reached any more (the
        # escalations already made stay on record).
        if clock.warned_at and schedule.warn_from and schedule.warn_from > now:
            clock.warned_at = None
        if clock.overdue_at and schedule.due_at + OVERDUE_AFTER > now:
            clock.overdue_at = clock.level2_at = None
        _apply_schedule(clock, schedule)
        if (clock.due_at, clock.due_provisional) != (old_due, old_provisional):
            _mirror_on_case(clock.case, clock)
            if clock.kind in RESPONSE_KINDS:
                clock.case.due_soon = clock.warned_at is not None and clock.overdue_at is None
                clock.case.overdue = clock.overdue_at is not None
            changed.append((clock, old_due))
    return changed
