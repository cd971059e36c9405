"""The escalation inbox (督办): escalations addressed to a supervisor's part of the org tree.

An escalation is addressed to an org (the one above the late case's), so its scope is
`escalations.org_id`, not the case's org that `cases.queries.scoped` filters by.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, false, func, literal, select, tuple_
from sqlalchemy.orm import Session

from supervise.cases.models import Case
from supervise.cases.queries import decode_keyset, encode_keyset, subtree_ids
from supervise.cases.workflow import Actor
from supervise.dbtypes import UTCDateTime
from supervise.deadlines.calendar import local_date
from supervise.deadlines.models import CaseClock, Escalation
from supervise.deadlines.sweep import CLOCK_LABELS
from supervise.orgs.models import Org


def _escalations(session: Session, me: Actor, columns, *, open_only: bool) -> Select:
    """Escalations addressed to the actor's scope: a supervisor's (or admin's) subtree, else their org.

    The scope is a condition of the query itself, so another township's escalations never leave
    the database. `open_only`: the late clock has not been met yet.
    """
    stmt = select(*columns).select_from(Escalation).join(CaseClock, CaseClock.id == Escalation.clock_id)
    if not me.at_body:
        return stmt.where(false())  # escalations go to discipline bodies; a unit reads none (§2a)
    if me.oversees_subtree:
        ids = subtree_ids(session, me)
        if ids is not None:
            stmt = stmt.where(Escalation.org_id.in_(ids))
    else:
        stmt = stmt.where(Escalation.org_id == me.org_id)
    if open_only:
        stmt = stmt.where(CaseClock.met_at.is_(None))
    return stmt


def open_escalation_count(session: Session, me: Actor) -> int:
    """The number on the 督办 nav link: escalations to this scope whose deadline is still unmet."""
    return session.scalar(_escalations(session, me, [func.count(Escalation.id)], open_only=True)) or 0


def _encode_escalation_cursor(row: Escalation) -> str:
    return encode_keyset([row.at.isoformat(), row.id])


def _decode_escalation_cursor(cursor: str) -> tuple[datetime, int]:
    return decode_keyset(cursor, lambda values: (datetime.fromisoformat(values[0]), int(values[1])))


def escalation_page(
    session: Session, me: Actor, *, open_only: bool, cursor: str | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the inbox, newest first, keyset-paginated on (at, id)."""
    stmt = _escalations(session, me, [Escalation, CaseClock, Case, Org], open_only=open_only)
    stmt = stmt.join(Case, Case.id == Escalation.case_id).join(Org, Org.id == Escalation.org_id)
    if cursor:
        at, row_id = _decode_escalation_cursor(cursor)
        stmt = stmt.where(
            tuple_(Escalation.at, Escalation.id) < tuple_(literal(at, UTCDateTime), literal(row_id))
        )
    rows = session.execute(stmt.order_by(Escalation.at.desc(), Escalation.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "id": esc.id,
            "at": esc.at,
            "level": esc.level,
            "tracking_no": case.tracking_no,
            "status": case.status,
            "clock": clock.kind,
            "clock_label": CLOCK_LABELS.get(clock.kind, clock.kind),
            "org_name": org.name,
            "due_date": local_date(clock.due_at),
            "due_provisional": clock.due_provisional,
            "resolved": clock.met_at is not None,
            "met_at": clock.met_at,
            "outcome": clock.outcome,
        }
        for esc, clock, case, org in rows
    ]
    return items, (_encode_escalation_cursor(rows[-1][0]) if more and rows else None)
