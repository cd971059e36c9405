"""The weekly report's staff pages (/staff/reports): list, report, drill-down, scope, downloads, rebuild.

One week, 2026-W48 (Nov 23–29), built over cases filed with the deadline tests' helpers. The
report's rows are the discipline bodies (DESIGN.md §2a); a case counts for the body that owns it:
  城关镇纪委 (东关村's complaints): one still unanswered past its Nov 23 deadline, one transferred to
  东关村 and answered late (Nov 24);
  青山乡纪委 (石门村's complaints): one transferred to 石门村 and answered on time (Nov 23);
  the county itself: one overdue, one received during the week.
So the county's on-time rate is 50 %, 城关镇纪委's 0 % (flagged), 青山乡纪委's 100 %.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from urllib.parse import quote, urlsplit

import pytest
import time_machine
from sqlalchemy import func, select

from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.reports import services as reports
from supervise.reports.models import WeeklyReport
from supervise.reports.weekly import Week
from supervise.staff.models import AuditEntry
from supervise.staff.services import create_user
from tests.jobs.test_deadlines import act, at, file_case
from tests.web.test_staff import csrf_token, login

# The reports below rest on a handful of cases: flagged from any sample (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("flags_from_any_sample")

WEEK = "2026-W48"
BUILT_AT = at(2026, 11, 30, 8)
AFTER = at(2026, 12, 1, 10)


JW_INTAKE = "demo-town-1-jw-intake"  # 城关镇纪委's intake and supervisor
# prefix → (village code, its township 纪委's intake, the village's leader, who also handles)
VILLAGES = {
    "v": ("demo-town-1-village-1", JW_INTAKE, "demo-town-1-village-1-leader"),
    "s": ("demo-town-2-village-1", "demo-town-2-jw-intake", "demo-town-2-village-1-leader"),
}


def handler_of(prefix: str) -> str:
    return VILLAGES[prefix][2]


def build_week() -> dict[str, str]:
    """File the cases above and build 2026-W48 (version 1); returns the tracking numbers."""
    users = {prefix: get_org_by_code(db.session, code) for prefix, (code, _, _) in VILLAGES.items()}

    def answered_later(prefix: str) -> str:
        """A service complaint the township's 纪委 transfers to the village, which starts on it."""
        code, intake, leader = VILLAGES[prefix]
        ref = file_case(users[prefix], category="efficiency")
        act(ref, intake, "accept")
        act(ref, intake, "transfer", org=code)
        act(ref, leader, "assign", user=leader)
        act(ref, leader, "start")
        return ref

    refs = {}
    with time_machine.travel(at(2026, 11, 2), tick=False):  # Monday: due Monday Nov 23
        refs["village_overdue"] = file_case(users["v"])
        refs["county_overdue"] = file_case()
        refs["village_late"] = answered_later("v")
        refs["shimen_on_time"] = answered_later("s")
    for key, prefix, day in (("shimen_on_time", "s", 23), ("village_late", "v", 24)):
        with time_machine.travel(at(2026, 11, day), tick=False):
            act(refs[key], handler_of(prefix), "feedback", text="经核查，已责令整改。")
            act(refs[key], "demo-supervisor", "publish")
    with time_machine.travel(at(2026, 11, 25), tick=False):
        refs["county_new"] = file_case()
    reports.build(Week.parse(WEEK), now=BUILT_AT)
    return refs


@pytest.fixture
def staff_client(app, demo):
    """`staff_client("demo-supervisor")` → a test client signed in through the real form."""

    def make(username: str):
        client = app.test_client()
        assert login(client, username).status_code == 302
        return client

    return make


@pytest.fixture
def week(demo):
    """The built week; the test then runs on Tuesday Dec 1 2026, after the week has ended."""
    refs = build_week()
    with time_machine.travel(AFTER, tick=True):
        yield refs


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def figure(page: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">\s*<dt>[^<]*</dt><dd>([^<]*)</dd>', page).group(1)


def org_rows(page: str) -> dict[str, str]:
    """data-org code → that row's class attribute, in table order."""
    return dict((code, cls) for cls, code in re.findall(r'<tr class="([^"]*)" data-org="([^"]+)"', page))


def chart_data(page: str) -> dict:
    raw = re.search(r'<script type="application/json" id="report-chart-data">(.*?)</script>', page, re.S)
    return json.loads(raw.group(1))


# -- the list ------------------------------------------------------------------------------------------


def test_list_shows_weeks_and_versions_to_supervisors_and_admins(staff_client, week):
    supervisor = staff_client("demo-supervisor")
    page = html(supervisor.get("/staff/reports/"))
    assert 'id="nav-reports"' in page
    assert f'href="/staff/reports/{WEEK}"' in page and "2026-11-23 至 2026-11-29" in page
    assert f'href="/staff/reports/{WEEK}?version=1"' in page and "系统自动生成" in page
    assert "2026-11-30 08:00" in page  # built_at in Beijing time
    assert html(staff_client("demo-admin").get("/staff/reports/"))

    for username in ("demo-intake", "demo-handler"):
        client = staff_client(username)
        assert client.get("/staff/reports/").status_code == 403
        assert client.get(f"/staff/reports/{WEEK}").status_code == 403
        assert client.get(f"/staff/reports/{WEEK}.csv").status_code == 403
        assert 'id="nav-reports"' not in html(client.get("/staff/"))


def test_list_without_reports_and_unknown_weeks(staff_client, demo):
    client = staff_client("demo-supervisor")
    assert "尚无通报" in html(client.get("/staff/reports/"))
    assert client.get(f"/staff/reports/{WEEK}").status_code == 404  # no report yet
    assert client.get("/staff/reports/2026-W99").status_code == 404
    assert client.get("/staff/reports/latest").status_code == 404


# -- one report ----------------------------------------------------------------------------------------


def test_report_page_shows_the_county_figures_flags_orgs_and_overdue_list(staff_client, week):
    page = html(staff_client("demo-supervisor").get(f"/staff/reports/{WEEK}"))
    assert "每周超期件通报 · 示范县纪委监委" in page and "2026-11-23 至 2026-11-29" in page
    assert 'id="report-version">1<' in page and "2026-11-30 08:00" in page
    assert figure(page, "received") == "1"
    assert figure(page, "open_overdue") == "2"
    assert figure(page, "responded_on_time") == "1" and figure(page, "responded_late") == "1"
    assert figure(page, "on_time_rate") == "50.0%"
    assert figure(page, "satisfaction_rate") == "—"  # nobody rated

    rows = org_rows(page)
    assert list(rows) == [  # tree order: each body followed by the bodies below it; no units
        "demo-county",
        "demo-county-group-1",
        "demo-town-1-jw",
        "demo-town-2-jw",
    ]
    assert rows["demo-county"].split() == ["depth-0", "flagged"]
    assert rows["demo-town-1-jw"].split() == ["depth-1", "flagged"]  # 0 % on time
    assert rows["demo-town-2-jw"] == "depth-1"  # 100 %: not flagged
    assert rows["demo-county-group-1"] == "depth-1"  # nothing answered: no rate, no flag

    # 需关注: the county and each flagged body below it, with the line it is under.
    flags = re.search(r'<section class="report-flags.*?</section>', page, re.S).group(0)
    assert "按期答复率低于92%" in flags and "城关镇纪委" in flags and "青山乡" not in flags

    # Drill-down and case links.
    assert f'href="/staff/reports/{WEEK}?org=demo-town-1-jw"' in page
    assert 'href="/staff/?queue=overdue&amp;org=demo-town-1-jw"' in page
    for key in ("village_overdue", "county_overdue"):
        assert f'href="/staff/cases/{week[key]}"' in page
    assert week["village_late"] not in page and week["county_new"] not in page  # not overdue
    assert "周末超期未答复件（2 件）" in page
    assert "统计周期：所示周的周一 00:00 至周日 24:00" in page  # footnotes

    # The charts' data: 8 weeks of trend, the three bodies directly below the county.
    chart = chart_data(page)
    assert [p["week"] for p in chart["trend"]][-1] == WEEK and len(chart["trend"]) == 8
    assert chart["trend"][-1] == {"week": WEEK, "open_overdue": 2, "on_time_rate": 0.5}
    assert {c["name"]: (c["on_time"], c["late"]) for c in chart["children"]} == {
        "县纪委监委派驻第一纪检监察组": (0, 0),
        "城关镇纪委": (0, 1),
        "青山乡纪委": (1, 0),
    }
    assert chart["target"] == 0.92
    # Static URLs may carry a content fingerprint (?v=…).
    for script in ("/static/vendor/echarts/echarts.min.js", "/static/js/report-charts.js"):
        assert re.search(rf'<script src="{re.escape(script)}(\?v=[0-9a-f]+)?" defer></script>', page), script


def test_the_queue_link_lists_that_orgs_overdue_cases(staff_client, week):
    from supervise.deadlines.services import run_sweep

    with time_machine.travel(at(2026, 11, 30, 9), tick=False):
        run_sweep()  # sets the 已超期 flags the queue reads
    client = staff_client("demo-supervisor")
    page = html(client.get("/staff/?queue=overdue&org=demo-town-1-jw"))
    assert week["village_overdue"] in page and week["county_overdue"] not in page


def test_drill_down_shows_only_the_subtree(staff_client, week):
    page = html(staff_client("demo-supervisor").get(f"/staff/reports/{WEEK}?org=demo-town-1-jw"))
    assert "每周超期件通报 · 城关镇纪委" in page
    assert org_rows(page) == {"demo-town-1-jw": "depth-0 flagged"}  # no body below it
    assert figure(page, "open_overdue") == "1" and figure(page, "on_time_rate") == "0.0%"
    assert week["village_overdue"] in page and week["county_overdue"] not in page
    assert "青山乡" not in page
    # Back up the tree, and the downloads keep the org.
    assert f'<a href="/staff/reports/{WEEK}?org=demo-county">示范县纪委监委</a> › ' in page
    assert f'href="/staff/reports/{WEEK}.xlsx?org=demo-town-1-jw"' in page
    assert 'id="chart-orgs"' not in page and "没有下级单位" in page
    assert chart_data(page)["has_children"] is False
    assert [c["name"] for c in chart_data(page)["children"]] == ["城关镇纪委（本级）"]

    # A unit has no row of its own (its complaints count for its body): nothing to drill into.
    for unit in ("demo-town-1", "demo-town-1-village-1"):
        assert staff_client("demo-supervisor").get(f"/staff/reports/{WEEK}?org={unit}").status_code == 404


def test_a_township_supervisor_sees_the_township_and_nothing_beside_it(staff_client, week):
    """城关镇纪委's supervisor: its own row only — not the county, not 青山乡纪委, and not the
    township government 城关镇 it hangs below (a unit, which it supervises)."""
    client = staff_client(JW_INTAKE)
    page = html(client.get(f"/staff/reports/{WEEK}"))
    assert "每周超期件通报 · 城关镇纪委" in page
    assert set(org_rows(page)) == {"demo-town-1-jw"}
    assert "示范县纪委监委" not in page and "青山乡" not in page
    assert 'class="breadcrumb"' not in page  # nothing above the user's own org to go back to
    assert html(client.get(f"/staff/reports/{WEEK}?org=demo-town-1-jw"))
    elsewhere = ("demo-town-2-jw", "demo-town-2-village-1", "demo-county", "demo-dept-civil", "demo-town-1")
    for outside in (*elsewhere, "demo-town-1-village-1", "no-such-org"):
        assert client.get(f"/staff/reports/{WEEK}?org={outside}").status_code == 404, outside
        assert client.get(f"/staff/reports/{WEEK}.csv?org={outside}").status_code == 404, outside
        assert client.get(f"/staff/reports/{WEEK}.xlsx?org={outside}").status_code == 404, outside


# -- downloads -----------------------------------------------------------------------------------------


def test_downloads_have_the_right_type_and_a_utf8_file_name(staff_client, week):
    client = staff_client("demo-supervisor")
    xlsx = client.get(f"/staff/reports/{WEEK}.xlsx?org=demo-town-1-jw")
    assert xlsx.status_code == 200
    assert xlsx.headers["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert xlsx.data[:2] == b"PK"  # a zip container
    disposition = xlsx.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="weekly-report-2026-W48-demo-town-1-jw-v1.xlsx"; ')
    assert f"filename*=UTF-8''{quote('每周超期件通报-2026-W48-城关镇纪委-v1.xlsx')}" in disposition
    assert "no-store" in xlsx.headers["Cache-Control"]

    csv = client.get(f"/staff/reports/{WEEK}.csv")
    assert csv.status_code == 200
    assert csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    county_name = quote("每周超期件通报-2026-W48-示范县纪委监委-v1.csv")
    assert f"filename*=UTF-8''{county_name}" in csv.headers["Content-Disposition"]
    text = csv.data.decode("utf-8-sig")
    assert "城关镇纪委" in text and "青山乡纪委" in text and week["village_overdue"] in text

    town = client.get(f"/staff/reports/{WEEK}.csv?org=demo-town-1-jw").data.decode("utf-8-sig")
    assert "城关镇纪委" in town and "青山乡" not in town and week["county_overdue"] not in town
    assert client.get(f"/staff/reports/{WEEK}.csv?version=2").status_code == 404
    assert client.get("/staff/reports/2026-W47.csv").status_code == 404


# -- rebuilding ----------------------------------------------------------------------------------------


def test_rebuild_keeps_version_one_and_makes_version_two(staff_client, week):
    v1 = db.session.scalar(select(WeeklyReport).where(WeeklyReport.week == WEEK))
    v1_data = json.dumps(v1.data, sort_keys=True)
    # A late answer after the report was built: the rebuilt figures change, the stored v1 does not.
    act(week["village_overdue"], JW_INTAKE, "accept")
    admin = staff_client("demo-admin")
    page = html(admin.get(f"/staff/reports/{WEEK}"))
    assert 'id="rebuild-form"' in page
    token = csrf_token(admin, f"/staff/reports/{WEEK}")
    response = admin.post(
        f"/staff/reports/{WEEK}/rebuild", data={"csrf_token": token, "reason": "更正承办单位"}
    )
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == f"/staff/reports/{WEEK}"
    assert urlsplit(response.headers["Location"]).query == "version=2"

    db.session.expire_all()
    stored = db.session.scalars(
        select(WeeklyReport).where(WeeklyReport.week == WEEK).order_by(WeeklyReport.version)
    ).all()
    assert [r.version for r in stored] == [1, 2]
    assert json.dumps(stored[0].data, sort_keys=True) == v1_data and stored[0].reason is None
    assert stored[1].reason == "更正承办单位" and stored[1].built_by_id is not None
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "admin_change"))
    assert entry.username == "demo-admin"
    assert entry.detail == {
        "what": "weekly_report",
        "week": WEEK,
        "version": 2,
        "previous_version": 1,
        "reason": "更正承办单位",
    }

    latest = html(admin.get(response.headers["Location"]))
    assert 'id="report-version">2<' in latest and "已重新生成 2026-W48 通报第 2 版" in latest
    assert "理由：更正承办单位" in latest and "第 2 版（当前）" in latest
    old = html(admin.get(f"/staff/reports/{WEEK}?version=1"))
    assert 'id="report-version">1<' in old and 'id="old-version"' in old
    assert f'href="/staff/reports/{WEEK}.csv?org=demo-county&amp;version=1"' in old
    assert 'id="old-version"' not in html(admin.get(f"/staff/reports/{WEEK}"))
    listing = html(admin.get("/staff/reports/"))
    assert listing.index("第 2 版") < listing.index("第 1 版")  # latest version first


def test_rebuild_is_for_system_admins_only(staff_client, week):
    jw = get_org_by_code(db.session, "demo-town-1-jw")
    create_user(db.session, username="jw-admin", org=jw, role="admin", password="demo-password")
    db.session.commit()
    for username in ("demo-supervisor", JW_INTAKE, "jw-admin", "demo-intake"):
        client = staff_client(username)
        token = csrf_token(client, "/staff/")
        response = client.post(f"/staff/reports/{WEEK}/rebuild", data={"csrf_token": token, "reason": "试试"})
        assert response.status_code == 403, username
    jw_admin = html(staff_client("jw-admin").get(f"/staff/reports/{WEEK}"))
    assert "每周超期件通报 · 城关镇纪委" in jw_admin and 'id="rebuild-form"' not in jw_admin
    assert 'id="rebuild-form"' not in html(staff_client("demo-supervisor").get(f"/staff/reports/{WEEK}"))
    assert db.session.scalar(select(func.count(WeeklyReport.id))) == 1
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "access_denied")) == 4


def test_a_units_accounts_get_no_report(staff_client, week):
    """The report lists the complaints its bodies own, 检举控告 about units included: a unit's
    accounts (its leader, even an admin placed at the unit) never read it (DESIGN.md §2a)."""
    town = get_org_by_code(db.session, "demo-town-1")
    create_user(db.session, username="town-admin", org=town, role="admin", password="demo-password")
    db.session.commit()
    for username in ("town-admin", "demo-town-1-leader", "demo-town-1-village-1-leader"):
        client = staff_client(username)
        for path in ("", "?org=demo-town-1", "?org=demo-town-1-jw"):
            assert client.get(f"/staff/reports/{WEEK}{path}").status_code == 403, (username, path)
        assert client.get(f"/staff/reports/{WEEK}.csv").status_code == 403, username
    for username in ("demo-town-1-leader", "demo-town-1-village-1-leader"):
        assert 'id="nav-reports"' not in html(staff_client(username).get("/staff/"))


def test_rebuild_needs_csrf_and_a_reason(staff_client, week):
    admin = staff_client("demo-admin")
    assert admin.post(f"/staff/reports/{WEEK}/rebuild", data={"reason": "没有令牌"}).status_code == 400
    token = csrf_token(admin, f"/staff/reports/{WEEK}")
    missing = admin.post(f"/staff/reports/{WEEK}/rebuild", data={"csrf_token": token, "reason": "  "})
    assert missing.status_code == 422 and "请填写重新生成的理由" in missing.get_data(as_text=True)
    too_long = admin.post(f"/staff/reports/{WEEK}/rebuild", data={"csrf_token": token, "reason": "长" * 201})
    assert too_long.status_code == 422
    assert db.session.scalar(select(func.count(WeeklyReport.id))) == 1
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "admin_change")) == 0


def test_a_week_that_has_not_ended_cannot_be_built(staff_client, week):
    admin = staff_client("demo-admin")
    token = csrf_token(admin, f"/staff/reports/{WEEK}")
    future = Week.containing(datetime.now().date()).label
    response = admin.post(
        f"/staff/reports/{future}/rebuild", data={"csrf_token": token, "reason": "提前生成"}
    )
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/staff/reports/"
    assert "尚未结束" in html(admin.get("/staff/reports/"))
    assert db.session.scalar(select(func.count(WeeklyReport.id))) == 1
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "admin_change")) == 0


def test_the_page_shows_every_figure_of_the_report():
    from supervise.reports.views import HEADLINE, RATES
    from supervise.reports.weekly import COUNTS, LABELS

    assert sorted(HEADLINE) == sorted((*COUNTS, *RATES)) and set(HEADLINE) <= set(LABELS)
