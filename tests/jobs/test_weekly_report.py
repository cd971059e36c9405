"""The weekly report (每周超期件通报) over a fixture week whose figures are worked out by hand.

Week 2026-W47: Monday 2026-11-16 to Sunday 2026-11-22 (Asia/Shanghai). The cases, by the day
they were received (working days counted on the official calendar, day of receipt not counted).
"village" cases come in at 东关村's point and are owned by 城关镇纪委 (demo-town-1-jw), for which
every figure counts (DESIGN.md §2a), whether it handles them itself or transferred them to the village:

- A, village: received Nov 2, due Nov 23; transferred to the village, which answered Nov 18 (on
  time); rated satisfied Nov 19.
- B, village: received Oct 12, due Nov 2; answered Nov 17 (late); escalated to levels 1 and 2 by
  the sweep of Nov 16; rated unsatisfied Nov 20, which reopens it.
- C, village: received Oct 19, due Nov 9; still unanswered: 9 working days late on Sunday
  (Nov 10–13, 16–20); escalated to level 1 on Nov 16 and level 2 on Nov 17.
- D, county: received Sep 29, across National Day (Oct 1–7 off, Saturday Oct 10 worked): due
  Oct 26; still unanswered: 19 working days late; levels 1 and 2 on Nov 16.
- E, village: received Nov 18, accepted Nov 19.
- F, village: received Nov 4, due Nov 25: within 3 working days of the week's end.
"""

from __future__ import annotations

from datetime import UTC, date

import pytest
import time_machine
from rq import SimpleWorker
from sqlalchemy import select

from supervise.cases.workflow import find_case
from supervise.deadlines.services import run_sweep
from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.queueing import redis_connection
from supervise.reports import services as reports
from supervise.reports.models import PeriodicRun, WeeklyReport
from supervise.reports.weekly import Week, view_for
from tests.jobs.conftest import JW, JW_HANDLER, JW_INTAKE, VILLAGE, VILLAGE_LEADER
from tests.jobs.test_deadlines import act, at, file_case

# The reports below rest on a handful of cases: flagged from any sample (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("flags_from_any_sample")

W47 = Week.parse("2026-W47")
ANSWER = "经核查，情况属实，已责令整改。"


def _answer(ref: str, *, by_the_village: bool = False) -> None:
    """Answered by 城关镇纪委's handler, or (a service complaint) by the village it is transferred
    to; either way the county's supervisor publishes (they oversee 城关镇纪委)."""
    if by_the_village:
        act(ref, JW_INTAKE, "transfer", org=VILLAGE)
        act(ref, VILLAGE_LEADER, "assign", user="v-handler")
        handler = "v-handler"
    else:
        act(ref, JW_INTAKE, "assign", user=JW_HANDLER)
        handler = JW_HANDLER
    act(ref, handler, "start")
    act(ref, handler, "feedback", text=ANSWER)
    act(ref, "demo-supervisor", "publish")


def _rate(ref: str, rating: str) -> None:
    """The citizen's rating (the HTTP path, with the access code, is covered in tests/web)."""
    from supervise.cases import workflow
    from supervise.cases.services import commit, make_context
    from supervise.cases.states import Rating

    workflow.rate(make_context(), find_case(db.session, ref), rating=Rating(rating))
    commit()


@pytest.fixture
def fixture_week(app, village):
    """The six cases above, with the sweep run when a cron would have run it."""
    steps = [
        (at(2026, 9, 29), "D"),
        (at(2026, 10, 12), "B"),
        (at(2026, 10, 19), "C"),
        (at(2026, 11, 2), "A"),
        (at(2026, 11, 4), "F"),
    ]
    refs: dict[str, str] = {}
    for moment, name in steps:
        with time_machine.travel(moment, tick=False):
            # D: the generic form, the county. Service complaints, so a unit may answer them.
            refs[name] = file_case(None if name == "D" else village, category="efficiency")
            act(refs[name], "demo-intake" if name == "D" else JW_INTAKE, "accept")
    with time_machine.travel(at(2026, 11, 16, 9), tick=False):
        run_sweep()  # B, C, D level 1; B, D level 2
    with time_machine.travel(at(2026, 11, 17, 9), tick=False):
        run_sweep()  # C level 2
    with time_machine.travel(at(2026, 11, 17, 10), tick=False):
        _answer(refs["B"])
    with time_machine.travel(at(2026, 11, 18, 10), tick=False):
        _answer(refs["A"], by_the_village=True)
        refs["E"] = file_case(village)
    with time_machine.travel(at(2026, 11, 19, 10), tick=False):
        act(refs["E"], JW_INTAKE, "accept")
        _rate(refs["A"], "satisfied")
    with time_machine.travel(at(2026, 11, 20, 10), tick=False):
        _rate(refs["B"], "unsatisfied")
    return refs


JW_OWN = {
    "received": 1,
    "accepted": 1,
    "responded_on_time": 1,
    "responded_late": 1,
    "open_overdue": 1,
    "overdue_working_days": 9,
    "due_soon": 1,
    "escalated_level1": 2,
    "escalated_level2": 2,
    "reopened": 1,
    "rated": 2,
    "satisfied": 1,
    "on_time_rate": 0.5,
    "satisfaction_rate": 0.5,
}
COUNTY_TOTAL = {
    **JW_OWN,
    "open_overdue": 2,
    "overdue_working_days": 28,
    "escalated_level1": 3,
    "escalated_level2": 3,
}


def _build():
    with time_machine.travel(at(2026, 11, 23, 8), tick=False):  # Monday 08:00, as the job does
        return reports.build(W47)


def test_the_fixture_week_gives_the_figures_worked_out_by_hand(app, fixture_week):
    report = _build()
    county = view_for(report.data)
    assert county["summary"] == COUNTY_TOTAL
    assert set(county["flags"]) == {"on_time_rate", "satisfaction_rate"}  # 50% < 92% and < 85%
    by_code = {o["code"]: o for o in county["orgs"]}
    # The rows are the discipline bodies, each below the body above it; units have none.
    assert [(o["code"], o["depth"]) for o in county["orgs"]] == [
        ("demo-county", 0),
        ("demo-county-group-1", 1),
        ("demo-town-1-jw", 1),
        ("demo-town-2-jw", 1),
    ]
    assert by_code[JW]["parent_id"] == by_code["demo-county"]["id"]
    assert by_code[JW]["own"] == JW_OWN == by_code[JW]["total"]  # A counts for its owner, not the village
    assert by_code["demo-county"]["own"]["open_overdue"] == 1  # D
    assert by_code["demo-county"]["total"] == COUNTY_TOTAL  # rolled up the bodies
    assert by_code["demo-town-2-jw"]["total"]["received"] == 0 and by_code["demo-town-2-jw"]["flags"] == []

    overdue = county["overdue_cases"]
    assert [r["org"] for r in overdue] == ["示范县纪委监委", "城关镇纪委"]
    assert [(r["tracking_no"], r["working_days_overdue"], r["escalation_level"]) for r in overdue] == [
        (fixture_week["D"], 19, 2),  # worst first
        (fixture_week["C"], 9, 2),
    ]
    d = overdue[0]
    assert (d["org"], d["received_on"], d["due_on"], d["real_name"]) == (
        "示范县纪委监委",
        "2026-09-29",
        "2026-10-26",
        False,
    )
    assert overdue[1]["handler"] == ""  # C was never assigned

    trend = county["trend"]
    assert [t["week"] for t in trend] == [f"2026-W{n}" for n in range(40, 48)]
    assert trend[-1] == {"week": "2026-W47", "open_overdue": 2, "on_time_rate": 0.5}
    assert trend[-2] == {"week": "2026-W46", "open_overdue": 3, "on_time_rate": None}  # B, C, D
    assert len(county["footnotes"]) >= 8 and "92%" in county["footnotes"][-1]

    # 城关镇纪委's view: its own cases only.
    town = view_for(report.data, get_org_by_code(db.session, JW).id)
    assert town["summary"] == JW_OWN
    assert [r["tracking_no"] for r in town["overdue_cases"]] == [fixture_week["C"]]
    assert {o["code"] for o in town["orgs"]} == {JW}
    for unit in ("demo-town-1", VILLAGE):  # a unit has no view of its own
        with pytest.raises(ValueError):
            view_for(report.data, get_org_by_code(db.session, unit).id)


def test_the_api_returns_the_same_numbers_scoped_to_the_caller(app, fixture_week, auth, client):
    _build()
    body = client.get("/api/v1/reports/weekly?week=2026-W47", headers=auth("demo-supervisor")).get_json()
    assert body["summary"] == COUNTY_TOTAL and body["week"] == "2026-W47" and body["version"] == 1
    town = client.get("/api/v1/reports/weekly?week=2026-W47", headers=auth(JW_INTAKE)).get_json()
    assert town["summary"] == JW_OWN and town["org"]["code"] == JW
    drill = client.get(f"/api/v1/reports/weekly?week=2026-W47&org={JW}", headers=auth("demo-supervisor"))
    assert drill.get_json()["summary"] == JW_OWN
    # A unit has no row: its figures are its body's.
    unit = client.get(f"/api/v1/reports/weekly?week=2026-W47&org={VILLAGE}", headers=auth("demo-supervisor"))
    assert unit.status_code == 404
    # A township 纪委's supervisor cannot look at the county, another township's, or the township
    # government it hangs below.
    for org in ("demo-county", "demo-town-2-jw", "demo-town-1"):
        refused = client.get(f"/api/v1/reports/weekly?week=2026-W47&org={org}", headers=auth(JW_INTAKE))
        assert refused.status_code == 404, org
    # A unit's accounts get no report at all: it would list the complaints about the unit.
    for username in (VILLAGE_LEADER, "demo-town-1-leader"):
        refused = client.get("/api/v1/reports/weekly?week=2026-W47", headers=auth(username))
        assert refused.status_code == 403, username
    missing = client.get("/api/v1/reports/weekly?week=2026-W40", headers=auth("demo-supervisor"))
    assert missing.status_code == 404 and "尚未生成" in missing.get_json()["error"]["message"]
    bad = client.get("/api/v1/reports/weekly?week=47", headers=auth("demo-supervisor"))
    assert bad.status_code == 422 and "YYYY-Www" in bad.get_json()["error"]["message"]


def test_a_stored_report_does_not_change_when_cases_do(app, fixture_week):
    report = _build()
    frozen = view_for(report.data)
    with time_machine.travel(at(2026, 11, 24, 10), tick=False):
        _answer(fixture_week["C"])  # answered after the week: last week's numbers must not move
    db.session.expire_all()
    stored = db.session.get(WeeklyReport, report.id)
    assert view_for(stored.data) == frozen
    stored.data = {"tampered": True}
    with pytest.raises(RuntimeError, match="never changes"):
        db.session.flush()
    db.session.rollback()

    # Rebuilding is explicit and keeps the old version.
    with time_machine.travel(at(2026, 11, 24, 11), tick=False):
        again = reports.build(W47, reason="C 的答复补录")
    assert again.version == 2 and reports.latest(W47).id == again.id
    assert [r.version for r in reports.versions(W47)] == [2, 1]
    assert view_for(db.session.get(WeeklyReport, report.id).data) == frozen
    # Week's-end figures do not depend on when the report is built: C was still late on Sunday.
    assert view_for(again.data)["summary"]["open_overdue"] == 2


def test_a_week_that_has_not_ended_cannot_be_built(app, demo):
    from supervise.errors import InvalidInput

    with time_machine.travel(at(2026, 11, 22, 23), tick=False), pytest.raises(InvalidInput):
        reports.build(W47)


def test_the_job_builds_each_ended_week_once_on_a_real_worker_and_mails_supervisors(app, fixture_week):
    from rq import Queue

    from supervise.notify.models import OutboxMessage
    from supervise.staff.models import User

    for user in db.session.scalars(select(User).where(User.holding("supervisor"))):
        user.email = f"{user.username}@example.org"
    db.session.commit()
    conn = redis_connection(app)
    with time_machine.travel(at(2026, 11, 23, 8, 0), tick=True):
        for _ in range(2):  # twice: the week is claimed once
            Queue("reports", connection=conn).enqueue("workers.jobs.build_weekly_reports")
            SimpleWorker(["reports"], connection=conn).work(burst=True)
    db.session.expire_all()
    weeks = sorted(r.week for r in db.session.scalars(select(WeeklyReport)))
    # The last four ended weeks since the first case (Sep 29) — W44 to W47 — each once.
    assert weeks == ["2026-W44", "2026-W45", "2026-W46", "2026-W47"]
    claims = db.session.scalars(select(PeriodicRun.period).where(PeriodicRun.job == "weekly_report")).all()
    assert sorted(claims) == weeks
    mails = db.session.scalars(
        select(OutboxMessage.payload).where(
            OutboxMessage.kind == "weekly_report", OutboxMessage.channel == "email"
        )
    ).all()
    # One mail per body with a supervisor: the county, the 派驻组 and the two townships' 纪委.
    bodies = [
        get_org_by_code(db.session, code).id
        for code in ("demo-county", "demo-county-group-1", JW, "demo-town-2-jw")
    ]
    assert sorted(p["org_id"] for p in mails if p["report_id"] == reports.latest(W47).id) == sorted(bodies)

    # Not before Monday 08:00: the week's report is not due yet.
    assert reports.run_weekly(at(2026, 11, 30, 7, 59).astimezone(UTC)) == []


def test_cron_registers_the_weekly_report_for_monday_morning(app):
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=redis_connection(app))
    scheduler.load_config_from_file("workers.cron")
    registered = {(j.func_name, j.queue_name, j.cron, j.interval) for j in scheduler.get_jobs()}
    assert ("workers.jobs.build_weekly_reports", "reports", "0 8 * * 1", None) in registered
    assert ("workers.jobs.build_weekly_reports", "reports", None, 3600) in registered


def test_iso_weeks(app):
    week = Week.parse("2026-w01")
    assert (week.label, week.monday, week.sunday) == ("2026-W01", date(2025, 12, 29), date(2026, 1, 4))
    assert Week.parse("2026-W53") if date(2026, 12, 28).isocalendar()[1] == 53 else True
    assert Week.last_complete(at(2026, 11, 23, 0, 1)).label == "2026-W47"
    assert W47.start == at(2026, 11, 16, 0).astimezone(UTC) and W47.end == at(2026, 11, 23, 0).astimezone(UTC)
    for bad in ("2026-47", "2026-W54", "W47", ""):
        with pytest.raises(ValueError, match="YYYY-Www"):
            Week.parse(bad)


def test_the_fixture_week_gives_the_same_figures_in_csv_and_xlsx(app, fixture_week):
    """The files say what the JSON says: the county's row, 城关镇纪委's row, the overdue list."""
    import csv
    import io

    from openpyxl import load_workbook

    from supervise.reports.export import to_csv, to_xlsx
    from supervise.reports.weekly import COUNTS, LABELS

    view = view_for(_build().data)
    expected = {
        "示范县纪委监委": COUNTY_TOTAL,
        "城关镇纪委": JW_OWN,
    }
    headers = [LABELS[name] for name in COUNTS]

    def check(rows: list[list]) -> None:
        header_at = next(i for i, r in enumerate(rows) if r and r[0] == "单位")
        columns = {str(h): i for i, h in enumerate(rows[header_at]) if h}
        assert set(headers) <= set(columns)
        seen = {}
        for row in rows[header_at + 1 :]:
            if not row or row[0] in (None, ""):
                break
            seen[str(row[0]).strip("\u3000 ")] = row
        for org, figures in expected.items():
            row = seen[org]
            for name in COUNTS:
                assert int(row[columns[LABELS[name]]]) == figures[name], (org, name)
            rate = row[columns[LABELS["on_time_rate"]]]
            assert rate in (0.5, "50.0%"), rate
        listed = [r for r in rows if r and str(r[1] if len(r) > 1 else "") in fixture_week.values()]
        assert [(str(r[1]), int(r[7])) for r in listed] == [(fixture_week["D"], 19), (fixture_week["C"], 9)]

    raw = to_csv(view)
    assert raw.startswith(b"\xef\xbb\xbf")
    check(list(csv.reader(io.StringIO(raw.decode("utf-8-sig")))))

    book = load_workbook(io.BytesIO(to_xlsx(view)))
    summary, overdue = book.worksheets
    assert (summary.title, overdue.title) == ("汇总", "超期件清单")
    check(
        [list(r) for r in summary.iter_rows(values_only=True)]
        + [[]]
        + [list(r) for r in overdue.iter_rows(values_only=True)]
    )
