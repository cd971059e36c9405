"""The deadline sweep (RQ cron, every 5 minutes; `supervise sweep --now ISO` by hand).

It reads only clocks whose `next_check_at` has passed, through a small partial index, so its cost
follows the number of due clocks, not of cases. For each it records the milestones reached:

- due soon: the handler is told once, the case is flagged 即将超期;
- overdue: the case is flagged 已超期 and escalated to level 1 (督办): the supervisors of the
  discipline body above are told (in-app and e-mail) — or of the owning body, when the case is late
  at a unit it was transferred to; level 2 follows `level2_days` working days later, one body up;
- the rating window running out closes a responded case (自动办结).

Exactly once, whoever runs it and how often: clock rows are claimed with FOR UPDATE SKIP LOCKED
on PostgreSQL (the write lock on SQLite), each milestone is a timestamp set once under that lock,
escalations are unique per (clock, level) and notifications per outbox `dedupe_key`. A batch is
one transaction; its outbox rows are handed to RQ after the commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, SmallInteger, bindparam, func, select, text, update
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from supervise.cases.models import Case, Event
from supervise.cases.states import Action, Status
from supervise.dbtypes import dialect_insert
from supervise.deadlines.calendar import local_date
from supervise.deadlines.clocks import OVERDUE_AFTER, Clocks
from supervise.deadlines.models import RESPONSE_KINDS, CaseClock, ClockKind, Escalation
from supervise.i18n import N_
from supervise.notify.models import OutboxMessage
from supervise.notify.outbox import enqueue_after_commit
from supervise.orgs.routing import OrgTree

log = logging.getLogger(__name__)

CLOCK_LABELS = {
    "response": N_("答复期限"),
    "reopened": N_("重办答复期限"),
    "extension": N_("延期后的答复期限"),
    "stage": N_("受理/转办期限"),
    "ack": N_("实名举报受理告知期限"),
    "rating": N_("评价期限"),
}
BATCH_SIZE = 1000


@dataclass
class SweepResult:
    warned: int = 0
    overdue: int = 0
    level1: int = 0
    level2: int = 0
    auto_closed: int = 0
    notifications: int = 0
    cases: set[int] = field(default_factory=set)

    def lines(self) -> list[str]:
        return [
            f"due soon (warned): {self.warned}",
            f"overdue: {self.overdue}",
            f"escalated to level 1: {self.level1}",
            f"escalated to level 2: {self.level2}",
            f"closed without rating: {self.auto_closed}",
            f"notifications queued: {self.notifications}",
            f"cases touched: {len(self.cases)}",
        ]


@dataclass
class _Batch:
    """What one batch writes, gathered first and written set-wise."""

    clocks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    due_soon_cases: set[int] = field(default_factory=set)
    overdue_cases: set[int] = field(default_factory=set)
    level_cases: dict[int, set[int]] = field(default_factory=lambda: {1: set(), 2: set()})
    rating_expired: list[int] = field(default_factory=list)
    # org → its enabled group robots (supervise/robots): each escalation to the org is posted there too.
    robots: dict[int, list[int]] = field(default_factory=dict)


def sweep(session: Session, clocks: Clocks, now: datetime, *, batch_size: int = BATCH_SIZE) -> SweepResult:
    """Process every clock due by `now`, one committed batch at a time."""
    # Plain tuples, not ORM objects: those would expire at each batch's commit and reload one by one.
    orgs = OrgTree.load(session)
    result = SweepResult()
    while True:
        claimed = _sweep_batch(session, clocks, now, orgs, result, batch_size)
        if claimed < batch_size:
            return result


def _claim(session: Session, now: datetime, batch_size: int):
    if session.get_bind().dialect.name == "sqlite":
        # Take SQLite's write lock before reading, so a second sweep waits instead of reading the
        # same rows (SQLite has no row locks; PostgreSQL uses SKIP LOCKED below).
        session.execute(text("UPDATE case_clocks SET id = id WHERE 1 = 0"))
    stmt = (
        select(
            CaseClock.id,
            CaseClock.case_id,
            CaseClock.kind,
            CaseClock.due_at,
            CaseClock.warn_from,
            CaseClock.level2_from,
            CaseClock.warned_at,
            CaseClock.overdue_at,
            CaseClock.level2_at,
            Case.org_id,
            Case.owner_org_id,
            Case.assignee_id,
            Case.status,
        )
        .join(Case, Case.id == CaseClock.case_id)
        .where(CaseClock.next_check_at.is_not(None), CaseClock.next_check_at <= now)
        .order_by(CaseClock.next_check_at)
        .limit(batch_size)
        # The case rows too: a staff action locks its case before the case's clocks, so a sweep
        # holding a clock and waiting for that case would deadlock with it. Skipped rows are
        # still due: the next batch or the next run takes them.
        .with_for_update(of=[CaseClock.__table__, Case.__table__], skip_locked=True)
    )
    return session.execute(stmt).all()


def _sweep_batch(
    session: Session, clocks: Clocks, now: datetime, orgs: OrgTree, result: SweepResult, size: int
) -> int:
    from supervise.robots.services import robots_by_org

    rows = _claim(session, now, size)
    batch = _Batch(robots=robots_by_org(session) if rows else {})  # one small query a batch
    for row in rows:
        _examine(row, now, orgs, batch, result)
    _write(session, batch, result)
    for clock_id in batch.rating_expired:
        _close_unrated(session, clocks, now, clock_id, result)
    session.commit()
    return len(rows)


def _escalation_targets(orgs: OrgTree, row) -> tuple[int, int]:
    """督办 goes up the discipline bodies (DESIGN.md §2a): a case late at a unit is first the
    owner's to chase; a case late at its body goes to the body above, then the one above that
    (the top escalates to itself)."""
    owner = row.owner_org_id if row.owner_org_id in orgs.nodes else orgs.supervising_body(row.org_id)
    first = owner if row.org_id != owner and not orgs.is_body(row.org_id) else orgs.body_above(owner)
    return first, orgs.body_above(first)


def _examine(row, now: datetime, orgs: OrgTree, batch: _Batch, result: SweepResult) -> None:
    kind = ClockKind(row.kind)
    if kind == ClockKind.RATING:
        batch.rating_expired.append(row.id)
        return
    label = CLOCK_LABELS[kind]
    warned_at, overdue_at, level2_at = row.warned_at, row.overdue_at, row.level2_at
    tell_handler = (
        {"user_ids": [row.assignee_id]}
        if kind in RESPONSE_KINDS and row.assignee_id
        else {"org_id": row.org_id, "role": "intake" if orgs.is_body(row.org_id) else "leader"}
    )

    def notify(milestone: str, kind_: str, channel: str, payload: dict[str, Any]) -> None:
        batch.outbox.append(
            {
                "kind": kind_,
                "channel": channel,
                "case_id": row.case_id,
                "payload": {**payload, "clock": kind.value, "due_day": local_date(row.due_at).isoformat()},
                "dedupe_key": f"clock-{row.id}-{milestone}-{channel}",
                "status": "pending",
                "attempts": 0,
                "created_at": now,
            }
        )

    def record(note: str, data: dict[str, Any]) -> None:
        batch.events.append(
            {
                "case_id": row.case_id,
                "at": now,
                "action": (Action.ESCALATE if data.get("level") else Action.WARN).value,
                "actor_kind": "system",
                "from_status": row.status,
                "to_status": row.status,
                "public": False,
                "note": note,
                "data": {**data, "clock": kind.value, "due_at": row.due_at.isoformat()},
            }
        )

    def escalate(level: int, org_id: int) -> None:
        batch.escalations.append(
            {"case_id": row.case_id, "clock_id": row.id, "level": level, "org_id": org_id, "at": now}
        )
        batch.level_cases[level].add(row.case_id)
        to = orgs.nodes[org_id].name if org_id in orgs.nodes else str(org_id)
        level_name = "一" if level == 1 else "二"
        record(f"{label}已超期，{level_name}级督办：报{to}", {"level": level, "org_id": org_id})
        payload = {"org_id": org_id, "role": "supervisor", "level": level}
        notify(f"level{level}", "escalated", "inapp", payload)
        notify(f"level{level}", "escalated", "email", payload)
        for robot_id in batch.robots.get(org_id, ()):
            # Once per robot: its id is part of the row's dedupe key.
            robot = {"org_id": org_id, "level": level, "robot_id": robot_id}
            notify(f"level{level}-{robot_id}", "escalated", "robot", robot)

    overdue_now = overdue_at is None and now >= row.due_at + OVERDUE_AFTER
    if row.warn_from is not None and warned_at is None and now >= row.warn_from:
        warned_at = now
        result.warned += 1
        if overdue_now:
            pass  # first seen already late (the sweep was down): the overdue notice says it all
        else:
            due_day = local_date(row.due_at).isoformat()
            record(f"{label}即将届满（{due_day}）", {})
            notify("warn", "deadline_warning", "inapp", tell_handler)
            if kind in RESPONSE_KINDS:
                batch.due_soon_cases.add(row.case_id)
    if overdue_now:
        overdue_at = now
        result.overdue += 1
        notify("overdue", "deadline_overdue", "inapp", tell_handler)
        if kind in RESPONSE_KINDS:
            batch.overdue_cases.add(row.case_id)
        escalate(1, _escalation_targets(orgs, row)[0])
    level2_due = row.level2_from is not None and now >= row.level2_from
    if overdue_at is not None and level2_due and level2_at is None:
        level2_at = now
        escalate(2, _escalation_targets(orgs, row)[1])
    pending = [
        t
        for t, reached in (
            (row.warn_from, warned_at),
            (row.due_at + OVERDUE_AFTER, overdue_at),
            (row.level2_from, level2_at),
        )
        if t is not None and reached is None
    ]
    batch.clocks.append(
        {
            "id": row.id,
            "warned_at": warned_at,
            "overdue_at": overdue_at,
            "level2_at": level2_at,
            "next_check_at": min(pending, default=None),
        }
    )
    result.cases.add(row.case_id)


def _write(session: Session, batch: _Batch, result: SweepResult) -> None:
    # Executemany statements throughout: SQLAlchemy caches them and sends the rows as multi-row
    # VALUES ("insertmanyvalues"), RETURNING included.
    if batch.clocks:
        session.execute(update(CaseClock), batch.clocks)  # by primary key
    if batch.escalations:
        stmt = (
            dialect_insert(session, Escalation.__table__)
            .on_conflict_do_nothing(index_elements=["clock_id", "level"])
            .returning(Escalation.__table__.c.level)
        )
        for level in session.execute(stmt, batch.escalations).scalars():
            if level == 1:
                result.level1 += 1
            else:
                result.level2 += 1
    if batch.events:
        session.execute(Event.__table__.insert(), batch.events)
    new_ids: list[int] = []
    if batch.outbox:
        stmt = (
            dialect_insert(session, OutboxMessage.__table__)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(OutboxMessage.__table__.c.id)
        )
        new_ids = list(session.execute(stmt, batch.outbox).scalars())
    result.notifications += len(new_ids)
    enqueue_after_commit(session, new_ids)
    _flag_cases(session, batch)


def _flag_cases(session: Session, batch: _Batch) -> None:
    """One UPDATE per case, setting flags and level together, without touching its version: staff
    editing the case meanwhile must not get "someone else changed this case" because a deadline
    passed. NULL leaves a flag as it is; the level only ever rises."""
    changes: dict[int, dict[str, Any]] = {}

    def change(case_id: int) -> dict[str, Any]:
        return changes.setdefault(
            case_id, {"b_id": case_id, "b_due_soon": None, "b_overdue": None, "b_level": 0}
        )

    for case_id in batch.due_soon_cases:
        change(case_id)["b_due_soon"] = True
    for case_id in batch.overdue_cases:
        change(case_id).update(b_overdue=True, b_due_soon=False)
    for level, ids in batch.level_cases.items():
        for case_id in ids:
            row = change(case_id)
            row["b_level"] = max(row["b_level"], level)
    if not changes:
        return
    cases = Case.__table__
    level = bindparam("b_level", type_=SmallInteger)
    session.execute(
        update(cases)
        .where(cases.c.id == bindparam("b_id"))
        .values(
            due_soon=func.coalesce(bindparam("b_due_soon", type_=Boolean), cases.c.due_soon),
            overdue=func.coalesce(bindparam("b_overdue", type_=Boolean), cases.c.overdue),
            escalation_level=sql_case(
                (cases.c.escalation_level < level, level), else_=cases.c.escalation_level
            ),
        ),
        sorted(changes.values(), key=lambda r: r["b_id"]),  # a stable lock order between sweeps
    )


def _close_unrated(
    session: Session, clocks: Clocks, now: datetime, clock_id: int, result: SweepResult
) -> None:
    """The rating window ran out: a responded case closes (自动办结); anything else just stops it."""
    from supervise.cases import workflow

    clock = session.get(CaseClock, clock_id)
    case = clock.case
    if case.status == Status.RESPONDED:
        workflow.auto_close(workflow.Context(session, clocks, now), case)
        result.auto_closed += 1
    else:
        clock.met_at, clock.outcome, clock.next_check_at = now, "ended", None
    result.cases.add(case.id)
