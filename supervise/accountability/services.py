"""The public accountability page (/public) and the summaries staff publish on it.

**Figures.** Per township and per department (the direct children of each root org; a village is
counted in its township, a 纪委 below a township likewise; nothing below that level is ever shown),
over the last 12 full months: received, answered on time (count and rate), satisfaction rate, from
the statistics summary (`supervise.stats.services.figures_by(group="child_org")`), so the page and
/staff/stats never disagree. Every kind counts in `received`, 检举控告 included: leaving them out
would make a unit complained about for misconduct look clean, and a total of all kinds says nothing
about any one complaint; the page never breaks figures down by kind, and k protects small totals.

**Small-count protection (k = K_MIN).** A group (a township or department) that received 1…K_MIN-1
cases shows every count as "<5" and no rate; a rate whose own base (answered cases for the on-time
rate, rated cases for satisfaction) is under K_MIN is shown as "—". A group with no case shows 0:
it says nothing about any person, and "<5" there would make every quiet unit look like a unit with
a few cases.

**Summaries.** Staff of the owning discipline body write an anonymised summary of a closed case
(intake, handler or supervisor); a supervisor of the owning body or of a body above it approves it
(never the person who wrote it, whatever the org's 一人拟稿发布 setting: the public page is the one
place nothing can be taken back from, so the exemption for answers does not apply); anyone who may
write or approve may withdraw it at any time. Only 作风效能诉求 and 批评建议 cases may be published:
a 检举控告 case (any disposal, 予以了结 included) names an official's alleged misconduct, and its
result is told to the reporter alone (§2a); a published line about it would tell a village whom
someone accused. 申诉 concerns one person's own case; 不属于受理范围 was never handled. The text is
typed by staff: nothing is copied from the citizen's content or the answer, and a text that repeats
a long run of either, a number of 7 or more digits (a phone, an ID) or the tracking number is
refused. The page shows a summary's text with its month (of closing) and category only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise.accountability.models import PublishedSummary
from supervise.cases.models import Case
from supervise.cases.states import CaseKind, Status
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import SHANGHAI
from supervise.errors import Conflict, Forbidden, InvalidInput, NotFound
from supervise.i18n import N_
from supervise.orgs.models import Org, OrgKind
from supervise.staff import audit
from supervise.staff.models import Role, User

K_MIN = 5  # the one place k is set: no figure of a group under K_MIN cases, no rate on a base under it
MONTHS = 12  # the page covers the last 12 full months
SUMMARIES_PER_UNIT = 3
PUBLISHABLE_KINDS = frozenset({CaseKind.SERVICE, CaseKind.SUGGESTION})
PUBLIC_UNIT_KINDS = (OrgKind.TOWNSHIP, OrgKind.DEPARTMENT)
TEXT_MIN, TEXT_MAX = 10, 300
COPIED_RUN = 12  # this many characters in a row from the content or the answer: a copy, refused


# -- figures with small-count protection ----------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One figure as the page shows it: `text` is "<5", "—", a number or a percentage."""

    text: str
    hidden: bool = False


HIDDEN_COUNT = Cell("<5", hidden=True)
HIDDEN_RATE = Cell("—", hidden=True)


def count_cell(n: int, group_total: int) -> Cell:
    """A count of a group: every count of a group that received 1…K_MIN-1 cases is "<5"; a group
    with none shows 0. Within a group of K_MIN or more a count is shown as it is (a rate shown
    beside it would give it away anyway: k protects the group and each rate's base)."""
    if group_total == 0:
        return Cell("0")
    if group_total < K_MIN:
        return HIDDEN_COUNT
    return Cell(str(n))


def rate_cell(part: int, base: int, group_total: int) -> Cell:
    """A rate: "—" when the group or the rate's own base is under K_MIN (or the base is 0)."""
    if group_total < K_MIN or base < K_MIN:
        return HIDDEN_RATE
    return Cell(f"{round(100 * part / base)}%")


@dataclass
class UnitRow:
    org_id: int
    name: str
    kind: str
    received: Cell
    on_time: Cell
    on_time_rate: Cell
    satisfaction_rate: Cell
    summaries: list[dict[str, Any]] = field(default_factory=list)


def unit_row(org: Org, figures: Any | None) -> UnitRow:
    """A unit's protected figures from its `Figures` (None: no case in the period)."""
    received = figures.received if figures else 0
    answered = figures.answered if figures else 0
    on_time = figures.answered_on_time if figures else 0
    rated = figures.rated if figures else 0
    satisfied = (figures.satisfied + figures.basically_satisfied) if figures else 0
    return UnitRow(
        org_id=org.id,
        name=org.name,
        kind=org.kind,
        received=count_cell(received, received),
        on_time=count_cell(on_time, received),
        on_time_rate=rate_cell(on_time, answered, received),
        satisfaction_rate=rate_cell(satisfied, rated, received),
    )


def period(today: date) -> tuple[date, date]:
    """The last MONTHS full months before `today`'s month: (first day, first day after), Shanghai."""
    end = today.replace(day=1)
    months = end.year * 12 + end.month - 1 - MONTHS
    return date(months // 12, months % 12 + 1, 1), end


def public_units(session: Session) -> dict[int, list[Org]]:
    """Root org id → its active direct children that are townships or departments (tree order)."""
    roots = session.scalars(select(Org.id).where(Org.parent_id.is_(None))).all()
    children = session.scalars(
        select(Org)
        .where(Org.parent_id.in_(roots), Org.kind.in_([k.value for k in PUBLIC_UNIT_KINDS]), Org.active)
        .order_by(Org.id)
    ).all()
    out: dict[int, list[Org]] = {root: [] for root in roots}
    for org in children:
        out[org.parent_id].append(org)
    return out


def public_unit_of(session: Session, org: Org | None) -> Org | None:
    """The township or department a (subject) org is counted in: its ancestor one below a root."""
    if org is None:
        return None
    ids = [int(part) for part in org.path.strip("/").split("/") if part]
    if len(ids) < 2:
        return None  # a root (the commission: subject unknown) is no township or department
    unit = session.get(Org, ids[1])
    return unit if unit is not None and unit.kind in PUBLIC_UNIT_KINDS else None


def _figures(session: Session, start: date, end: date, root_id: int) -> dict[int, Any]:
    """The statistics summary's figures per direct child of `root_id` (keys: org ids)."""
    from supervise.stats.services import figures_by

    found = figures_by(session, start=start, end=end, group="child_org", within_org_id=root_id)
    return {getattr(key, "id", key): value for key, value in found.items()}


def public_page(session: Session, today: date) -> dict[str, Any]:
    """Everything /public shows: the period, townships and departments with protected figures and
    their approved summaries. Nothing else of a case is read than its month, category and unit."""
    start, end = period(today)
    rows: dict[int, UnitRow] = {}
    for root_id, units in public_units(session).items():
        if not units:
            continue
        figures = _figures(session, start, end, root_id)
        for org in units:
            rows[org.id] = unit_row(org, figures.get(org.id))
    for item in published(session):
        row = rows.get(item["unit_id"])
        if row is not None and len(row.summaries) < SUMMARIES_PER_UNIT:
            row.summaries.append(item)
    ordered = list(rows.values())
    return {
        "start": start,
        "last_month": date(end.year - (end.month == 1), (end.month - 2) % 12 + 1, 1),
        "k": K_MIN,
        "townships": [r for r in ordered if r.kind == OrgKind.TOWNSHIP],
        "departments": [r for r in ordered if r.kind == OrgKind.DEPARTMENT],
    }


def published(session: Session) -> list[dict[str, Any]]:
    """Approved, not withdrawn summaries of cases still closed and publishable, newest approval
    first: text, month of closing, category, unit id. No name, number or finer date."""
    rows = session.scalars(
        select(PublishedSummary)
        .join(Case, Case.id == PublishedSummary.case_id)
        .where(
            PublishedSummary.approved_at.is_not(None),
            PublishedSummary.withdrawn_at.is_(None),
            Case.status == Status.CLOSED,  # a case reopened after approval drops off the page
            Case.kind.in_([k.value for k in PUBLISHABLE_KINDS]),
        )
        .order_by(PublishedSummary.approved_at.desc(), PublishedSummary.id.desc())
        .limit(500)
    ).all()
    out = []
    for summary in rows:
        case = summary.case
        unit = public_unit_of(session, case.subject_org)
        if unit is None or case.closed_at is None:
            continue
        closed = case.closed_at.astimezone(SHANGHAI)
        out.append(
            {
                "text": summary.text,
                "year": closed.year,
                "month": closed.month,
                "category": case.category.name,
                "category_en": case.category.name_en or case.category.name,
                "unit_id": unit.id,
            }
        )
    return out


# -- writing, approving and withdrawing summaries ---------------------------------------------------

NOT_PUBLISHABLE = N_("只有已办结的作风效能诉求或批评建议可以公开摘要；检举控告件不公开")
NO_UNIT = N_("本件的被反映单位不属于任何乡镇或部门，无法公开")
ALREADY = N_("本件已有待审核或已公开的摘要；如需修改，请先撤回")


def may_write(actor: Actor, case: Case) -> bool:
    """Discipline staff of the body that owns the case (and supervisors above it) may write one."""
    return (
        actor.kind == "staff"
        and actor.at_body
        and actor.has(Role.INTAKE, Role.HANDLER, Role.SUPERVISOR)
        and actor.sees(case)
    )


def may_approve(actor: Actor, case: Case) -> bool:
    """A supervisor of the owning body or of a body above it (a unit never: it is not a body)."""
    owner = case.owner
    return (
        actor.kind == "staff"
        and actor.at_body
        and actor.has(Role.SUPERVISOR)
        and owner is not None
        and actor.covers(owner)
    )


def publishable(session: Session, case: Case) -> str | None:
    """Why the case cannot have a summary (a message id), or None."""
    if case.status != Status.CLOSED or case.kind not in PUBLISHABLE_KINDS:
        return NOT_PUBLISHABLE
    if public_unit_of(session, case.subject_org) is None:
        return NO_UNIT
    return None


def current(session: Session, case: Case) -> PublishedSummary | None:
    """The case's pending or published summary (at most one), if any."""
    return session.scalar(
        select(PublishedSummary)
        .where(PublishedSummary.case_id == case.id, PublishedSummary.withdrawn_at.is_(None))
        .order_by(PublishedSummary.id.desc())
        .limit(1)
    )


def _check_text(text: str | None, case: Case) -> str:
    text = " ".join((text or "").split())
    if len(text) < TEXT_MIN or len(text) > TEXT_MAX:
        raise InvalidInput(N_("摘要应为10至300字"), {"text": [N_("摘要应为10至300字")]})
    run = 0
    for ch in text:
        run = run + 1 if ch.isdigit() else 0
        if run >= 7:
            raise InvalidInput(
                N_("摘要不能含有电话、证件号等长数字"), {"text": [N_("摘要不能含有电话、证件号等长数字")]}
            )
    if case.tracking_no in text.upper().replace(" ", ""):
        raise InvalidInput(N_("摘要不能含有查询编号"), {"text": [N_("摘要不能含有查询编号")]})
    for source in (case.content, case.feedback_text, case.subject, case.location):
        source = "".join((source or "").split())
        flat = "".join(text.split())
        if any(flat[i : i + COPIED_RUN] in source for i in range(0, max(0, len(flat) - COPIED_RUN + 1))):
            raise InvalidInput(
                N_("摘要须重新撰写，不能照抄群众反映内容或答复"),
                {"text": [N_("摘要须重新撰写，不能照抄群众反映内容或答复")]},
            )
    return text


def write(session: Session, case: Case, actor: Actor, text: str | None) -> PublishedSummary:
    """拟写公开摘要: a draft awaiting a second person's approval (audited)."""
    if not may_write(actor, case):
        raise Forbidden(N_("你无权为本件拟写公开摘要"))
    reason = publishable(session, case)
    if reason:
        raise Conflict(reason)
    if current(session, case) is not None:
        raise Conflict(ALREADY)
    summary = PublishedSummary(case_id=case.id, text=_check_text(text, case), written_by_id=actor.user_id)
    session.add(summary)
    session.flush()
    audit.record(
        "summary_written",
        user=session.get(User, actor.user_id),
        case_id=case.id,
        detail={"summary": summary.id},
    )
    return summary


def approve(session: Session, summary: PublishedSummary, actor: Actor) -> PublishedSummary:
    """审核公开: the summary appears on /public. Never by the person who wrote it (四眼原则)."""
    case = summary.case
    if not may_approve(actor, case):
        raise Forbidden(N_("只有主办机关或上级机关的审核人可以批准公开"))
    if summary.state != "pending":
        raise Conflict(N_("该摘要不在待审核状态"))
    if summary.written_by_id == actor.user_id:
        raise Forbidden(N_("拟稿人不能批准公开自己拟写的摘要（四眼原则）；请由另一位审核人批准"))
    reason = publishable(session, case)
    if reason:
        raise Conflict(reason)
    summary.approved_by_id, summary.approved_at = actor.user_id, utcnow()
    audit.record(
        "summary_approved",
        user=session.get(User, actor.user_id),
        case_id=case.id,
        detail={"summary": summary.id},
    )
    return summary


def withdraw(session: Session, summary: PublishedSummary, actor: Actor) -> PublishedSummary:
    """撤回: gone from /public at once (a pending draft is withdrawn the same way). Audited."""
    case = summary.case
    if not (may_write(actor, case) or may_approve(actor, case)):
        raise Forbidden(N_("你无权撤回该摘要"))
    if summary.withdrawn_at is not None:
        raise Conflict(N_("该摘要已撤回"))
    was = summary.state
    summary.withdrawn_by_id, summary.withdrawn_at = actor.user_id, utcnow()
    audit.record(
        "summary_withdrawn",
        user=session.get(User, actor.user_id),
        case_id=case.id,
        detail={"summary": summary.id, "was": f"summary_{was}"},
    )
    return summary


def summary_for(session: Session, summary_id: int, actor: Actor) -> PublishedSummary:
    """A summary whose case the actor sees; otherwise 404 as if absent."""
    summary = session.get(PublishedSummary, summary_id)
    if summary is None or not actor.at_body or not actor.sees(summary.case):
        raise NotFound(N_("找不到该摘要"))
    return summary


def staff_list(session: Session, actor: Actor) -> dict[str, list[PublishedSummary]]:
    """/staff/summaries: the summaries of cases in the actor's scope, by state, newest first."""
    query = select(PublishedSummary).join(Case, Case.id == PublishedSummary.case_id)
    if actor.oversees_subtree:
        query = query.join(Org, Org.id == Case.owner_org_id).where(
            Org.path.startswith(actor.org_path or "\0")
        )
    else:
        query = query.where(Case.owner_org_id == actor.org_id)
    rows = session.scalars(query.order_by(PublishedSummary.id.desc()).limit(300)).all()
    out: dict[str, list[PublishedSummary]] = {"pending": [], "published": [], "withdrawn": []}
    for row in rows:
        out[row.state].append(row)
    return out


def case_block(session: Session, case: Case, actor: Actor) -> dict[str, Any] | None:
    """The case page's 公开摘要 block, or None where it has nothing to offer this reader."""
    if not actor.at_body or case.status != Status.CLOSED:
        return None
    summary = current(session, case)
    can_write = may_write(actor, case)
    if summary is None and not can_write:
        return None
    return {
        "summary": summary,
        "reason": publishable(session, case),
        "may_write": can_write and summary is None,
        "may_approve": summary is not None
        and summary.state == "pending"
        and may_approve(actor, case)
        and summary.written_by_id != actor.user_id,
        "may_withdraw": summary is not None and (can_write or may_approve(actor, case)),
    }


def stamp(moment: datetime | None) -> date | None:
    return moment.astimezone(SHANGHAI).date() if moment else None
