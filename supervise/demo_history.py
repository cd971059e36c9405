"""Eight weeks of demo history (`supervise demo --history`): what a county looks like after two
months, so every page has something true to show on first start.

Nothing is inserted by hand. Each case is submitted, worked, rated, swept and reported through the
same services the web pages, the API and the cron jobs call, each given an explicit `now` (they
all take one): the history is a replay of a timeline, in time order, from eight weeks before the
current week's Monday up to the real present. So the figures on the queue tabs, the weekly reports
and the escalation lists are the ones the real code computed, not numbers typed in.

The timeline: citizens file a few cases every day at the demo points; each case follows a script
(answered on time, late, reopened after an unsatisfied rating, rejected, left unrated until it
closes by itself, stalled at a unit…); the deadline sweep runs every day just after midnight (so
cases are warned, go overdue, and are escalated at level 1 and then level 2 up the tree); the
weekly report job runs every Monday at 08:00, storing one report per past week. Steps that would
fall after the present are simply not taken, which leaves the recent cases open in every state.

Idempotent: a row in `periodic_runs` (job `demo_history`) marks the history as loaded, so a
second run does nothing.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import count
from typing import Any

from sqlalchemy import func, select

from supervise.cases import services, workflow
from supervise.cases.models import Case
from supervise.cases.states import REGISTERED_CHANNELS, CaseKind, Rating, Status
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import SHANGHAI, get_calendar, local_date
from supervise.deadlines.models import Escalation
from supervise.deadlines.services import run_sweep
from supervise.errors import DomainError
from supervise.extensions import db
from supervise.intake.models import Point
from supervise.orgs.models import UNIT_KINDS, Org
from supervise.registration.services import register_case
from supervise.reports import services as reports
from supervise.reports.models import PeriodicRun, WeeklyReport
from supervise.staff.models import User

log = logging.getLogger(__name__)
MARKER_JOB = "demo_history"
MARKER_PERIOD = "loaded"
WEEKS = 8
CASES_PER_WORKING_DAY = 1.6  # about 65 cases over eight weeks: enough for every tab, quick to load
REGISTERED_SHARE = 0.2  # of them, registered by intake from a call, letter or visit
SEED = 2026

# Who works a case at each discipline body: intake (受理), handler (承办), supervisor (审核、延期).
BODY_STAFF = {
    "demo-county": ("demo-intake", "demo-handler", "demo-supervisor"),
    "demo-county-group-1": ("demo-group-1-intake", "demo-group-1-handler", "demo-group-1-intake"),
    "demo-town-1-jw": ("demo-town-1-jw-intake", "demo-town-1-jw-handler", "demo-town-1-jw-intake"),
    "demo-town-2-jw": ("demo-town-2-jw-intake", "demo-town-2-jw-handler", "demo-town-2-jw-intake"),
}
# A unit's leader (交办) and handler (承办); a village committee's one account does both.
UNIT_STAFF = {
    "demo-dept-civil": ("demo-dept-civil-leader", "demo-dept-civil-handler"),
    "demo-dept-hrss": ("demo-dept-hrss-leader", "demo-dept-hrss-handler"),
    "demo-town-1": ("demo-town-1-leader", "demo-town-1-handler"),
    "demo-town-2": ("demo-town-2-leader", "demo-town-2-handler"),
    "demo-town-1-village-1": ("demo-town-1-village-1-leader",) * 2,
    "demo-town-1-village-2": ("demo-town-1-village-2-leader",) * 2,
    "demo-town-2-village-1": ("demo-town-2-village-1-leader",) * 2,
    "demo-town-2-village-2": ("demo-town-2-village-2-leader",) * 2,
}

# What citizens write, by category: (subject, content). {place} is the point's org name.
COMPLAINTS = {
    "efficiency": [
        ("{place}", "材料交齐两周了还说在审核，打电话问也说不清楚要等到什么时候。"),
        ("{place}窗口", "窗口只开一个，排队两个小时，工作人员中途离岗二十分钟。"),
        ("{place}", "办理证明要求跑三个不同地方盖章，能不能一次办好。"),
    ],
    "conduct": [
        ("{place}工作人员", "咨询政策时工作人员不耐烦，说“看墙上自己找”，态度生硬。"),
        ("{place}", "上班时间办公室没人，门上也没有留联系电话。"),
        ("{place}值班人员", "值班人员在办公室玩手机，群众来办事爱答不理。"),
    ],
    "welfare_funds": [
        ("{place}", "今年的养老补贴到现在还没到账，问了说是上面没拨下来。"),
        ("{place}", "危房改造补助名单没有公示，不知道是怎么评的。"),
    ],
    "petty_corruption": [
        ("{place}经办人员", "办理审批时经办人暗示要送购物卡才给盖章。"),
        ("{place}工作人员", "办事时被要求到指定的打印店复印材料，价格是外面的三倍。"),
    ],
    "favouritism": [
        ("{place}负责人", "低保名额给了负责人的亲戚，他家有车有房。"),
        ("{place}", "公益岗位招的都是村干部的亲属，其他人报名都说满了。"),
    ],
}
CATEGORY_WEIGHTS = {
    "efficiency": 5,
    "conduct": 4,
    "welfare_funds": 2,
    "petty_corruption": 2,
    "favouritism": 1,
}
# How a case goes: weight, and the working day after receipt of its answer (反馈) and of its
# publication (审核发布); a script's later steps past the present are not taken.
SCRIPTS = {
    "on_time": (8, 9, 10),
    "late": (3, 18, 19),  # answered after the 15 days: overdue, 督办 level 1
    "reopened": (2, 8, 9),  # the citizen is unsatisfied; it is worked again
    "unrated": (2, 10, 11),  # nobody rates; the sweep closes it when the window ends
    "stalled": (3, 40, 41),  # nothing happens at the unit: overdue, then level 2
    "review_waits": (1, 12, 30),  # answered, and the review sits (待审核, late)
    "rejected": (1, 0, 0),
    "extended": (1, 19, 20),  # the handler asks, the supervisor grants five more days
}
SURNAMES = "王李张刘陈杨黄赵周吴"

ANSWERS = [
    "经核查，情况属实。已责成相关人员整改，并在全体干部会上通报，今后每周公示办理进度。",
    "经调查，材料审核确有拖延。现已办结，并对窗口人员进行了批评教育，调整为双人值守。",
    "已约谈相关负责人，明确专人负责，公示栏已更新，今后每月按时公开。",
]
ACCUSATION_NOTE = "经初步核实，已对相关人员谈话提醒，并督促退还不当收取的费用。"


@dataclass(order=True)
class _Step:
    at: datetime
    seq: int
    run: Callable[[datetime], None] = field(compare=False)
    what: str = field(compare=False, default="")


@dataclass
class HistorySummary:
    cases: int
    weeks: list[str]
    by_status: dict[str, int]
    escalations: dict[int, int]
    reopened: int
    rated: int
    seconds: float

    def lines(self) -> list[str]:
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        return [
            f"History: {self.cases} cases over {WEEKS} weeks ({states})",
            f"  escalations: level 1 {self.escalations.get(1, 0)}, level 2 {self.escalations.get(2, 0)}; "
            f"reopened {self.reopened}; rated {self.rated}",
            f"  weekly reports stored: {', '.join(self.weeks) or 'none'}",
            f"  loaded in {self.seconds:.1f} s",
        ]


def history_loaded() -> bool:
    return db.session.get(PeriodicRun, (MARKER_JOB, MARKER_PERIOD)) is not None


def at_local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


class _Timeline:
    """A queue of steps in time order; each step may schedule later ones."""

    def __init__(self, end: datetime) -> None:
        self.end = end
        self._heap: list[_Step] = []
        self._seq = count()

    def at(self, moment: datetime, run: Callable[[datetime], None], what: str = "") -> None:
        if moment <= self.end:  # what would happen after the present does not happen
            heapq.heappush(self._heap, _Step(moment, next(self._seq), run, what))

    def run(self) -> None:
        while self._heap:
            step = heapq.heappop(self._heap)
            step.run(step.at)


class _History:
    def __init__(self, now: datetime, rng: random.Random) -> None:
        self.now = now
        self.rng = rng
        self.calendar = get_calendar(db.session)
        self.timeline = _Timeline(now)
        self.actors: dict[str, Actor] = {}
        self.org_codes = dict(db.session.execute(select(Org.id, Org.code)).all())
        self.points = db.session.execute(
            select(Point.token, Org.code, Org.name, Org.kind)
            .join(Org, Point.org_id == Org.id)
            .order_by(Point.id)
        ).all()
        self.codes: dict[str, str] = {}  # tracking number → access code, as the citizen keeps it

    # -- helpers -----------------------------------------------------------------------------

    def actor(self, username: str) -> Actor:
        if username not in self.actors:
            user = db.session.scalar(select(User).where(User.username == username))
            self.actors[username] = Actor.staff(user)
        return self.actors[username]

    def working_day(self, start: date, days: int) -> date:
        return self.calendar.add_working_days(start, days).day if days else start

    def office_hours(self, day: date) -> datetime:
        return at_local(day, self.rng.randint(8, 17), self.rng.choice((0, 10, 20, 30, 40, 50)))

    def act(self, tracking_no: str, username: str, action: str, when: datetime, **args: Any) -> Case:
        case = workflow.find_case(db.session, tracking_no)
        return services.perform_action(
            tracking_no, self.actor(username), {"action": action, "version": case.version, **args}, now=when
        )

    # -- the timeline ------------------------------------------------------------------------

    def schedule(self, start: date) -> None:
        day = start
        while at_local(day, 0) <= self.now:
            # Citizens file any day, fewer at weekends; the sweep runs just after midnight and
            # the weekly report job on Monday mornings, as the cron does.
            busy = self.calendar.is_working_day(day)
            filed = self._how_many(CASES_PER_WORKING_DAY if busy else 0.4)
            for _ in range(filed):
                moment = at_local(day, self.rng.randint(7, 21), self.rng.randint(0, 59))
                self.timeline.at(moment, self.submit, "submit")
            self.timeline.at(at_local(day, 0, 10), lambda when: run_sweep(when), "sweep")
            if day.weekday() == 0:
                self.timeline.at(at_local(day, 8), lambda when: reports.run_weekly(when), "weekly")
            day += timedelta(days=1)
        self.timeline.run()

    def _how_many(self, mean: float) -> int:
        whole = int(mean)
        return whole + (1 if self.rng.random() < mean - whole else 0) + (1 if self.rng.random() < 0.15 else 0)

    def submit(self, when: datetime) -> None:
        token, org_code, org_name, org_kind = self.rng.choice(self.points)
        category = self.rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))[0]
        subject, content = self.rng.choice(COMPLAINTS[category])
        data: dict[str, Any] = {
            "category": category,
            "subject": subject.format(place=org_name),
            "content": content,
            "point": token,
        }
        if self.rng.random() < 0.35:  # some give their name (实名)
            data["name"] = self.rng.choice(SURNAMES) + self.rng.choice("明华军芳伟丽强敏")
            # Few distinct numbers, in the style of demo.py's; the default SMS gateway only logs
            # them masked (SMS_GATEWAY=log), and demo data is refused in production.
            data["phone"] = f"1380000{self.rng.randint(0, 9999):04d}"
        if self.rng.random() < REGISTERED_SHARE:
            # A call, letter or visit the county's intake registers the same day (登记): the channel
            # filter and the report's channel table have something to show.
            del data["point"]
            data["channel"] = self.rng.choice(list(REGISTERED_CHANNELS))
            if org_kind in UNIT_KINDS:  # about a body's own office: the commission, as on /report
                data["subject_unit"] = org_code
            case, code = register_case(data, self.actor("demo-intake"), now=when)
        else:
            # Generated reporters: real-name as generated, no SMS code (issue 18).
            case, code = services.submit_case(data, now=when, verify_phone=False)
        self.codes[case.tracking_no] = code
        self.plan(case.tracking_no, local_date(when))

    def plan(self, tracking_no: str, received: date) -> None:
        """Pick a script for the case and schedule its steps (working days after receipt)."""
        case = workflow.find_case(db.session, tracking_no)
        intake, handler, supervisor = BODY_STAFF[self.org_codes[case.owner_org_id]]
        accusation = case.category.default_kind == CaseKind.ACCUSATION
        unit = self.org_codes.get(case.subject_org_id)
        script = self.rng.choices(list(SCRIPTS), weights=[w for w, _, _ in SCRIPTS.values()])[0]
        _, answered, published = SCRIPTS[script]
        step = self._stepper(tracking_no, received)

        if script == "rejected":
            step(
                1,
                intake,
                "reject",
                reason="反映内容不具体，无法核实，欢迎补充具体时间、地点后重新反映。",
                reason_code="no_facts",
            )
            return
        step(1, intake, "accept")
        if accusation or unit not in UNIT_STAFF:
            # 检举控告 stays inside the body: intake assigns its own handler.
            worker = handler
            step(1, intake, "assign", user=handler)
        else:
            leader, worker = UNIT_STAFF[unit]
            step(1, intake, "transfer", org=unit, note="请核实并在期限内反馈办理情况。")
            step(2, leader, "assign", user=worker)
        step(3, worker, "start")
        answer = self.rng.choice(ANSWERS)
        draft: dict[str, Any] = {"text": ACCUSATION_NOTE if accusation else answer}
        if accusation:
            draft |= {"disposal": "talk_inquiry", "disposal_note": "问题线索较轻，予以谈话提醒。"}
        if script == "extended":
            step(10, worker, "request_extension", days=5, reason="需调取半年的办理台账，申请延期。")
            step(11, supervisor, "extend", days=5, reason="确需调取台账，同意延期五个工作日。")
        step(answered, worker, "feedback", **draft)
        step(published, supervisor, "publish")
        done = published - 1
        if script == "unrated":
            return  # the rating window runs out and the sweep closes it (自动办结)
        if script == "reopened":
            step.rate(done + 2, Rating.UNSATISFIED, "还是没人管，问题依旧。")
            step(done + 3, worker, "start")
            step(done + 6, worker, "feedback", text="重新核查后已当面答复，并落实了整改措施。")
            step(done + 7, supervisor, "publish")
            step.rate(done + 9, Rating.BASICALLY_SATISFIED, None)
            return
        rating = self.rng.choices(list(Rating), weights=[6, 3, 1])[0]
        step.rate(done + 2, rating, None)

    def _stepper(self, tracking_no: str, received: date) -> Callable[..., None]:
        last = [at_local(received, 0)]

        def when(days: int) -> datetime:
            # A case's steps keep their order even when two fall on the same day.
            moment = max(self.office_hours(self.working_day(received, days)), last[0] + timedelta(minutes=7))
            last[0] = moment
            return moment

        def step(after: int, username: str, action: str, **args: Any) -> None:
            def run(moment: datetime) -> None:
                try:
                    self.act(tracking_no, username, action, moment, **args)
                except DomainError as exc:  # e.g. the script's next step no longer applies
                    db.session.rollback()
                    log.debug("demo history: %s %s skipped: %s", tracking_no, action, exc)

            self.timeline.at(when(after), run, action)

        def rate(days: int, rating: Rating, comment: str | None) -> None:
            def run(moment: datetime) -> None:
                # The citizen's way in: tracking number and access code (services.rate_case's
                # steps, with the moment given).
                case = services.find_for_citizen(tracking_no, self.codes[tracking_no])
                if case.status != Status.RESPONDED:
                    return  # not answered (yet), or closed by the sweep when the window ran out
                workflow.rate(services.make_context(moment), case, rating=rating, comment=comment)
                services.commit()

            self.timeline.at(when(days), run, "rate")

        step.rate = rate  # type: ignore[attr-defined]
        return step


def load_history(now: datetime | None = None, seed: int = SEED) -> HistorySummary | None:
    """Replay eight weeks of cases up to `now`; None when the history is loaded already.

    Expects `load_demo` to have run (the orgs, points and accounts the timeline uses).
    """
    import time as wallclock

    if history_loaded():
        return None
    started = wallclock.monotonic()
    now = now or utcnow()
    # Claimed first, in its own commit: a second run (or one racing this one) skips at once. A
    # load that fails midway stays marked with part of its history; start over with a fresh
    # data dir (demo data only).
    db.session.add(PeriodicRun(job=MARKER_JOB, period=MARKER_PERIOD, claimed_at=now))
    db.session.commit()
    today = local_date(now)
    first_monday = today - timedelta(days=today.weekday(), weeks=WEEKS)
    # Without Redis (demo runs before serve) each commit would log that its outbox rows wait
    # for the drain, and each replayed action its audit line: hundreds of lines that would bury
    # the accounts and URLs the newcomer needs. (The audit table still records every action.)
    quiet = [logging.getLogger(name) for name in ("supervise.queueing", "supervise.audit")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.WARNING)
    # Some 700 small commits: on SQLite each waits for the disk twice, which on a busy laptop
    # is most of the time taken. Demo data, written once: this connection skips the waits
    # until the load ends (a crash midway leaves a demo database to delete, nothing else).
    sqlite = db.engine.dialect.name == "sqlite"
    if sqlite:
        db.session.connection().exec_driver_sql("PRAGMA synchronous = OFF")
    try:
        history = _History(now, random.Random(seed))
        history.schedule(first_monday)
        _publish_summaries(history)
    finally:
        for log, old in zip(quiet, levels, strict=True):
            log.setLevel(old)
        if sqlite:
            db.session.rollback()
            db.session.connection().exec_driver_sql("PRAGMA synchronous = FULL")
            db.session.commit()
    return summary(first_monday, wallclock.monotonic() - started)


# Anonymised summaries for /public (办理情况公开), written as staff write them: no names, no places
# finer than the unit, nothing copied from the complaint or the answer.
PUBLIC_SUMMARIES = (
    "群众反映窗口办事等候时间长、材料要求说明不清。经核查，已调整窗口人员安排并公开办事指南，相关工作人员受到批评教育。",
    "群众反映有关补贴发放进度慢。经核查，已督促按程序补发到位，并对经办环节提出整改要求。",
    "群众反映工作人员服务态度生硬。经核查属实，已责令当事人作出说明并在单位内部通报。",
)


def _publish_summaries(history: _History) -> None:
    """A few closed service complaints get an approved public summary (four eyes: the owning
    body's intake writes, the county's supervisor approves), so /public shows what it is for on
    first start."""
    from supervise.accountability import services as public

    closed = db.session.scalars(
        select(Case)
        .where(Case.status == Status.CLOSED, Case.kind == CaseKind.SERVICE)
        .order_by(Case.closed_at.desc(), Case.id)
    )
    texts, units = iter(PUBLIC_SUMMARIES), set()
    for case in closed:
        unit = public.public_unit_of(db.session, case.subject_org)
        if unit is None or unit.id in units or public.publishable(db.session, case):
            continue
        text = next(texts, None)
        if text is None:
            break
        units.add(unit.id)
        writer = BODY_STAFF[history.org_codes[case.owner_org_id]][0]
        summary = public.write(db.session, case, history.actor(writer), text)
        public.approve(db.session, summary, history.actor("demo-supervisor"))
        db.session.commit()


def summary(since: date, seconds: float = 0.0) -> HistorySummary:
    session = db.session
    start = at_local(since, 0)
    in_history = Case.received_at >= start
    return HistorySummary(
        cases=session.scalar(select(func.count(Case.id)).where(in_history)),
        weeks=sorted(set(session.scalars(select(WeeklyReport.week)))),
        by_status=dict(
            session.execute(select(Case.status, func.count()).where(in_history).group_by(Case.status)).all()
        ),
        escalations=dict(
            session.execute(select(Escalation.level, func.count()).group_by(Escalation.level)).all()
        ),
        reopened=session.scalar(select(func.count(Case.id)).where(in_history, Case.reopen_count > 0)),
        rated=session.scalar(select(func.count(Case.id)).where(in_history, Case.rated_at.is_not(None))),
        seconds=seconds,
    )
