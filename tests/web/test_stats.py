"""统计分析 (/staff/stats, GET /api/v1/stats, the XLSX): the hand-worked fixture of
tests/jobs/test_stats_refresh.py shows the same figures on the page, in the API and in the XLSX;
drill-down goes one level down the tree; a township's supervisor sees its township only; a unit's
accounts get nothing (DESIGN.md §2a); the benchmark's smoke size runs and its results check out.
"""

# The fixtures `cases` and `staff_client` are imported from their modules and named as arguments.
# ruff: noqa: F811

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import time_machine

from supervise.extensions import db
from supervise.stats import services as stats
from tests.jobs.test_deadlines import at
from tests.jobs.test_stats_refresh import COUNTY, TOWN_1, TOWN_2, cases  # noqa: F401 - the fixture
from tests.web.test_staff import staff_client  # noqa: F401 - the fixture

YEAR = "period=year&which=2026"
REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def refreshed(cases):
    with time_machine.travel(at(2026, 11, 30), tick=False):
        stats.refresh(db.session)
    return cases


def _api_figures(figures: stats.Figures) -> dict:
    return json.loads(json.dumps(figures.as_dict()))


def _row(rows: list[dict], label: str) -> dict:
    return next(r for r in rows if r["label"] == label)


def test_page_api_and_xlsx_show_the_hand_worked_figures(app, refreshed, auth, client, staff_client):
    body = client.get(f"/api/v1/stats?{YEAR}", headers=auth("demo-supervisor")).get_json()
    assert body["org"]["code"] == "demo-county" and body["period"]["label"] == "2026"
    assert body["total"] == _api_figures(COUNTY)
    assert _row(body["rows"], "城关镇") == {**_row(body["rows"], "城关镇"), **_api_figures(TOWN_1)}
    assert _row(body["rows"], "青山乡")["received"] == TOWN_2.received
    assert [t["key"] for t in body["trend"]] == ["2026-10", "2026-11"]
    assert body["hot_spots"][0]["label"] == "东关村" and body["hot_spots"][0]["received"] == 3
    by_channel = client.get(f"/api/v1/stats?{YEAR}&group=channel", headers=auth("demo-supervisor")).get_json()
    assert {r["key"]: r["received"] for r in by_channel["rows"]} == {"qr": 7, "web": 2, "phone": 2}
    kind = client.get(f"/api/v1/stats?{YEAR}&group=category&kind=accusation", headers=auth("demo-supervisor"))
    assert kind.get_json()["total"]["received"] == 2

    page = staff_client("demo-supervisor").get(f"/staff/stats?{YEAR}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    total = re.search(r'id="stats-total">(.*?)</dl>', html, re.S).group(1)
    shown = dict(re.findall(r'data-figure="(\w+)"><dt>[^<]*</dt><dd>([^<]*)</dd>', total))
    assert shown["received"] == "11" and shown["answered_on_time"] == "4" and shown["on_time_rate"] == "66.7%"
    assert shown["working_days_to_answer"] == "12.2" and shown["satisfaction_rate"] == "80.0%"
    assert shown["reopen_rate"] == "16.7%" and shown["escalated"] == "3"
    assert 'id="stats-chart-data"' in html and "<script>" not in html
    assert "按期答复" in html and "统计口径" in html  # definitions on the page

    xlsx = staff_client("demo-supervisor").get(f"/staff/stats/export.xlsx?{YEAR}")
    assert xlsx.status_code == 200 and "attachment" in xlsx.headers["Content-Disposition"]
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(xlsx.data)).active
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    header = next(r for r in rows if r[1] == "收件")
    total_row = next(r for r in rows if r[0] == "合计")
    figures = dict(zip(header[1:], total_row[1:], strict=False))
    assert figures["收件"] == 11 and figures["按期答复"] == 4 and figures["督办"] == 3
    assert figures["按期答复率"] == pytest.approx(4 / 6) and figures["满意率"] == pytest.approx(0.8)
    assert figures["平均答复用时（工作日）"] == pytest.approx(12.2)
    assert any(r[0] and str(r[0]).startswith("1. 统计口径") for r in rows)


def test_drill_down_goes_one_level_down_the_tree(app, refreshed, auth, client, staff_client):
    reader = staff_client("demo-supervisor")
    html = reader.get(f"/staff/stats?{YEAR}").get_data(as_text=True)
    link = re.search(r'<a href="([^"]*org=demo-town-1(?:&[^"]*)?)">城关镇</a>', html)
    assert link, html
    down = reader.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "城关镇（本级）" in down and "东关村" in down and "西关社区" in down and "石门村" not in down
    body = client.get(f"/api/v1/stats?{YEAR}&org=demo-town-1", headers=auth("demo-supervisor")).get_json()
    assert {r["label"]: r["received"] for r in body["rows"]} == {"东关村": 3, "城关镇": 2, "西关社区": 1}
    assert body["total"]["received"] == TOWN_1.received and body["org"]["parent_code"] == "demo-county"
    assert 'id="stats-up"' in down


def test_a_township_supervisor_sees_its_own_township_and_a_unit_nothing(
    app, refreshed, auth, client, staff_client
):
    town = client.get(f"/api/v1/stats?{YEAR}", headers=auth("demo-town-1-jw-intake")).get_json()
    assert [r["label"] for r in town["rows"]] == ["城关镇"] and town["total"] == _api_figures(TOWN_1)
    # Asking for the other township gives nothing of it: only the owner's cases count.
    other = client.get(
        f"/api/v1/stats?{YEAR}&org=demo-town-2", headers=auth("demo-town-1-jw-intake")
    ).get_json()
    assert other["rows"] == [] and other["total"]["received"] == 0 and other["hot_spots"] == []
    html = staff_client("demo-town-1-jw-intake").get(f"/staff/stats?{YEAR}").get_data(as_text=True)
    assert "城关镇" in html and "青山乡" not in html and "石门村" not in html
    # A unit's accounts (leaders included) never read counts of complaints about themselves.
    for username in ("demo-town-1-leader", "demo-town-1-village-1-leader", "demo-dept-civil-leader"):
        assert client.get(f"/api/v1/stats?{YEAR}", headers=auth(username)).status_code == 403
        assert staff_client(username).get(f"/staff/stats?{YEAR}").status_code == 403
    # Intake and handlers of a body: not statistics readers.
    assert client.get("/api/v1/stats", headers=auth("demo-intake")).status_code == 403
    assert staff_client("demo-handler").get("/staff/stats").status_code == 403


def test_bad_filters_are_refused(app, demo, auth, client):
    for query in ("period=week", "period=month&which=2026-13", "channel=fax", "org=nowhere", "category=nope"):
        response = client.get(f"/api/v1/stats?{query}", headers=auth("demo-supervisor"))
        assert response.status_code in (404, 422), query


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"), reason="the benchmark needs PostgreSQL"
)
def test_the_bench_smoke_runs_and_its_results_check_out():
    """`python -m bench.stats --smoke` on a database of its own: it checks its figures against plain
    SQL and raises on a difference (no timing asserted here)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "LOG_LEVEL")}
    env["BENCH_DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, "/bench_stats_smoke", "", ""))
    done = subprocess.run(
        [sys.executable, "-m", "bench.stats", "--smoke", "--repeat", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    summary = re.search(r"([\d,]+) cases, (\d+) months .* (\d+) checks passed", done.stdout)
    assert summary and summary.group(1) == "2,000" and int(summary.group(3)) >= 10, done.stdout
    for name in (
        "child_org",
        "subject_unit",
        "category",
        "channel",
        "kind",
        "drill-down",
        "hot spots",
        "XLSX",
    ):
        assert name in done.stdout, name
