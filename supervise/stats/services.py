"""Statistics (统计分析): the monthly summary table's refresh, and the figures read from it.

Definitions (printed as footnotes with every table, see FOOTNOTES):

- A case counts in the month it was received (Asia/Shanghai), with everything that happened to it
  since (its answer, rating, reopening…), for its subject unit (被反映单位; the owning body when the
  case names none) and its owning body. Merged duplicates (重复件合并) are not counted as received.
- answered: an answer was published, i.e. a response clock was met (a case reopened and not yet
  answered again keeps its first answer).
- answered on time: answered, and every response clock it met (答复期限, 延期, 重办) was met by its
  due time — the same test the weekly report applies per clock (`met_at <= due_at`,
  reports/weekly.py `_responded`), so a case reopened and then answered late counts as late.
- working days to answer: working days after the day of receipt up to the day of the first answer,
  on the official calendar (deadlines/calendar.py `working_days_between`), averaged over the
  answered cases.
- reopened: reopened at least once (`reopen_count > 0`); escalated (督办): at least one escalation
  row, or an escalation level above 0.
- rates: on-time = on time ÷ answered; satisfaction = (satisfied + basically satisfied) ÷ rated;
  reopen = reopened ÷ answered. None (shown "—") when the base is 0.

The summary (stats/models.py) is rebuilt a month at a time — DELETE then INSERT … SELECT … GROUP BY
in one transaction — for every month some case of which changed (`cases.updated_at`) since the
last run's mark, kept in `periodic_runs`. Rebuilding a month twice gives the same rows, so the job
may overlap its previous window (it does, by MARK_OVERLAP) and may run twice at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session, aliased

from supervise.cases.models import Case, Category
from supervise.cases.states import Rating, Status
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import SHANGHAI, get_calendar, local_date
from supervise.deadlines.models import RESPONSE_KINDS, CaseClock, Escalation
from supervise.i18n import N_
from supervise.orgs.models import BODY_KINDS, Org
from supervise.reports.models import PeriodicRun
from supervise.stats.models import COUNT_COLUMNS, StatsMonthly

JOB = "stats-refresh"
MARK = "mark"  # periodic_runs.period of the row whose claimed_at is the last run's mark
# A transaction that started before the mark may commit after it with an earlier updated_at:
# every run looks this far behind its mark too (a rebuilt month is the same rows again).
MARK_OVERLAP = timedelta(minutes=10)
GROUPS = ("subject_unit", "category", "channel", "kind", "month", "quarter", "year", "child_org")
HOT_SPOTS = 10
UNCLASSIFIED = N_("未定性")

FOOTNOTES = [
    N_(
        "统计口径：诉求件按收件月份（北京时间）计入，其答复、评价、重办、督办随收件月份统计；"
        "按被反映单位（未指明单位的计入主办机构）和主办纪检监察机构归集。重复件合并后不重复计数。"
    ),
    N_("已答复：已发布首次答复的件数。按期答复：已答复，且所有答复期限（含延期、重办）均在届满前答复。"),
    N_("平均答复用时：收件次日至首次答复日的工作日数（按法定节假日和调休安排），对已答复件求平均。"),
    N_("满意率：（满意 + 基本满意）÷ 评价件数。按期答复率：按期答复 ÷ 已答复。重办率：重办件 ÷ 已答复。"),
    N_("重办：至少重办过一次的件数。督办：至少被督办（一级或二级）过一次的件数。基数为 0 时不计算比率。"),
    N_("统计数据由后台每 10 分钟更新，最近更新时间见页首。"),
]

LABELS = {
    "received": N_("收件"),
    "answered": N_("已答复"),
    "answered_on_time": N_("按期答复"),
    "on_time_rate": N_("按期答复率"),
    "working_days_to_answer": N_("平均答复用时（工作日）"),
    "rated": N_("评价数"),
    "satisfied": N_("满意"),
    "basically_satisfied": N_("基本满意"),
    "unsatisfied": N_("不满意"),
    "satisfaction_rate": N_("满意率"),
    "reopened": N_("重办"),
    "reopen_rate": N_("重办率"),
    "escalated": N_("督办"),
}
# The columns every table shows, in order (figures and rates).
COLUMNS = tuple(LABELS)
RATES = ("on_time_rate", "satisfaction_rate", "reopen_rate")


@dataclass
class Figures:
    """One group's figures over a period; rates None when their base is 0 (the shared interface)."""

    received: int = 0
    answered: int = 0
    answered_on_time: int = 0
    rated: int = 0
    satisfied: int = 0
    basically_satisfied: int = 0
    unsatisfied: int = 0
    reopened: int = 0
    escalated: int = 0
    # The sum behind the average (additive, so groups can be added up).
    answer_working_days: int = field(default=0, repr=False)

    @property
    def working_days_to_answer(self) -> float | None:
        return self.answer_working_days / self.answered if self.answered else None

    @property
    def on_time_rate(self) -> float | None:
        return self.answered_on_time / self.answered if self.answered else None

    @property
    def satisfaction_rate(self) -> float | None:
        return (self.satisfied + self.basically_satisfied) / self.rated if self.rated else None

    @property
    def reopen_rate(self) -> float | None:
        return self.reopened / self.answered if self.answered else None

    def __add__(self, other: Figures) -> Figures:
        return Figures(**{name: getattr(self, name) + getattr(other, name) for name in _FIELDS})

    def as_dict(self) -> dict[str, Any]:
        """Every column of the tables (counts and rates), as the API and the exports give them."""
        return {name: getattr(self, name) for name in COLUMNS}


_FIELDS = tuple(c for c in COUNT_COLUMNS)


# -- months and periods --------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """Every first-of-month from `first`'s month to `last`'s month, both included."""
    out, month = [], month_start(first)
    while month <= last:
        out.append(month)
        month = next_month(month)
    return out


def _utc(day: date) -> datetime:
    """Local midnight (Asia/Shanghai) of `day`, in UTC."""
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(UTC)


def quarter_of(month: date) -> str:
    return f"{month.year}-Q{(month.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class Period:
    """A month (2026-11), a quarter (2026-Q4) or a year (2026): first days of months, end exclusive."""

    kind: str  # month | quarter | year
    label: str
    start: date
    end: date

    @classmethod
    def parse(cls, kind: str, text: str) -> Period:
        text = text.strip().upper()
        try:
            if kind == "month":
                year, month = (int(p) for p in text.split("-"))
                start = date(year, month, 1)
                return cls(kind, f"{year}-{month:02d}", start, next_month(start))
            if kind == "quarter":
                year, quarter = text.split("-Q")
                q = int(quarter)
                if not 1 <= q <= 4:
                    raise ValueError
                start = date(int(year), 3 * q - 2, 1)
                return cls(kind, f"{int(year)}-Q{q}", start, next_month(next_month(next_month(start))))
            if kind == "year":
                year = int(text)
                return cls(kind, str(year), date(year, 1, 1), date(year + 1, 1, 1))
        except ValueError:
            pass
        raise ValueError(f"统计期格式不正确：{kind} {text!r}")

    @classmethod
    def current(cls, kind: str, today: date) -> Period:
        if kind == "month":
            return cls.parse(kind, f"{today.year}-{today.month}")
        if kind == "quarter":
            return cls.parse(kind, f"{today.year}-Q{(today.month - 1) // 3 + 1}")
        return cls.parse("year", str(today.year))


# -- refreshing the summary ------------------------------------------------------------------------

_RESPONSE = [k.value for k in RESPONSE_KINDS]


def _month_rows_select(month: date):
    """The INSERT … SELECT of one month: the cases received in it, grouped by the dimensions."""
    start, end = _utc(month), _utc(next_month(month))
    met = and_(CaseClock.case_id == Case.id, CaseClock.kind.in_(_RESPONSE), CaseClock.outcome == "met")
    answered = exists().where(met)
    on_time = and_(answered, ~exists().where(met, CaseClock.met_at > CaseClock.due_at))
    escalated = or_(Case.escalation_level > 0, exists().where(Escalation.case_id == Case.id))

    def count_if(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    subject = func.coalesce(Case.subject_org_id, Case.owner_org_id, Case.org_id)
    owner = func.coalesce(Case.owner_org_id, Case.org_id)
    kind = func.coalesce(Case.kind, "")
    dims = (subject, owner, Case.category_id, Case.channel, kind)
    return (
        select(
            literal(month).label("month"),
            *dims,
            func.count(),
            count_if(answered),
            count_if(on_time),
            literal(0),  # answer_working_days: filled from Python (the official calendar)
            count_if(Case.rating.is_not(None)),
            count_if(Case.rating == Rating.SATISFIED.value),
            count_if(Case.rating == Rating.BASICALLY_SATISFIED.value),
            count_if(Case.rating == Rating.UNSATISFIED.value),
            count_if(Case.reopen_count > 0),
            count_if(escalated),
        )
        .where(_counted(), Case.received_at >= start, Case.received_at < end)
        .group_by(*dims)
    )


def _counted():
    """Merged duplicates are counted once, as the case they were merged into."""
    return and_(Case.merged_into_id.is_(None), Case.status != Status.MERGED.value)


def refresh_month(session: Session, month: date) -> int:
    """Rebuild one month's summary rows (no commit: the caller's transaction); returns the row count.

    Working days to answer need the official calendar (holidays, 调休), which lives in Python: the
    answered cases' (dimensions, received, answered) are read and summed per row afterwards."""
    dims = ("subject_org_id", "owner_org_id", "category_id", "channel", "kind")
    session.execute(delete(StatsMonthly).where(StatsMonthly.month == month))
    session.execute(
        insert(StatsMonthly).from_select(["month", *dims, *COUNT_COLUMNS], _month_rows_select(month))
    )
    start, end = _utc(month), _utc(next_month(month))
    calendar = get_calendar(session)
    sums: dict[tuple, int] = defaultdict(int)
    first_answer = (
        select(func.min(CaseClock.met_at))
        .where(CaseClock.case_id == Case.id, CaseClock.kind.in_(_RESPONSE), CaseClock.outcome == "met")
        .scalar_subquery()
    )
    answered = select(
        func.coalesce(Case.subject_org_id, Case.owner_org_id, Case.org_id),
        func.coalesce(Case.owner_org_id, Case.org_id),
        Case.category_id,
        Case.channel,
        func.coalesce(Case.kind, ""),
        Case.received_at,
        first_answer,
    ).where(_counted(), Case.received_at >= start, Case.received_at < end, first_answer.is_not(None))
    for *key, received_at, answered_at in session.execute(answered):
        if answered_at.tzinfo is None:  # SQLite hands a subquery's datetime back as naive UTC text
            answered_at = answered_at.replace(tzinfo=UTC)
        days = calendar.working_days_between(local_date(received_at), local_date(answered_at))
        sums[tuple(key)] += max(days, 0)
    if sums:
        # Core, not the ORM: one UPDATE executed for many parameter sets, matched by dimensions.
        t = StatsMonthly.__table__
        session.execute(
            update(t)
            .where(
                t.c.month == month,
                t.c.subject_org_id == bindparam("s"),
                t.c.owner_org_id == bindparam("o"),
                t.c.category_id == bindparam("c"),
                t.c.channel == bindparam("ch"),
                t.c.kind == bindparam("k"),
            )
            .values(answer_working_days=bindparam("wd")),
            [{"s": s, "o": o, "c": c, "ch": ch, "k": k, "wd": wd} for (s, o, c, ch, k), wd in sums.items()],
        )
    return (
        session.scalar(select(func.count()).select_from(StatsMonthly).where(StatsMonthly.month == month)) or 0
    )


def _mark(session: Session) -> datetime | None:
    return session.scalar(
        select(PeriodicRun.claimed_at).where(PeriodicRun.job == JOB, PeriodicRun.period == MARK)
    )


def changed_months(session: Session, since: datetime | None) -> list[date]:
    """The months (of receipt) of the cases changed after `since` (every month when None)."""
    changed = Case.updated_at > since if since is not None else literal(True)
    first, last = session.execute(
        select(func.min(Case.received_at), func.max(Case.received_at)).where(changed)
    ).one()
    if first is None:
        return []
    months = months_between(local_date(first), local_date(last))
    if since is None or len(months) <= 2:
        return months
    # Between the first and last changed month, only those with a change (one indexed probe each).
    return [
        m
        for m in months
        if session.scalar(
            select(
                exists().where(changed, Case.received_at >= _utc(m), Case.received_at < _utc(next_month(m)))
            )
        )
    ]


def refresh(session: Session, *, everything: bool = False, now: datetime | None = None) -> list[date]:
    """Rebuild the months whose cases changed since the last run (all of them with `everything`),
    each in its own transaction, then move the mark; returns the months rebuilt."""
    now = now or utcnow()
    mark = None if everything else _mark(session)
    months = changed_months(session, mark - MARK_OVERLAP if mark else None)
    if everything:  # months no case is in any more (none today: cases are never deleted)
        session.execute(delete(StatsMonthly).where(StatsMonthly.month.not_in(months or [date(1, 1, 1)])))
    for month in months:
        refresh_month(session, month)
        session.commit()
    row = session.get(PeriodicRun, (JOB, MARK))
    if row is None:
        session.add(PeriodicRun(job=JOB, period=MARK, claimed_at=now))
    elif row.claimed_at < now:
        row.claimed_at = now
    session.commit()
    return months


def last_refreshed(session: Session) -> datetime | None:
    return _mark(session)


# -- reading the summary -------------------------------------------------------------------------


def _sums():
    return [func.coalesce(func.sum(getattr(StatsMonthly, name)), 0) for name in COUNT_COLUMNS]


def _figures(row) -> Figures:
    return Figures(**{name: int(value) for name, value in zip(COUNT_COLUMNS, row, strict=True)})


def figures_by(
    session: Session,
    *,
    start: date,
    end: date,
    group: str,
    within_org_id: int | None = None,
    filters: dict | None = None,
) -> dict[Any, Figures]:
    """Figures of the cases received in [start, end) (first days of months), by `group`:

    subject_unit → org id; category → category id; channel, kind → their value ('' unclassified);
    month → first day of month; quarter → "2026-Q4"; year → 2026; child_org → the direct child of
    `within_org_id` the subject unit is at or below (the org itself for its own cases).

    `within_org_id` keeps the subject units at or below that org. `filters` (all optional):
    category_id, channel, kind, owner_org_ids (the caller's scope: the owning bodies it may see;
    None is every body). One GROUP BY over the summary table.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}")
    filters = filters or {}
    subject = aliased(Org)
    stmt = select().select_from(StatsMonthly).where(StatsMonthly.month >= start, StatsMonthly.month < end)
    if filters.get("category_id") is not None:
        stmt = stmt.where(StatsMonthly.category_id == filters["category_id"])
    if filters.get("channel"):
        stmt = stmt.where(StatsMonthly.channel == filters["channel"])
    if filters.get("kind") is not None:
        stmt = stmt.where(StatsMonthly.kind == filters["kind"])
    if filters.get("owner_org_ids") is not None:
        stmt = stmt.where(StatsMonthly.owner_org_id.in_(filters["owner_org_ids"]))
    within = session.get(Org, within_org_id) if within_org_id is not None else None
    if within is not None:
        stmt = stmt.join(subject, subject.id == StatsMonthly.subject_org_id).where(
            subject.path.startswith(within.path, autoescape=True)
        )
    if group == "child_org":
        if within is None:
            raise ValueError("child_org needs within_org_id")
        child = aliased(Org)
        # The subject's ancestor one level below `within`: its path is within.path + "<id>/".
        stmt = stmt.outerjoin(
            child,
            and_(
                child.parent_id == within.id,
                subject.path.startswith(child.path),  # paths are digits and slashes: no escaping
            ),
        )
        key = func.coalesce(child.id, within.id)
    elif group in ("month", "quarter", "year"):
        key = StatsMonthly.month
    else:
        key = {
            "subject_unit": StatsMonthly.subject_org_id,
            "category": StatsMonthly.category_id,
            "channel": StatsMonthly.channel,
            "kind": StatsMonthly.kind,
        }[group]
    rows = session.execute(stmt.add_columns(key, *_sums()).group_by(key))
    out: dict[Any, Figures] = {}
    for k, *values in rows:
        if group == "quarter":
            k = quarter_of(k)
        elif group == "year":
            k = k.year
        out[k] = out[k] + _figures(values) if k in out else _figures(values)
    return out


def total(figures: dict[Any, Figures]) -> Figures:
    result = Figures()
    for f in figures.values():
        result = result + f
    return result


def hot_spots(
    session: Session,
    *,
    start: date,
    end: date,
    within_org_id: int | None = None,
    filters: dict | None = None,
    limit: int = HOT_SPOTS,
) -> list[tuple[int, Figures]]:
    """The units complained about most in the period (not the bodies), most first, with their rates."""
    by_unit = figures_by(
        session, start=start, end=end, group="subject_unit", within_org_id=within_org_id, filters=filters
    )
    bodies = set(session.scalars(select(Org.id).where(Org.kind.in_([k.value for k in BODY_KINDS]))))
    ranked = sorted(
        ((org_id, f) for org_id, f in by_unit.items() if org_id not in bodies and f.received),
        key=lambda item: (-item[1].received, item[0]),
    )
    return ranked[:limit]


# -- the view the page, the API and the XLSX share -----------------------------------------------------


def _labels_for(session: Session, group: str, keys) -> dict[Any, str]:
    """A display name for each key: org or category names, channel and kind labels (their msgids)."""
    from supervise.cases.labels import CHANNEL_LABELS, KIND_LABELS

    if group in ("subject_unit", "child_org"):
        return dict(session.execute(select(Org.id, Org.name).where(Org.id.in_(list(keys)))).all())
    if group == "category":
        return dict(
            session.execute(select(Category.id, Category.name).where(Category.id.in_(list(keys)))).all()
        )
    if group == "channel":
        return {k: CHANNEL_LABELS.get(k, k) for k in keys}
    if group == "kind":
        return {k: KIND_LABELS.get(k, UNCLASSIFIED) for k in keys}
    if group == "month":
        return {k: f"{k.year}-{k.month:02d}" for k in keys}
    return {k: str(k) for k in keys}


def view(
    session: Session,
    *,
    period: Period,
    group: str,
    granularity: str,
    within_org_id: int,
    filters: dict,
    translate=lambda s: s,
) -> dict[str, Any]:
    """Everything /staff/stats shows, as plain data: the page, the API and the XLSX read this."""
    by = figures_by(
        session, start=period.start, end=period.end, group=group, within_org_id=within_org_id, filters=filters
    )
    names = _labels_for(session, group, by.keys())
    org_codes: dict[int, str] = {}
    has_children: set[int] = set()
    if group in ("subject_unit", "child_org") and by:
        org_codes = dict(session.execute(select(Org.id, Org.code).where(Org.id.in_(list(by)))).all())
        has_children = set(
            session.scalars(select(Org.parent_id).where(Org.parent_id.in_(list(by))).distinct())
        )
    rows = [
        {
            "key": k.isoformat() if isinstance(k, date) else k,
            "label": translate(names.get(k, str(k))),
            "org_code": org_codes.get(k) if k != within_org_id else None,
            "drill": k in has_children and k != within_org_id,
            **f.as_dict(),
        }
        for k, f in by.items()
    ]
    rows.sort(
        key=lambda r: (
            (-r["received"], str(r["label"])) if group not in ("month", "quarter", "year") else r["key"]
        )
    )
    trend = figures_by(
        session,
        start=period.start,
        end=period.end,
        group=granularity,
        within_org_id=within_org_id,
        filters=filters,
    )
    trend_rows = [
        {"key": (f"{k.year}-{k.month:02d}" if isinstance(k, date) else str(k)), **f.as_dict()}
        for k, f in sorted(trend.items())
    ]
    spots = hot_spots(
        session, start=period.start, end=period.end, within_org_id=within_org_id, filters=filters
    )
    spot_names = dict(
        session.execute(select(Org.id, Org.name).where(Org.id.in_([i for i, _ in spots]))).all()
    )
    within = session.get(Org, within_org_id)
    return {
        "period": {
            "kind": period.kind,
            "label": period.label,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        },
        "group": group,
        "granularity": granularity,
        "org": {
            "id": within.id,
            "code": within.code,
            "name": within.name,
            "parent_code": within.parent.code if within.parent is not None else None,
        },
        "rows": rows,
        "total": total(by).as_dict(),
        "trend": trend_rows,
        "hot_spots": [{"org_id": i, "label": spot_names.get(i, str(i)), **f.as_dict()} for i, f in spots],
        "refreshed_at": (last_refreshed(session).isoformat() if last_refreshed(session) else None),
    }


# -- who sees what --------------------------------------------------------------------------------


def owners_for_reader(session: Session, actor, refusal: str) -> list[int] | None:
    """The owning bodies whose cases a reader's figures count (None: every body): supervisors and
    admins of a discipline body, their subtree (as their queues); anyone else is refused with
    `refusal` — a unit never reads counts of the complaints about it (DESIGN.md §2a). Statistics
    and the assessment both ask here."""
    from supervise.cases.queries import subtree_ids
    from supervise.errors import Forbidden
    from supervise.staff.models import Role

    if not actor.at_body or not actor.has(Role.SUPERVISOR, Role.ADMIN):
        raise Forbidden(refusal)
    return subtree_ids(session, actor)


def scope(session: Session, actor, org_code: str | None) -> tuple[Org, list[int] | None]:
    """(the org to drill into, the owning bodies whose cases count) for a reader (DESIGN.md §2a).

    Only supervisors and admins of a discipline body read statistics, of the cases the bodies in
    their subtree own (as their queues); a unit's accounts read none, since the counts of
    complaints about a unit are its complainants' data. Drilling starts at the top of the tree (a
    township 纪委 hangs below the township it supervises) and may go anywhere: the owner scope
    already keeps out what the reader may not count."""
    from supervise.errors import NotFound

    owners = owners_for_reader(session, actor, "统计分析仅供纪检监察机构的监督人员和管理员查看")
    if org_code:
        org = session.scalar(select(Org).where(Org.code == org_code))
        if org is None:
            raise NotFound("找不到该单位")
        return org, owners
    top = int(actor.org_path.strip("/").split("/")[0])
    return session.get(Org, top), owners


def for_reader(session: Session, actor, args: dict[str, Any], today: date, translate=lambda s: s) -> dict:
    """The page's, the API's and the XLSX's figures for a reader and the parsed StatsQuerySchema."""
    from supervise.errors import InvalidInput, NotFound

    within, owners = scope(session, actor, args.get("org"))
    try:
        period = (
            Period.parse(args["period"], args["which"])
            if args.get("which")
            else Period.current(args["period"], today)
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), {"which": [str(exc)]}) from None
    filters: dict[str, Any] = {"owner_org_ids": owners, "channel": args.get("channel")}
    if args.get("kind"):
        filters["kind"] = "" if args["kind"] == "none" else args["kind"]
    if args.get("category"):
        category_id = session.scalar(select(Category.id).where(Category.code == args["category"]))
        if category_id is None:
            raise NotFound("找不到该类别")
        filters["category_id"] = category_id
    result = view(
        session,
        period=period,
        group=args.get("group") or "child_org",
        granularity=args.get("granularity") or "month",
        within_org_id=within.id,
        filters=filters,
        translate=translate,
    )
    result["filters"] = {k: args.get(k) for k in ("category", "channel", "kind")}
    return result
