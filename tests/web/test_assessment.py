"""单位考核 (/staff/assessment, its XLSX, the weights on the settings page) over a fixture whose
scores are worked out by hand below.

The cases are received on Monday 2026-07-06 through the submission service; what happened to them
afterwards (answered on time or late, rated, reopened, escalated, rejected) is written straight
into the case and its response clock, the columns the statistics summary reads (the workflow that
writes them is tested in tests/jobs and tests/web). Then the summary is refreshed as its job does.

- 城关镇 (township, owned by 城关镇纪委): 7 cases, 4 about the township and 3 about 东关村 (rolled
  into the township); one rejected. Answered 6 (5 on time, 1 late), rated 5 (3 满意, 1 基本满意,
  1 不满意), reopened 1, escalated 1; valid (accepted) 6; population 20,000.
- 民政局 (department, owned by the 派驻组): 5 cases, all answered (4 on time), rated 3 (all 满意:
  below the minimum sample of 5), none reopened, 1 escalated; no population.
- 人社局 (department): 2 cases, answered, on time: every part 样本不足, no population: no score.
- 青山乡 (township): no cases, population 10,000: only the complaints part scores (0 per 1,000).

Weights set through the admin form: on-time 40, satisfaction 30, reopen 10, escalation 10,
complaints 10; minimum sample 5.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import time_machine
from openpyxl import load_workbook
from sqlalchemy import select

from supervise.cases.states import Rating
from supervise.cases.workflow import find_case
from supervise.deadlines.models import RESPONSE_KINDS, CaseClock
from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.staff.models import AuditEntry
from tests.jobs.test_deadlines import at, file_case
from tests.web.test_admin import login

WEIGHTS = {"on_time": 40, "satisfaction": 30, "reopen": 10, "escalation": 10, "complaints": 10}
FORM = {
    "ASSESS_WEIGHT_ON_TIME": "40",
    "ASSESS_WEIGHT_SATISFACTION": "30",
    "ASSESS_WEIGHT_REOPEN": "10",
    "ASSESS_WEIGHT_ESCALATION": "10",
    "ASSESS_WEIGHT_COMPLAINTS": "10",
    "ASSESS_MIN_SAMPLE": "5",
}


def _case(
    subject: str,
    owner: str,
    *,
    answered=True,
    late=False,
    rating=None,
    reopened=False,
    escalated=False,
    rejected=False,
) -> str:
    with time_machine.travel(at(2026, 7, 6, 10), tick=False):
        ref = file_case(None, category="efficiency")
    case = find_case(db.session, ref)
    case.subject_org_id = get_org_by_code(db.session, subject).id
    case.owner_org_id = case.org_id = get_org_by_code(db.session, owner).id
    case.status = "rejected" if rejected else ("closed" if answered else "accepted")
    if answered:
        clock = db.session.scalar(
            select(CaseClock).where(
                CaseClock.case_id == case.id, CaseClock.kind.in_([k.value for k in RESPONSE_KINDS])
            )
        )
        clock.met_at = clock.due_at + timedelta(days=1) if late else clock.due_at - timedelta(days=3)
        clock.outcome = "met"
        case.responded_at = clock.met_at
    if rating:
        case.rating, case.rated_at = rating, case.responded_at + timedelta(days=1)
    case.reopen_count = 1 if reopened else 0
    case.escalation_level = 1 if escalated else 0
    db.session.commit()
    return ref


@pytest.fixture
def fixture_units(app, demo):
    from supervise.stats.services import refresh

    ok, basic, unhappy = Rating.SATISFIED.value, Rating.BASICALLY_SATISFIED.value, Rating.UNSATISFIED.value
    town, village, jw = "demo-town-1", "demo-town-1-village-1", "demo-town-1-jw"
    _case(town, jw, rating=ok)
    _case(town, jw, rating=ok)
    _case(town, jw, rating=basic, reopened=True)
    _case(town, jw, answered=False, rejected=True)  # received, not valid
    _case(village, jw, rating=ok)
    _case(village, jw, rating=unhappy)
    _case(village, jw, late=True, escalated=True)
    civil, group = "demo-dept-civil", "demo-county-group-1"
    for n in range(5):
        _case(civil, group, late=n == 0, escalated=n == 0, rating=ok if n < 3 else None)
    for _ in range(2):
        _case("demo-dept-hrss", group)
    get_org_by_code(db.session, "demo-town-1").population = 20000
    get_org_by_code(db.session, "demo-town-2").population = 10000
    db.session.commit()
    refresh(db.session, everything=True)


def _by_hand(months: int) -> dict[str, float | None]:
    """The scores, each part by its stated formula, weighted over the parts with enough sample."""
    w = WEIGHTS

    def mean(parts: dict[str, float]) -> float:
        return sum(w[k] * v for k, v in parts.items()) / sum(w[k] for k in parts)

    per_1000 = 6 * 1000 / 20000 * 12 / months
    town1 = {
        "on_time": 100 * 5 / 6,
        "satisfaction": 100 * 4 / 5,
        "reopen": 100 * (1 - (1 / 6) / 0.20),
        "escalation": 100 * (1 - (1 / 7) / 0.30),
        "complaints": 100 * (1 - per_1000 / 5),
    }
    civil = {"on_time": 100 * 4 / 5, "reopen": 100.0, "escalation": 100 * (1 - (1 / 5) / 0.30)}
    return {
        "demo-town-1": round(mean(town1), 1),
        "demo-dept-civil": round(mean(civil), 1),  # satisfaction (3 ratings) left out
        "demo-town-2": 100.0,  # complaints alone: none among 10,000 residents
        "demo-dept-hrss": None,
    }


def _set_weights(client, token):
    bad = client.post(
        "/staff/admin/settings/assessment",
        data={
            "csrf_token": token,
            **FORM,
            **dict.fromkeys([k for k in FORM if k.startswith("ASSESS_WEIGHT")], "0"),
        },
    )
    assert bad.status_code == 422 and "考核权重不能全部为 0" in bad.get_data(as_text=True)
    saved = client.post("/staff/admin/settings/assessment", data={"csrf_token": token, **FORM})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#assessment")
    rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "admin_change")).all()
    assert any(
        r.detail.get("what") == "settings.update" and "ASSESS_WEIGHT_ON_TIME" in r.detail["changes"]
        for r in rows
    )


CELL = re.compile(r'<td[^>]*data-col="([^"]+)"(?: data-value="([^"]*)")?[^>]*>(.*?)</td>', re.S)


def _page_rows(html: str) -> dict[str, dict[str, tuple[str, str]]]:
    rows = {}
    for code, body in re.findall(r'<tr data-org="([^"]+)">(.*?)</tr>', html, re.S):
        rows[code] = {
            col: (value, re.sub(r"<[^>]+>", "", text).strip()) for col, value, text in CELL.findall(body)
        }
    return rows


def _xlsx_rows(body: bytes) -> tuple[list[str], dict[str, list], list[str]]:
    ws = load_workbook(io.BytesIO(body)).active
    grid = [[c.value for c in row] for row in ws.iter_rows()]
    header = grid[2]
    rows, notes = {}, []
    for line in grid[3:]:
        if line[1] and line[2] in ("乡镇政府/街道办", "部门"):
            rows[line[1]] = line
        elif isinstance(line[0], str) and re.match(r"\d+\. ", line[0]):
            notes.append(line[0])
    return header, rows, notes


NAMES = {
    "demo-town-1": "城关镇",
    "demo-town-2": "青山乡",
    "demo-dept-civil": "示范县民政局",
    "demo-dept-hrss": "示范县人社局",
}


@pytest.mark.parametrize(("period", "which", "months"), [("quarter", "2026-Q3", 3), ("year", "2026", 12)])
def test_scores_by_hand_equal_on_page_and_in_xlsx(app, client, fixture_units, period, which, months):
    token = login(client, "demo-admin")
    _set_weights(client, token)
    expected = _by_hand(months)

    page = client.get(f"/staff/assessment?period={period}&which={which}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = _page_rows(html)
    assert set(rows) == set(expected)  # townships and departments; no village, no body
    for code, score in expected.items():
        shown = rows[code]["score"]
        assert (float(shown[0]) if shown[0] else None) == score, code
    # Ranked: 青山乡 100.0, 民政局, 城关镇; 人社局 has no score and no rank.
    order = re.findall(r'<tr data-org="([^"]+)">', html)
    assert order == ["demo-town-2", "demo-dept-civil", "demo-town-1", "demo-dept-hrss"]
    assert [rows[c]["rank"][1] for c in order] == ["1", "2", "3", "—"]
    assert rows["demo-town-1"]["valid"][1] == "6" and rows["demo-town-1"]["received"][1] == "7"
    # Population per 1,000 (a quarter counts four times over for a year's worth).
    per_1000 = 6 * 1000 / 20000 * 12 / months
    assert rows["demo-town-1"]["complaints"][1] == f"{per_1000:.2f}"
    assert rows["demo-dept-civil"]["complaints"][1] == "—（未填人口）"
    assert rows["demo-dept-civil"]["satisfaction"][1] == "100.0%（样本不足）"
    assert rows["demo-dept-civil"]["satisfaction-points"][1] == "—"
    assert rows["demo-dept-hrss"]["on_time"][1] == "100.0%（样本不足）"
    assert rows["demo-town-2"]["on_time"][1] == "—（样本不足）"
    assert "最少样本 5 件" in html

    body = client.get(f"/staff/assessment/export.xlsx?period={period}&which={which}")
    assert body.status_code == 200 and body.headers["Content-Type"].startswith("application/vnd.openxml")
    header, sheet, notes = _xlsx_rows(body.data)
    assert header[:2] == ["排名", "单位"] and header[-1] == "考核得分"
    assert set(sheet) == set(NAMES.values())
    col = {name: i for i, name in enumerate(header)}
    for code, name in NAMES.items():
        line, shown = sheet[name], rows[code]
        assert (line[-1] if line[-1] != "—" else None) == expected[code]
        for key in ("on_time", "satisfaction", "reopen", "escalation", "complaints"):
            label = {
                "on_time": "按期答复率",
                "satisfaction": "满意率",
                "reopen": "重办率",
                "escalation": "督办率",
                "complaints": "每千人有效反映件数（年）",
            }[key]
            value, points = line[col[label]], line[col[f"{label}得分"]]
            page_value, page_points = shown[key][0], shown[f"{key}-points"][0]
            assert (value if not isinstance(value, str) else None) == (
                float(page_value) if page_value else None
            )
            assert (points if points != "—" else None) == (float(page_points) if page_points else None)
        assert line[col["人口"]] == (
            shown["population"][1] if shown["population"][1] == "—" else int(shown["population"][1])
        )
    page_notes = re.findall(r"<li>(.*?)</li>", html.split('id="assessment-footnotes"')[1].split("</ol>")[0])
    assert [re.sub(r"^\d+\. ", "", n) for n in notes] == page_notes
    text = "\n".join(notes)
    for words in (
        "按期答复率：",
        "满意率：",
        "重办率：",
        "督办率：",
        "每千人有效反映件数（年）：",
        "有效反映指已受理的件，不含不予受理、重复件合并",
        "少于 5 件的项注明“样本不足”",
        "按期答复率 40、满意率 30、重办率 10、督办率 10、每千人有效反映件数（年） 10",
        "村（社区）的诉求件计入所在乡镇",
    ):
        assert words in text, words


def test_a_unit_gets_403_and_a_township_supervisor_sees_only_their_township(app, client, fixture_units):
    login(client, "demo-town-1-leader")  # the township government's own account
    assert client.get("/staff/assessment?period=quarter&which=2026-Q3").status_code == 403
    assert client.get("/staff/assessment/export.xlsx?period=quarter&which=2026-Q3").status_code == 403
    client.post("/staff/logout", data={"csrf_token": ""})

    fresh = app.test_client()
    login(fresh, "demo-town-1-jw-intake")  # 城关镇纪委's intake and supervisor
    html = fresh.get("/staff/assessment?period=quarter&which=2026-Q3").get_data(as_text=True)
    assert list(_page_rows(html)) == ["demo-town-1"]  # what 城关镇纪委 supervises, nothing beside it
    assert "示范县民政局" not in html and "青山乡" not in html
    _h, sheet, _n = _xlsx_rows(fresh.get("/staff/assessment/export.xlsx?period=quarter&which=2026-Q3").data)
    assert list(sheet) == ["城关镇"]

    handler = app.test_client()
    login(handler, "demo-handler")  # a handler at the county: not a reader
    assert handler.get("/staff/assessment").status_code == 403

    from supervise.staff.services import create_user

    create_user(
        db.session,
        username="town-1-admin",
        org=get_org_by_code(db.session, "demo-town-1"),
        role="admin",
        password="unit-admin-pw-1",
    )
    db.session.commit()
    unit_admin = app.test_client()
    login(unit_admin, "town-1-admin", "unit-admin-pw-1")  # an admin, but of a unit
    assert unit_admin.get("/staff/assessment?period=quarter&which=2026-Q3").status_code == 403
    assert unit_admin.get("/staff/assessment/export.xlsx").status_code == 403


def test_a_bad_period_is_refused(app, client, demo):
    login(client, "demo-supervisor")
    assert client.get("/staff/assessment?period=quarter&which=2026-Q5").status_code == 422
    assert client.get("/staff/assessment?period=month").status_code == 422
    assert client.get("/staff/assessment?period=year").status_code == 200  # the current year


def test_population_is_set_on_the_orgs_page_and_by_import(app, client, demo):
    token = login(client, "demo-admin")
    town = get_org_by_code(db.session, "demo-town-2")
    assert 'name="population"' in client.get("/staff/admin/orgs").get_data(as_text=True)
    bad = client.post(
        f"/staff/admin/orgs/{town.id}/population", data={"csrf_token": token, "population": "-3"}
    )
    assert bad.status_code == 302 and get_org_by_code(db.session, "demo-town-2").population is None
    ok = client.post(
        f"/staff/admin/orgs/{town.id}/population", data={"csrf_token": token, "population": "12,500"}
    )
    assert ok.status_code == 302
    db.session.expire_all()
    assert get_org_by_code(db.session, "demo-town-2").population == 12500

    from supervise.imports.orgs import COLUMNS

    assert any(c.key == "population" and c.label == "人口" and not c.required for c in COLUMNS)


def test_population_comes_in_with_supervise_import_orgs(app, demo, tmp_path):
    """An optional 人口 column: a number sets it, an empty cell leaves it, a bad one is named."""
    from supervise.cli import main
    from tests.import_county import write_csv

    header = ["单位代码", "单位名称", "单位类型", "上级单位代码", "人口"]
    runner = app.test_cli_runner()
    rows = [
        ["demo-town-1", "城关镇", "乡镇政府/街道办", "demo-county", "20000"],
        ["demo-town-2", "青山乡", "乡镇政府/街道办", "demo-county", ""],
        ["demo-town-3", "新集镇", "乡镇政府/街道办", "demo-county", "8,800"],
    ]
    result = runner.invoke(main, ["import", "orgs", str(write_csv(tmp_path / "orgs.csv", header, rows))])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert [
        get_org_by_code(db.session, c).population for c in ("demo-town-1", "demo-town-2", "demo-town-3")
    ] == [
        20000,
        None,
        8800,
    ]
    again = runner.invoke(
        main, ["import", "orgs", str(write_csv(tmp_path / "orgs.csv", header, rows)), "--dry-run"]
    )
    assert "0 to create, 0 to update" in again.output  # a second run changes nothing
    bad = [["demo-town-2", "青山乡", "乡镇政府/街道办", "demo-county", "很多"]]
    refused = runner.invoke(main, ["import", "orgs", str(write_csv(tmp_path / "bad.csv", header, bad))])
    assert refused.exit_code != 0 and "人口" in refused.output and "须为 0 到" in refused.output
