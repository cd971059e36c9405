"""统计分析: the summary table over a fixture whose figures are worked out by hand.

Twelve cases across the demo county's two townships (dates Asia/Shanghai; working days counted on
the official calendar, day of receipt not counted; National Day 2026 ends Oct 7, Oct 10 worked):

城关镇 (its complaints owned by 城关镇纪委):
- D: 城关镇's point (扫码), 办事效率 (service), Oct 12, due Nov 2; escalated by the sweep of Nov 16;
  answered Nov 17 (late): 26 working days (Oct 13–16, 19–23, 26–30, Nov 2–6, 9–13, 16–17).
- A: 东关村 扫码, 办事效率, Nov 2; answered Nov 6 (4 wd, on time); rated 满意.
- B: 东关村 扫码, 办事效率, Nov 2; answered Nov 9 (5 wd, on time); rated 基本满意.
- C: 西关社区 扫码, 吃拿卡要 (检举控告), Nov 3; answered Nov 5 (2 wd, on time); rated 不满意, which
  reopens it (reopened; answered stays: its first answer was published).
- F: 东关村 网上 (no point), 办事效率, Nov 4; never accepted (未定性): its 5-day acceptance clock
  (due Nov 11) is escalated by the sweep of Nov 16.
- G: 东关村 扫码, Nov 5, merged into A: not counted.
- E: 城关镇 来电 (registered), 作风问题, Nov 10; not accepted, not answered.
青山乡 (owned by 青山乡纪委):
- J: 桃园村 扫码, 办事效率, Oct 19, due Nov 9; escalated Nov 16; answered Nov 18 (22 wd, late); 满意.
- H: 石门村 扫码, 办事效率, Nov 2; answered Nov 20 (14 wd, on time); rated 满意.
- I: 石门村 扫码, 吃拿卡要 (检举控告), Nov 3; accepted, not answered.
- L: 桃园村 网上, 作风问题 (service), Nov 6; accepted, not answered.
- K: 青山乡 来电, 吃拿卡要, Nov 12; not accepted.

So for 2026: received 11 (G merged); answered 6 (A B C D H J); on time 4 (A B C H); working days
4+5+2+26+14+22 = 73, average 73/6; rated 5: 满意 3 (A H J), 基本满意 1 (B), 不满意 1 (C);
reopened 1 (C); escalated 3 (D F J).
"""

from __future__ import annotations

from datetime import date

import pytest
import time_machine
from rq import SimpleWorker
from sqlalchemy import func, select

from supervise.cases.workflow import find_case
from supervise.deadlines.services import run_sweep
from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.queueing import redis_connection
from supervise.stats import services as stats
from supervise.stats.models import StatsMonthly
from tests.jobs.conftest import JW_HANDLER, JW_INTAKE
from tests.jobs.test_deadlines import act, actor, at, file_case

T2_INTAKE = "demo-town-2-jw-intake"
T2_HANDLER = "demo-town-2-jw-handler"
ANSWER = "经核查，情况属实，已责令整改。"
POINTS = {
    "城关镇": "demo-town-1",
    "青山乡": "demo-town-2",
    "东关村": "demo-town-1-village-1",
    "西关社区": "demo-town-1-village-2",
    "石门村": "demo-town-2-village-1",
    "桃园村": "demo-town-2-village-2",
}


def _qr(org: str, category: str) -> str:
    return file_case(get_org_by_code(db.session, POINTS[org]), category=category)


def _web(org: str, category: str) -> str:
    return file_case(None, category=category, subject_unit=POINTS[org])


def _phone(org: str, category: str, intake: str) -> str:
    from supervise.registration.services import register_case

    data = {
        "channel": "phone",
        "category": category,
        "subject": "某工作人员",
        "content": "来电反映：办事需要反复跑腿，工作人员态度生硬。",
        "subject_unit": POINTS[org],
    }
    case, _code = register_case(data, actor(intake))
    return case.tracking_no


def _answer(ref: str, intake: str, handler: str) -> None:
    act(ref, intake, "assign", user=handler)
    act(ref, handler, "start")
    accusation = find_case(db.session, ref).kind == "accusation"
    act(
        ref,
        handler,
        "feedback",
        text=ANSWER,
        **({"disposal": "concluded", "disposal_note": "经核实不存在所反映问题。"} if accusation else {}),
    )
    act(ref, "demo-supervisor", "publish")


def _rate(ref: str, rating: str) -> None:
    from supervise.cases import workflow
    from supervise.cases.services import commit, make_context
    from supervise.cases.states import Rating

    workflow.rate(make_context(), find_case(db.session, ref), rating=Rating(rating))
    commit()


@pytest.fixture
def cases(app, demo):
    refs: dict[str, str] = {}
    t1, t2 = (JW_INTAKE, JW_HANDLER), (T2_INTAKE, T2_HANDLER)
    with time_machine.travel(at(2026, 10, 12), tick=False):
        refs["D"] = _qr("城关镇", "efficiency")
        act(refs["D"], JW_INTAKE, "accept")
    with time_machine.travel(at(2026, 10, 19), tick=False):
        refs["J"] = _qr("桃园村", "efficiency")
        act(refs["J"], T2_INTAKE, "accept")
    with time_machine.travel(at(2026, 11, 2), tick=False):
        for name, org, intake in (
            ("A", "东关村", JW_INTAKE),
            ("B", "东关村", JW_INTAKE),
            ("H", "石门村", T2_INTAKE),
        ):
            refs[name] = _qr(org, "efficiency")
            act(refs[name], intake, "accept")
    with time_machine.travel(at(2026, 11, 3), tick=False):
        refs["C"] = _qr("西关社区", "petty_corruption")
        act(refs["C"], JW_INTAKE, "accept")
        refs["I"] = _qr("石门村", "petty_corruption")
        act(refs["I"], T2_INTAKE, "accept")
    with time_machine.travel(at(2026, 11, 4), tick=False):
        refs["F"] = _web("东关村", "efficiency")
    with time_machine.travel(at(2026, 11, 5), tick=False):
        refs["G"] = _qr("东关村", "efficiency")
        act(refs["G"], JW_INTAKE, "merge", into=refs["A"])
        _answer(refs["C"], *t1)
        _rate(refs["C"], "unsatisfied")
    with time_machine.travel(at(2026, 11, 6), tick=False):
        refs["L"] = _web("桃园村", "conduct")
        act(refs["L"], T2_INTAKE, "accept")
        _answer(refs["A"], *t1)
        _rate(refs["A"], "satisfied")
    with time_machine.travel(at(2026, 11, 9), tick=False):
        _answer(refs["B"], *t1)
        _rate(refs["B"], "basically_satisfied")
    with time_machine.travel(at(2026, 11, 10), tick=False):
        refs["E"] = _phone("城关镇", "conduct", JW_INTAKE)
    with time_machine.travel(at(2026, 11, 12), tick=False):
        refs["K"] = _phone("青山乡", "petty_corruption", T2_INTAKE)
    with time_machine.travel(at(2026, 11, 16), tick=False):
        run_sweep()
    with time_machine.travel(at(2026, 11, 17, 10), tick=False):
        _answer(refs["D"], *t1)
    with time_machine.travel(at(2026, 11, 18, 10), tick=False):
        _answer(refs["J"], *t2)
        _rate(refs["J"], "satisfied")
    with time_machine.travel(at(2026, 11, 20, 10), tick=False):
        _answer(refs["H"], *t2)
        _rate(refs["H"], "satisfied")
    return refs


def figures(**counts) -> stats.Figures:
    return stats.Figures(**counts)


COUNTY = figures(
    received=11,
    answered=6,
    answered_on_time=4,
    answer_working_days=73,
    rated=5,
    satisfied=3,
    basically_satisfied=1,
    unsatisfied=1,
    reopened=1,
    escalated=3,
)
TOWN_1 = figures(
    received=6,
    answered=4,
    answered_on_time=3,
    answer_working_days=37,
    rated=3,
    satisfied=1,
    basically_satisfied=1,
    unsatisfied=1,
    reopened=1,
    escalated=2,
)
TOWN_2 = figures(
    received=5, answered=2, answered_on_time=1, answer_working_days=36, rated=2, satisfied=2, escalated=1
)
YEAR = {"start": date(2026, 1, 1), "end": date(2027, 1, 1)}


def org_id(code: str) -> int:
    return get_org_by_code(db.session, code).id


def test_the_fixture_gives_the_figures_worked_out_by_hand(app, cases):
    with time_machine.travel(at(2026, 11, 30), tick=False):
        assert stats.refresh(db.session) == [date(2026, 10, 1), date(2026, 11, 1)]
    county = org_id("demo-county")
    by_child = stats.figures_by(db.session, **YEAR, group="child_org", within_org_id=county)
    assert by_child == {org_id("demo-town-1"): TOWN_1, org_id("demo-town-2"): TOWN_2}
    total = stats.total(by_child)
    assert total == COUNTY
    assert total.on_time_rate == 4 / 6 and total.satisfaction_rate == 4 / 5 and total.reopen_rate == 1 / 6
    assert total.working_days_to_answer == pytest.approx(73 / 6)
    assert TOWN_1.working_days_to_answer == 37 / 4

    # Drill-down: 城关镇's own cases (D, E), and each village's.
    town = stats.figures_by(db.session, **YEAR, group="child_org", within_org_id=org_id("demo-town-1"))
    assert {k: f.received for k, f in town.items()} == {
        org_id("demo-town-1"): 2,
        org_id("demo-town-1-village-1"): 3,  # A, B, F (G merged)
        org_id("demo-town-1-village-2"): 1,  # C
    }
    assert town[org_id("demo-town-1")].answer_working_days == 26

    by = {
        g: stats.figures_by(db.session, **YEAR, group=g)
        for g in ("channel", "kind", "month", "quarter", "year")
    }
    assert {k: f.received for k, f in by["channel"].items()} == {"qr": 7, "web": 2, "phone": 2}
    assert {k: f.received for k, f in by["kind"].items()} == {"service": 6, "accusation": 2, "": 3}
    assert {k: f.answered_on_time for k, f in by["kind"].items()} == {"service": 3, "accusation": 1, "": 0}
    assert {k: f.received for k, f in by["month"].items()} == {date(2026, 10, 1): 2, date(2026, 11, 1): 9}
    assert by["quarter"] == {"2026-Q4": COUNTY} and by["year"] == {2026: COUNTY}
    categories = stats.figures_by(db.session, **YEAR, group="category")
    assert sorted(f.received for f in categories.values()) == [2, 3, 6]
    # A month alone, and a filter.
    october = stats.figures_by(db.session, start=date(2026, 10, 1), end=date(2026, 11, 1), group="year")
    assert october[2026].received == 2 and october[2026].answered_on_time == 0
    assert october[2026].escalated == 2 and october[2026].answer_working_days == 48
    phone = stats.figures_by(db.session, **YEAR, group="subject_unit", filters={"channel": "phone"})
    assert {k: f.received for k, f in phone.items()} == {org_id("demo-town-1"): 1, org_id("demo-town-2"): 1}
    # Hot spots: units, most complaints first.
    spots = stats.hot_spots(db.session, **YEAR)
    assert [(i, f.received) for i, f in spots][:2] == [
        (org_id("demo-town-1-village-1"), 3),
        (org_id("demo-town-1"), 2),
    ]


def _rows() -> list[tuple]:
    return sorted(
        tuple(
            getattr(r, c)
            for c in ("month", "subject_org_id", "owner_org_id", "category_id", "channel", "kind")
        )
        + tuple(getattr(r, c) for c in stats.COUNT_COLUMNS)
        for r in db.session.scalars(select(StatsMonthly))
    )


def _ids(month: date) -> set[int]:
    return set(db.session.scalars(select(StatsMonthly.id).where(StatsMonthly.month == month)))


def test_refresh_is_idempotent_and_rebuilds_only_the_months_changed(app, cases):
    with time_machine.travel(at(2026, 11, 30), tick=False):
        stats.refresh(db.session)
    before, october, november = _rows(), _ids(date(2026, 10, 1)), _ids(date(2026, 11, 1))
    with time_machine.travel(
        at(2026, 11, 30, 10, 30), tick=False
    ):  # nothing changed since (past the overlap)
        assert stats.refresh(db.session) == []
    with time_machine.travel(at(2026, 11, 30, 11), tick=False):
        assert stats.refresh(db.session, everything=True) == [date(2026, 10, 1), date(2026, 11, 1)]
    assert _rows() == before  # a rebuild gives the same rows
    october, november = _ids(date(2026, 10, 1)), _ids(date(2026, 11, 1))

    # D (received in October) is rated: October is rebuilt, November's rows are untouched.
    with time_machine.travel(at(2026, 12, 1, 10), tick=False):
        _rate(cases["D"], "satisfied")
    with time_machine.travel(at(2026, 12, 1, 12), tick=False):
        assert stats.refresh(db.session) == [date(2026, 10, 1)]
    assert _ids(date(2026, 11, 1)) == november and _ids(date(2026, 10, 1)).isdisjoint(october)
    county = stats.figures_by(db.session, **YEAR, group="year")[2026]
    assert (county.rated, county.satisfied) == (6, 4)
    assert db.session.scalar(select(func.count()).select_from(StatsMonthly)) == len(before)


def test_the_job_refreshes_through_a_worker(app, cases):
    from supervise.queueing import queue

    with time_machine.travel(at(2026, 11, 30), tick=False):
        queue("reports").enqueue("workers.jobs.refresh_stats")
        SimpleWorker(["reports"], connection=redis_connection(app)).work(burst=True)
    db.session.expire_all()
    assert stats.total(stats.figures_by(db.session, **YEAR, group="year")) == COUNTY
    assert stats.last_refreshed(db.session) is not None


def test_cron_registers_the_refresh_every_ten_minutes(app):
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=redis_connection(app))
    scheduler.load_config_from_file("workers.cron")
    registered = {(j.func_name, j.queue_name, j.interval) for j in scheduler.get_jobs()}
    assert ("workers.jobs.refresh_stats", "reports", 600) in registered


def test_the_cli_refreshes(app, cases):
    from supervise.cli import main

    with time_machine.travel(at(2026, 11, 30), tick=False):
        result = app.test_cli_runner().invoke(main, ["stats", "refresh", "--all"])
    assert result.exit_code == 0 and "2 month(s) rebuilt: 2026-10 … 2026-11" in result.output, result.output
    assert stats.total(stats.figures_by(db.session, **YEAR, group="year")) == COUNTY
