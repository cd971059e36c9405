"""Work queues: org-scoped, filtered, keyset-paginated (no OFFSET, so page 500 costs what page 1 does)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Select, literal, select, tuple_
from sqlalchemy.orm import Session, selectinload

from supervise.cases.models import Case
from supervise.cases.states import OPEN_STATES, Status
from supervise.cases.workflow import Actor
from supervise.dbtypes import UTCDateTime
from supervise.deadlines.calendar import end_of_day_utc, local_date
from supervise.deadlines.clocks import Clocks
from supervise.errors import InvalidInput
from supervise.orgs.models import Org
from supervise.staff.models import Role

S = Status
STATUS_QUEUES: dict[str, set[Status]] = {
    "intake": {S.RECEIVED},  # 待受理
    "dispatch": {S.ACCEPTED},  # 待转办 / 待交办
    "in_progress": {S.ASSIGNED, S.PROCESSING, S.REOPENED},  # 办理中
    "review": {S.FEEDBACK_PENDING_REVIEW},  # 待审核
    "done": {S.RESPONDED, S.CLOSED, S.REJECTED, S.MERGED},  # 已办结
}


def scoped(stmt: Select, actor: Actor) -> Select:
    """Every staff query goes through here: supervisors and admins see their subtree, others their org."""
    if actor.role in (Role.SUPERVISOR, Role.ADMIN):
        return stmt.join(Org, Case.org_id == Org.id).where(
            Org.path.startswith(actor.org_path, autoescape=True)
        )
    return stmt.where(Case.org_id == actor.org_id)


def encode_cursor(case: Case) -> str:
    raw = json.dumps([case.priority, case.response_due_at.isoformat(), case.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        priority, due, case_id = json.loads(base64.urlsafe_b64decode(padded))
        return int(priority), datetime.fromisoformat(due), int(case_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("无效的分页游标", {"cursor": ["无效的分页游标"]}) from exc


def queue_page(
    session: Session,
    actor: Actor,
    clocks: Clocks,
    now: datetime,
    *,
    queue: str | None = None,
    org: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Case], str | None]:
    """One page of a queue, real-name first then earliest due (DESIGN.md §3 实名优先)."""
    stmt = scoped(select(Case), actor)
    open_states = [s.value for s in OPEN_STATES]
    if queue in STATUS_QUEUES:
        stmt = stmt.where(Case.status.in_([s.value for s in STATUS_QUEUES[queue]]))
    elif queue == "overdue":
        stmt = stmt.where(Case.status.in_(open_states), Case.response_due_at < now)
    elif queue == "due_soon":
        horizon = clocks.calendar.add_working_days(local_date(now), clocks.policy.due_soon_days).day
        stmt = stmt.where(
            Case.status.in_(open_states),
            Case.response_due_at >= now,
            Case.response_due_at <= end_of_day_utc(horizon),
        )
    elif queue == "escalated":
        stmt = stmt.where(Case.status.in_(open_states), Case.escalation_level > 0)
    elif queue == "mine":
        stmt = stmt.where(Case.assignee_id == actor.user_id, Case.status.in_(open_states))
    if status:
        if status not in {s.value for s in Status}:
            raise InvalidInput("未知的状态", {"status": ["未知的状态"]})
        stmt = stmt.where(Case.status == status)
    if org:
        stmt = stmt.where(Case.org_id.in_(select(Org.id).where(Org.code == org)))
    if cursor:
        priority, due, case_id = decode_cursor(cursor)
        stmt = stmt.where(
            tuple_(Case.priority, Case.response_due_at, Case.id)
            > tuple_(literal(priority), literal(due, UTCDateTime), literal(case_id))
        )
    stmt = (
        stmt.order_by(Case.priority, Case.response_due_at, Case.id)
        .limit(limit + 1)
        .options(
            selectinload(Case.category),
            selectinload(Case.org),
            selectinload(Case.assignee),
            selectinload(Case.point),
        )
    )
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


def page_payload(rows: list[Case], next_cursor: str | None, summarise) -> dict[str, Any]:
    return {"items": [summarise(c) for c in rows], "next_cursor": next_cursor}
