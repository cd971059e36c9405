"""The figures of the weekly report (每周超期件通报), aggregated in SQL per org, rolled up the tree.

A week is an ISO week, Monday 00:00 to Sunday 24:00 Asia/Shanghai. Every figure is one GROUP BY
over cases, clocks, escalations or events, grouped by the case's owning discipline body; the tree
roll-up then adds bodies, not cases. Only the overdue list comes back row by row, because the
report prints it. What each figure means is in FOOTNOTES, printed with every report.

Decision (DESIGN.md §2a): a figure counts for the discipline body that owns the case when the
report is built — the body whose deadline it is, to which a case late at a unit it was transferred
to is escalated, and whose supervisors get the report. A unit (department, township government,
village) has no row of its own: it answers to its body for what was transferred to it, and a unit
must never see the list of complaints (检举控告 included) filed about it. The rows are the bodies,
each below the body above it (a township's 纪委 below the county, not below the township).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select, text
from sqlalchemy.orm import Session

from supervise.cases.models import Case, Category, Event
from supervise.cases.states import Rating
from supervise.deadlines.calendar import SHANGHAI, end_of_day_utc, local_date
from supervise.deadlines.clocks import Clocks
from supervise.deadlines.models import RESPONSE_KINDS, CaseClock, ClockKind, Escalation
from supervise.i18n import N_
from supervise.orgs.models import Org
from supervise.orgs.routing import OrgTree
from supervise.staff.models import User

TREND_WEEKS = 8
DUE_SOON_DAYS = 3

# The counts of one org (own) or one subtree (total); rates are derived from them.
COUNTS = (
    "received",
    "accepted",
    "responded_on_time",
    "responded_late",
    "open_overdue",
    "overdue_working_days",
    "due_soon",
    "escalated_level1",
    "escalated_level2",
    "reopened",
    "rated",
    "satisfied",
)

LABELS = {
    "received": N_("本周收件"),
    "accepted": N_("本周受理"),
    "responded_on_time": N_("按期答复"),
    "responded_late": N_("超期答复"),
    "open_overdue": N_("周末超期未答复"),
    "overdue_working_days": N_("累计超期工作日"),
    "due_soon": N_("3个工作日内到期"),
    "escalated_level1": N_("一级督办"),
    "escalated_level2": N_("二级督办"),
    "reopened": N_("重办"),
    "rated": N_("评价数"),
    "satisfied": N_("满意及基本满意"),
    "on_time_rate": N_("按期答复率"),
    "satisfaction_rate": N_("满意率"),
}

FOOTNOTES = [
    N_(
        "统计周期：所示周的周一 00:00 至周日 24:00（北京时间）；各项按生成通报时主办诉求件的纪检监察机构统计"
        "（转办给单位办理的件计入转办它的机构），“合计”含下级纪检监察机构。"
    ),
    N_("本周收件：本周内提交的诉求件数。本周受理：本周内执行“受理”的件数（含转办后新机构受理）。"),
    N_(
        "按期答复 / 超期答复：本周内发布答复、结束答复期限的件数，答复时间不晚于 / 晚于期限"
        "（15个工作日，延期、重办按新期限）。"
    ),
    N_(
        "周末超期未答复：至周日 24:00 答复期限已过仍未答复的件数；"
        "累计超期工作日为这些件超过期限的工作日之和。"
    ),
    N_("3个工作日内到期：至周日 24:00 尚未答复、期限在其后3个工作日内届满的件数。"),
    N_("一级 / 二级督办：本周内因期限届满（答复、受理转办、实名受理告知）报上级、再上一级督办的次数。"),
    N_("重办：本周内因群众不满意或领导决定重新办理的件数。"),
    N_("满意率：本周内评价为“满意”“基本满意”的件数 ÷ 本周评价件数。"),
    N_("按期答复率：按期答复 ÷（按期答复 + 超期答复）。无答复或无评价时不计算比率。"),
    N_(
        "按期答复率低于{on_time:.0%}或满意率低于{satisfaction:.0%}的单位标记为“需关注”；"
        "按期答复与超期答复合计、或评价件数少于{min_sample}件的，比率照常列出并注明“样本不足”，"
        "不据以标记。"
    ),
]
# The count each rate is a share of: below the minimum sample a rate is shown, marked, not flagged.
RATE_BASES = {"on_time_rate": ("responded_on_time", "responded_late"), "satisfaction_rate": ("rated",)}
THIN = N_("样本不足")


@dataclass(frozen=True)
class Week:
    """An ISO week (2026-W47), Monday 00:00 to Sunday 24:00 Asia/Shanghai."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        try:
            year, number = text.strip().upper().split("-W")
            week = cls(int(year), int(number))
            week.monday  # noqa: B018 - validates the week number for that year
            return week
        except ValueError:
            raise ValueError(f"周次格式应为 YYYY-Www（如 2026-W47），而不是 {text!r}") from None

    @classmethod
    def containing(cls, day: date) -> Week:
        year, number, _ = day.isocalendar()
        return cls(year, number)

    @classmethod
    def last_complete(cls, now: datetime) -> Week:
        """The latest week that has ended by `now` (the one before the week containing now)."""
        return cls.containing(local_date(now)).previous()

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.monday, time(0), tzinfo=SHANGHAI).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """Sunday 24:00, i.e. the next Monday 00:00 (exclusive)."""
        return self.start + timedelta(days=7)

    @property
    def published_at(self) -> datetime:
        """When the weekly job builds it: the next Monday 08:00 Asia/Shanghai."""
        return self.end + timedelta(hours=8)

    def previous(self, weeks: int = 1) -> Week:
        return Week.containing(self.monday - timedelta(weeks=weeks))

    def __str__(self) -> str:
        return self.label


# -- SQL, one GROUP BY per figure ------------------------------------------------------------------

_RESPONSE = [k.value for k in RESPONSE_KINDS]


def _in(column, week: Week):
    return and_(column >= week.start, column < week.end)


def _running_at(moment: datetime):
    """A response clock still running at `moment`: started before, not ended before."""
    return and_(
        CaseClock.kind.in_(_RESPONSE),
        CaseClock.started_at < moment,
        or_(CaseClock.met_at.is_(None), CaseClock.met_at >= moment),
    )


def _owner():
    """The body a case counts for: its owner (cases from before owners existed: where it sits)."""
    return func.coalesce(Case.owner_org_id, Case.org_id)


def _per_org(session: Session, stmt: Select) -> dict[int, tuple]:
    """Run a `SELECT owner, figures… GROUP BY owner` into {owning body id: figures}."""
    return {row[0]: tuple(row[1:]) for row in session.execute(stmt.group_by(_owner()))}


def _counts_by_org(session: Session, week: Week, clocks: Clocks) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}

    def put(name: str, values: dict[int, tuple], index: int = 0) -> None:
        for org_id, row in values.items():
            out.setdefault(org_id, dict.fromkeys(COUNTS, 0))[name] = int(row[index] or 0)

    put("received", _per_org(session, select(_owner(), func.count()).where(_in(Case.received_at, week))))
    put(
        "accepted",
        _per_org(
            session,
            select(_owner(), func.count(func.distinct(Event.case_id)))
            .join(Case, Case.id == Event.case_id)
            .where(Event.action == "accept", _in(Event.at, week)),
        ),
    )
    responded = _responded(session, week)
    put("responded_on_time", responded, 0)
    put("responded_late", responded, 1)
    put("open_overdue", _overdue_counts(session, week.end))
    horizon = end_of_day_utc(clocks.calendar.add_working_days(week.sunday, DUE_SOON_DAYS).day)
    put(
        "due_soon",
        _per_org(
            session,
            select(_owner(), func.count(func.distinct(Case.id)))
            .join(CaseClock, CaseClock.case_id == Case.id)
            .where(_running_at(week.end), CaseClock.due_at >= week.end, CaseClock.due_at <= horizon),
        ),
    )
    escalated = _per_org(
        session,
        select(
            _owner(),
            func.sum(case((Escalation.level == 1, 1), else_=0)),
            func.sum(case((Escalation.level == 2, 1), else_=0)),
        )
        .join(Case, Case.id == Escalation.case_id)
        .where(_in(Escalation.at, week)),
    )
    put("escalated_level1", escalated, 0)
    put("escalated_level2", escalated, 1)
    put(
        "reopened",
        _per_org(
            session,
            select(_owner(), func.count())
            .join(CaseClock, CaseClock.case_id == Case.id)
            .where(CaseClock.kind == ClockKind.REOPENED.value, _in(CaseClock.started_at, week)),
        ),
    )
    satisfied = (Rating.SATISFIED.value, Rating.BASICALLY_SATISFIED.value)
    rated = _per_org(
        session,
        select(_owner(), func.count(), func.sum(case((Case.rating.in_(satisfied), 1), else_=0))).where(
            _in(Case.rated_at, week), Case.rating.is_not(None)
        ),
    )
    put("rated", rated, 0)
    put("satisfied", rated, 1)
    return out


def _channels_by_org(session: Session, week: Week) -> dict[int, dict[str, int]]:
    """本周收件 by 来源渠道 per owning body: one GROUP BY owner, channel (issue 16)."""
    out: dict[int, dict[str, int]] = {}
    stmt = (
        select(_owner(), Case.channel, func.count())
        .where(_in(Case.received_at, week))
        .group_by(_owner(), Case.channel)
    )
    for org_id, channel, count in session.execute(stmt):
        out.setdefault(org_id, {})[channel] = int(count)
    return out


def _roll_up_channels(orgs: list[_Row], own: dict[int, dict[str, int]]) -> dict[int, dict[str, int]]:
    """Each body's channel counts with those of the bodies below it (as `_roll_up` does the figures)."""
    totals = {o.id: dict(own.get(o.id) or {}) for o in orgs}
    for org in reversed(orgs):
        if org.parent_id in totals:
            for channel, count in totals[org.id].items():
                totals[org.parent_id][channel] = totals[org.parent_id].get(channel, 0) + count
    return totals


def _responded(session: Session, week: Week) -> dict[int, tuple]:
    """(on time, late) per org: response clocks met by a published answer within the week."""
    return _per_org(
        session,
        select(
            _owner(),
            func.sum(case((CaseClock.met_at <= CaseClock.due_at, 1), else_=0)),
            func.sum(case((CaseClock.met_at > CaseClock.due_at, 1), else_=0)),
        )
        .join(Case, Case.id == CaseClock.case_id)
        .where(CaseClock.kind.in_(_RESPONSE), CaseClock.outcome == "met", _in(CaseClock.met_at, week)),
    )


def _overdue_condition(moment: datetime):
    return and_(_running_at(moment), CaseClock.due_at < moment)


def _overdue_counts(session: Session, moment: datetime) -> dict[int, tuple]:
    return _per_org(
        session,
        select(_owner(), func.count(func.distinct(Case.id)))
        .join(CaseClock, CaseClock.case_id == Case.id)
        .where(_overdue_condition(moment)),
    )


def _overdue_rows(session: Session, week: Week, clocks: Clocks) -> list[dict[str, Any]]:
    """The cases still unanswered past their deadline at the week's end, worst first."""
    level_at_end = (
        select(func.coalesce(func.max(Escalation.level), 0))
        .where(Escalation.case_id == Case.id, Escalation.at < week.end)
        .scalar_subquery()
    )
    stmt = (
        select(
            Case.tracking_no,
            _owner().label("org_id"),
            Org.name.label("org_name"),
            User.display_name,
            User.username,
            Category.name.label("category"),
            Case.received_at,
            CaseClock.due_at,
            CaseClock.due_provisional,
            Case.real_name,
            level_at_end.label("level"),
        )
        .join(CaseClock, CaseClock.case_id == Case.id)
        .join(Org, Org.id == _owner())
        .join(Category, Category.id == Case.category_id)
        .outerjoin(User, User.id == Case.assignee_id)
        .where(_overdue_condition(week.end))
    )
    rows = []
    for r in session.execute(stmt):
        due_day = local_date(r.due_at)
        rows.append(
            {
                "tracking_no": r.tracking_no,
                "org_id": r.org_id,
                "org": r.org_name,
                "handler": r.display_name or r.username or "",
                "category": r.category,
                "received_on": local_date(r.received_at).isoformat(),
                "due_on": due_day.isoformat(),
                "due_provisional": r.due_provisional,
                "working_days_overdue": clocks.calendar.working_days_between(due_day, week.sunday),
                "escalation_level": int(r.level or 0),
                "real_name": bool(r.real_name),
            }
        )
    rows.sort(
        key=lambda r: (-r["working_days_overdue"], -r["escalation_level"], r["due_on"], r["tracking_no"])
    )
    return rows


# -- the report ---------------------------------------------------------------------------------------


def rates(counts: dict[str, int]) -> dict[str, float | None]:
    answered = counts["responded_on_time"] + counts["responded_late"]
    return {
        "on_time_rate": round(counts["responded_on_time"] / answered, 4) if answered else None,
        "satisfaction_rate": round(counts["satisfied"] / counts["rated"], 4) if counts["rated"] else None,
    }


def _base(figures: dict[str, Any], name: str) -> int:
    return sum(int(figures[count]) for count in RATE_BASES[name])


def thin_rates(figures: dict[str, Any], thresholds: dict[str, float]) -> list[str]:
    """The rates computed on fewer cases than the minimum sample (样本不足): shown, never flagged.
    Reports stored before the minimum existed have no "min_sample": nothing is thin in them."""
    least = thresholds.get("min_sample") or 0
    return [name for name in RATE_BASES if figures[name] is not None and _base(figures, name) < least]


def _flags(figures: dict[str, Any], thresholds: dict[str, float]) -> list[str]:
    # No "满意率低于85%" from one rating: a rate on fewer cases than the minimum sample is not flagged.
    thin = thin_rates(figures, thresholds)
    return [
        name
        for name in ("on_time_rate", "satisfaction_rate")
        if figures[name] is not None and figures[name] < thresholds[name] and name not in thin
    ]


def footnotes(thresholds: dict[str, Any], notes: list[str] | None = None) -> list[str]:
    """The footnotes (FOOTNOTES, or their translation `notes`) with the report's lines filled in."""
    return [
        note.format(
            on_time=thresholds["on_time_rate"],
            satisfaction=thresholds["satisfaction_rate"],
            min_sample=thresholds.get("min_sample", 1),
        )
        for note in (FOOTNOTES if notes is None else notes)
    ]


@dataclass(frozen=True)
class _Row:
    """One row of the report: a discipline body, placed below the body above it."""

    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None  # the body above (None: the top)
    depth: int  # 0 for the top


def _tree(session: Session) -> list[_Row]:
    """Every discipline body, each before the bodies below it (the report's row order)."""
    tree = OrgTree.load(session)
    bodies = {o.id: o for o in session.scalars(select(Org)) if o.is_body}
    parents: dict[int, int | None] = {}
    for body_id in bodies:
        above = tree.body_above(body_id)
        parents[body_id] = above if above != body_id and above in bodies else None

    def chain(body_id: int) -> list[int]:
        ids = [body_id]
        while parents[ids[-1]] is not None and len(ids) <= len(bodies):
            ids.append(parents[ids[-1]])
        return ids[::-1]

    def order(body_id: int) -> tuple[str, ...]:
        return tuple(bodies[i].path for i in chain(body_id))

    return [
        _Row(b.id, b.code, b.name, b.kind, parents[b.id], len(chain(b.id)) - 1)
        for b in sorted(bodies.values(), key=lambda b: order(b.id))
    ]


def _roll_up(orgs: list[_Row], own: dict[int, dict[str, int]]) -> dict[int, dict[str, int]]:
    totals = {o.id: dict(own.get(o.id) or dict.fromkeys(COUNTS, 0)) for o in orgs}
    for org in reversed(orgs):  # children come after their parent: add each into its parent
        if org.parent_id in totals:
            for name in COUNTS:
                totals[org.parent_id][name] += totals[org.id][name]
    return totals


def compute(
    session: Session, clocks: Clocks, week: Week, thresholds: dict[str, float], now: datetime
) -> dict[str, Any]:
    """The report's data for every org: what a snapshot stores (JSON-ready)."""
    if session.get_bind().dialect.name == "postgresql":
        # Estimates of "as of Sunday" counts run high and tip PostgreSQL into JIT-compiling plans
        # that take ~0.4 s to compile and ~0.1 s to run (bench/README.md, weekly report).
        session.execute(text("SET LOCAL jit = off"))
    orgs = _tree(session)
    overdue = _overdue_rows(session, week, clocks)
    own = _counts_by_org(session, week, clocks)
    for row in overdue:  # the sum of working days overdue comes from the listed rows
        own.setdefault(row["org_id"], dict.fromkeys(COUNTS, 0))["overdue_working_days"] += row[
            "working_days_overdue"
        ]
    totals = _roll_up(orgs, own)
    channels = _roll_up_channels(orgs, _channels_by_org(session, week))
    trend_weeks = [week.previous(n) for n in range(TREND_WEEKS - 1, -1, -1)]
    trend_totals = [_trend_point(session, orgs, w) for w in trend_weeks]
    rows = []
    for org in orgs:
        total = {**totals[org.id], **rates(totals[org.id])}
        mine = own.get(org.id) or dict.fromkeys(COUNTS, 0)
        rows.append(
            {
                "id": org.id,
                "code": org.code,
                "name": org.name,
                "kind": org.kind,
                "parent_id": org.parent_id,
                "depth": org.depth,  # 0 for the top of the tree
                "own": {**mine, **rates(mine)},
                "total": total,
                "flags": _flags(total, thresholds),
                "thin": thin_rates(total, thresholds),  # rates shown with "样本不足", not flagged
                "channels": channels[org.id],  # 本周收件 by 来源渠道, subtree included
                "trend": [
                    {"week": w.label, **point[org.id]}
                    for w, point in zip(trend_weeks, trend_totals, strict=True)
                ],
            }
        )
    return {
        "week": week.label,
        "start": week.start.isoformat(),
        "end": week.end.isoformat(),
        "monday": week.monday.isoformat(),
        "sunday": week.sunday.isoformat(),
        "generated_at": now.isoformat(),
        "thresholds": thresholds,
        "orgs": rows,
        "overdue_cases": overdue,
        "footnotes": footnotes(thresholds),
    }


def _trend_point(session: Session, orgs: list[_Row], week: Week) -> dict[int, dict[str, Any]]:
    """Overdue at the week's end and the on-time rate, per subtree, for one week of the trend."""
    own: dict[int, dict[str, int]] = {}
    for org_id, (count,) in _overdue_counts(session, week.end).items():
        own.setdefault(org_id, dict.fromkeys(COUNTS, 0))["open_overdue"] = int(count)
    for org_id, (on_time, late) in _responded(session, week).items():
        mine = own.setdefault(org_id, dict.fromkeys(COUNTS, 0))
        mine["responded_on_time"], mine["responded_late"] = int(on_time or 0), int(late or 0)
    totals = _roll_up(orgs, own)
    return {
        org_id: {"open_overdue": t["open_overdue"], "on_time_rate": rates(t)["on_time_rate"]}
        for org_id, t in totals.items()
    }


def view_for(data: dict[str, Any], org_id: int | None = None) -> dict[str, Any]:
    """The report as one org sees it: its subtree's rows, its totals as the headline, its overdue list.

    `org_id` None: the top of the tree (the whole county). Unknown org: ValueError.
    """
    orgs = data["orgs"]
    if org_id is None:
        top = next((o for o in orgs if o["parent_id"] is None), None)
    else:
        top = next((o for o in orgs if o["id"] == org_id), None)
    if top is None:
        raise ValueError("该单位不在本期通报中")
    inside = _subtree_ids(orgs, top["id"])
    return {
        **{k: v for k, v in data.items() if k not in ("orgs", "overdue_cases")},
        "org": {"id": top["id"], "code": top["code"], "name": top["name"]},
        "summary": top["total"],
        "channels": top.get("channels", {}),  # absent from reports stored before issue 16
        "flags": top["flags"],
        "thin": top.get("thin", []),  # absent from reports stored before the minimum sample
        "trend": top["trend"],
        "orgs": [o for o in orgs if o["id"] in inside],
        "overdue_cases": [r for r in data["overdue_cases"] if r["org_id"] in inside],
    }


def _subtree_ids(orgs: Iterable[dict[str, Any]], root_id: int) -> set[int]:
    children: dict[int | None, list[int]] = {}
    for o in orgs:
        children.setdefault(o["parent_id"], []).append(o["id"])
    found, stack = set(), [root_id]
    while stack:
        current = stack.pop()
        found.add(current)
        stack.extend(children.get(current, []))
    return found
