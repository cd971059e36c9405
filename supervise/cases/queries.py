"""Work queues: org-scoped, filtered, keyset-paginated (no OFFSET, so page 500 costs what page 1 does)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, literal, or_, select, tuple_, union_all
from sqlalchemy.orm import Session, joinedload

from supervise.cases.models import Case, Category
from supervise.cases.search import matches
from supervise.cases.states import CaseKind, Status
from supervise.cases.workflow import (
    PRIORITY_ANONYMOUS,
    PRIORITY_CITIZEN_REPLIED,
    PRIORITY_REAL_NAME,
    Actor,
)
from supervise.dbtypes import UTCDateTime
from supervise.deadlines.calendar import SHANGHAI
from supervise.deadlines.clocks import Clocks
from supervise.errors import InvalidInput
from supervise.i18n import N_
from supervise.intake.models import Point
from supervise.orgs.models import BODY_KINDS, Org, OrgKind
from supervise.staff.models import User

S = Status
STATUS_QUEUES: dict[str, set[Status]] = {
    "intake": {S.RECEIVED},  # 待受理
    "dispatch": {S.ACCEPTED},  # 待转办 / 待交办
    "in_progress": {S.ASSIGNED, S.PROCESSING, S.REOPENED},  # 办理中
    "review": {S.FEEDBACK_PENDING_REVIEW},  # 待审核
    "done": {S.RESPONDED, S.CLOSED, S.REJECTED, S.MERGED},  # 已办结
}
PRIORITIES = (PRIORITY_CITIZEN_REPLIED, PRIORITY_REAL_NAME, PRIORITY_ANONYMOUS)
QUEUES = (
    "intake",
    "dispatch",
    "in_progress",
    "review",
    "due_soon",
    "overdue",
    "escalated",
    "rejected",
    "done",
    "mine",
)
# The tabs a unit's staff have: they never receive, review or reject (DESIGN.md §2a).
UNIT_QUEUES = ("dispatch", "in_progress", "review", "due_soon", "overdue", "done", "mine")
# Calendar days that cover the 10 working days a rejection stays reversible (long holidays too).
REJECTION_REVIEW_WINDOW_DAYS = 21


@dataclass
class Filters:
    """What a queue page or API call narrows by; every field optional."""

    queue: str | None = None
    org: str | None = None
    status: str | None = None
    category: str | None = None
    point: str | None = None
    channel: str | None = None  # 来源渠道 (states.Channel)
    real_name: bool = False
    received_from: date | None = None
    received_to: date | None = None
    q: str | None = None


def subtree_ids(session: Session, actor: Actor) -> list[int] | None:
    """The orgs below a supervisor's or admin's org, or None when that is every org (no condition).

    Given as ids, PostgreSQL estimates the subtree's share of cases from `cases.org_id` statistics;
    behind `IN (SELECT … LIKE …)` it guesses from the share of orgs and may sort a whole subtree
    instead of walking an index in order (bench/README.md has the plans and figures). One round
    trip: the subtree with the number of all orgs beside it.
    """
    every_org = select(func.count(Org.id)).scalar_subquery()
    rows = session.execute(
        select(Org.id, every_org).where(Org.path.startswith(actor.org_path, autoescape=True))
    ).all()
    return None if rows and len(rows) == rows[0][1] else [org_id for org_id, _ in rows]


def scoped(session: Session, stmt: Select, actor: Actor, ids: list[int] | None = None) -> Select:
    """Every staff query goes through here, and says what `Actor.sees` says (DESIGN.md §2a):
    discipline staff see what their body owns (supervisors and admins: what the bodies in their
    subtree own); a unit sees what was transferred to it, never a 检举控告 case."""
    if not actor.at_body:
        return stmt.where(Case.unit_org_id == actor.org_id, Case.kind != CaseKind.ACCUSATION.value)
    if actor.oversees_subtree:
        ids = subtree_ids(session, actor) if ids is None else ids
        return stmt if ids is None else stmt.where(Case.owner_org_id.in_(ids))
    return stmt.where(Case.owner_org_id == actor.org_id)


def _queue_condition(stmt: Select, queue: str | None, actor: Actor, clocks: Clocks, now: datetime) -> Select:
    # Equalities on the derived columns `bucket` / `is_open` (not `status IN (…)`) let each
    # priority's rows come straight out of an index in (due, id) order.
    if not actor.at_body and queue == "dispatch":
        # A unit's 待交办: transferred to it, its leader has not picked a handler yet.
        return stmt.where(
            Case.bucket == "in_progress",  # the unit queue index's prefix
            Case.org_id == actor.org_id,
            Case.status == S.ASSIGNED,
            Case.assignee_id.is_(None),
        )
    if queue in STATUS_QUEUES:
        return stmt.where(Case.bucket == queue)
    if queue == "rejected":
        # 不予受理复核: the rejections a supervisor may still reverse (10 working days ≈ 14 days).
        since = now - timedelta(days=REJECTION_REVIEW_WINDOW_DAYS)
        return stmt.where(Case.status == S.REJECTED, Case.closed_at >= since)
    # 已超期 / 即将超期 are the flags the deadline sweep sets (deadlines/sweep.py), each read
    # through its own small partial index.
    if queue == "overdue":
        return stmt.where(Case.is_open, Case.overdue)
    if queue == "due_soon":
        return stmt.where(Case.is_open, Case.due_soon, ~Case.overdue)
    if queue == "escalated":
        return stmt.where(Case.is_open, Case.escalation_level > 0)
    if queue == "mine":
        return stmt.where(Case.assignee_id == actor.user_id, Case.is_open)
    return stmt


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI)


def filtered(session: Session, actor: Actor, clocks: Clocks, now: datetime, f: Filters) -> Select:
    """The scoped, filtered selection of cases behind a queue (no order, no page)."""
    stmt = _queue_condition(scoped(session, select(Case), actor), f.queue, actor, clocks, now)
    if f.status:
        if f.status not in {s.value for s in Status}:
            raise InvalidInput(N_("未知的状态"), {"status": [N_("未知的状态")]})
        stmt = stmt.where(Case.status == f.status)
    if f.org:
        # Where it sits or who owns it: a body's report links list its cases out at units too.
        org_ids = select(Org.id).where(Org.code == f.org)
        stmt = stmt.where(Case.org_id.in_(org_ids) | Case.owner_org_id.in_(org_ids))
    if f.category:
        stmt = stmt.where(Case.category_id.in_(select(Category.id).where(Category.code == f.category)))
    if f.point:
        stmt = stmt.where(Case.point_id.in_(select(Point.id).where(Point.token == f.point)))
    if f.channel:
        stmt = stmt.where(Case.channel == f.channel)
    if f.real_name and actor.at_body:  # a unit is never told who gave their name (§2a)
        stmt = stmt.where(Case.real_name.is_(True))
    if f.received_from:
        stmt = stmt.where(Case.received_at >= _local_midnight(f.received_from))
    if f.received_to:
        stmt = stmt.where(Case.received_at < _local_midnight(f.received_to + timedelta(days=1)))
    if f.q and (condition := matches(session, Case.search_text, f.q)) is not None:
        stmt = stmt.where(condition)
    return stmt


def encode_keyset(values: list[Any]) -> str:
    """A page cursor: the sort key of the last row, as opaque URL-safe text."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_keyset(cursor: str, parse: Callable[[list[Any]], tuple]) -> tuple:
    """`parse` turns the decoded list back into typed values; anything malformed is a 422."""
    try:
        return parse(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(N_("无效的分页游标"), {"cursor": [N_("无效的分页游标")]}) from exc


def encode_cursor(case: Case, rank: int | None = None) -> str:
    """`rank`: the case's order group in the queue it was read from (its priority by default)."""
    return encode_keyset([case.priority if rank is None else rank, case.response_due_at.isoformat(), case.id])


def decode_cursor(cursor: str) -> tuple[int, datetime, int]:
    def parse(values: list[Any]) -> tuple[int, datetime, int]:
        priority, due, case_id = values
        return int(priority), datetime.fromisoformat(due), int(case_id)

    return decode_keyset(cursor, parse)


def queue_page(
    session: Session,
    actor: Actor,
    clocks: Clocks,
    now: datetime,
    filters: Filters,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Case], str | None]:
    """One page of a queue: a citizen's new reply first, then real-name (实名优先), then earliest due.

    The order (priority, due, id) is read as one short index range per priority value, merged:
    a single ORDER BY over a range filter on `due` (overdue, due soon) or over a whole subtree would
    make the database sort every matching row to find the first fifty. Pages follow a keyset
    cursor, so a deep page costs what the first one does.
    """
    base = filtered(session, actor, clocks, now, filters)
    after = decode_cursor(cursor) if cursor else None
    groups = _priority_groups(actor)
    parts = []
    for rank, members in groups.items():
        if after and rank < after[0]:
            continue
        part = base.with_only_columns(Case.id, literal(rank).label("rank"), Case.response_due_at).where(
            Case.priority.in_(members)
        )
        if after and rank == after[0]:
            part = part.where(
                tuple_(Case.response_due_at, Case.id)
                > tuple_(literal(after[1], UTCDateTime), literal(after[2]))
            )
        parts.append(part.order_by(Case.response_due_at, Case.id).limit(limit + 1).subquery())
    if not parts:
        return [], None
    merged = union_all(*(select(p) for p in parts)).subquery()
    page = (
        select(merged.c.id, merged.c.rank)
        .order_by(merged.c.rank, merged.c.response_due_at, merged.c.id)
        .limit(limit + 1)
    ).subquery()
    # The page's ids, the cases and their assignees in one statement. The names a row shows
    # (category, point, orgs) come from this process's copies (`services.row_names`), not the
    # database; the assignee's roles are not shown: not loaded.
    stmt = (
        select(Case, page.c.rank)
        .join(page, Case.id == page.c.id)
        .order_by(page.c.rank, Case.response_due_at, Case.id)
        .options(joinedload(Case.assignee).lazyload(User.role_rows))
    )
    ranked = list(session.execute(stmt))
    more = len(ranked) > limit
    ranked = ranked[:limit]
    next_cursor = encode_cursor(ranked[-1][0], ranked[-1][1]) if more and ranked else None
    return [case for case, _ in ranked], next_cursor


def _priority_groups(actor: Actor) -> dict[int, tuple[int, ...]]:
    """The queue's order groups, first to last. Discipline staff see real-name cases first
    (实名优先); a unit's order must not tell it who gave their name (§2a), so for a unit real-name
    and anonymous cases are one group, after the cases a citizen has just answered."""
    if actor.at_body:
        return {p: (p,) for p in PRIORITIES}
    return {
        PRIORITY_CITIZEN_REPLIED: (PRIORITY_CITIZEN_REPLIED,),
        PRIORITY_ANONYMOUS: (PRIORITY_REAL_NAME, PRIORITY_ANONYMOUS),
    }


def queues_for(actor: Actor) -> tuple[str, ...]:
    return QUEUES if actor.at_body else UNIT_QUEUES


# A tab's live count stops here: past it the tab says "999+". Counting a capped tab reads at most
# COUNT_CAP + 1 index entries, so all the tabs cost a few milliseconds at any size (issue 15: their
# exact COUNTs took 408 ms per page view for a county supervisor at 1,000,000 cases). Nobody works
# a tab by its exact size past a thousand; the queue pages themselves are never capped.
COUNT_CAP = 999


def queue_counts(
    session: Session, actor: Actor, clocks: Clocks | None, now: datetime, *, cap: int | None = None
) -> dict[str, int]:
    """How many cases each of the actor's tabs holds (the live counts on the tabs), in one statement.

    Each count stops at `cap` + 1 (`cap` defaults to COUNT_CAP): a tab with more than `cap` cases
    gets `cap` + 1, shown as "999+" (`count_label`)."""
    return _capped_counts(session, actor, queues_for(actor), clocks, now, cap)


def queue_count(
    session: Session,
    actor: Actor,
    queue: str,
    clocks: Clocks | None,
    now: datetime,
    *,
    cap: int | None = None,
) -> int:
    """One tab's count, capped as `queue_counts` caps it. The header's 督办 badge is
    `queue_count(…, "escalated", …)`, so the badge and the tab are one definition: open cases in the
    actor's scope under 督办."""
    return _capped_counts(session, actor, (queue,), clocks, now, cap)[queue]


def count_label(count: int, cap: int | None = None) -> str:
    """A tab's count as shown: "999+" past the cap (the same in every language)."""
    cap = COUNT_CAP if cap is None else cap
    return f"{cap}+" if count > cap else str(count)


def _capped_counts(
    session: Session,
    actor: Actor,
    queues: tuple[str, ...],
    clocks: Clocks | None,
    now: datetime,
    cap: int | None,
) -> dict[str, int]:
    # One round trip: a scalar subquery per tab, each counting the rows of a LIMITed selection
    # through the same scope and tab condition the queue page uses, so a count never says a tab
    # holds what its page would not list.
    limit = (COUNT_CAP if cap is None else cap) + 1
    in_scope = scoped(session, select(Case.id), actor)  # a supervisor's subtree is read once
    columns = []
    for queue in queues:
        rows = _queue_condition(in_scope, queue, actor, clocks, now)
        counted = select(func.count()).select_from(rows.limit(limit).subquery())
        columns.append(counted.scalar_subquery().label(queue))
    return dict(session.execute(select(*columns)).one()._mapping)


def filter_orgs(session: Session, actor: Actor) -> list[Org]:
    """The orgs the queue's 单位 filter offers: where the actor's cases can sit or who owns them.

    A unit's staff: their own org. Discipline staff: their body (a supervisor: every body of their
    subtree), what those bodies supervise (a township's 纪委 the township it hangs below, with its
    villages; a 派驻组 the departments assigned to it) and everything below. A superset is harmless:
    the filter narrows a scoped query, it never widens one.
    """
    if not actor.at_body:
        return list(session.scalars(select(Org).where(Org.id == actor.org_id)))
    me = session.get(Org, actor.org_id)
    bodies = [me]
    if actor.oversees_subtree:
        bodies = list(
            session.scalars(
                select(Org).where(
                    Org.path.startswith(me.path, autoescape=True), Org.kind.in_([k.value for k in BODY_KINDS])
                )
            )
        )
    roots = {b.path for b in bodies}
    for body in bodies:
        if body.kind == OrgKind.DISCIPLINE_OFFICE and body.parent is not None:
            roots.add(body.parent.path)  # a township's 纪委 sits below the township it supervises
    body_ids = [b.id for b in bodies]
    roots |= set(session.scalars(select(Org.path).where(Org.supervising_body_id.in_(body_ids))))
    condition = or_(*(Org.path.startswith(path, autoescape=True) for path in sorted(roots)))
    return list(session.scalars(select(Org).where(condition).order_by(Org.path)))


def page_payload(rows: list[Case], next_cursor: str | None, summarise) -> dict[str, Any]:
    return {"items": [summarise(c) for c in rows], "next_cursor": next_cursor}
