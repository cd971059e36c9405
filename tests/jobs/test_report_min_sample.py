"""The weekly report's minimum sample (issue 17 item 4): no "满意率低于85%" from one rating.

Week 2026-W47. Complaints at 东关村's point are owned by 城关镇纪委 (demo-town-1-jw), which is the
only body with cases, so its row and the county's total carry the same counts. Each case is
received on Monday Nov 16 and given its rating on Friday Nov 20 directly in the table (the rating
path itself is tested in tests/jobs/test_weekly_report.py and tests/web): the satisfaction figure
reads only the rating and its time. All ratings are 不满意, so the satisfaction rate is 0% — below
the 85% line — and only the sample size decides whether it is flagged. Minimum sample: 5 (default).
"""

from __future__ import annotations

import io
from datetime import UTC

import pytest
import time_machine
from openpyxl import load_workbook

from supervise.cases.states import Rating
from supervise.cases.workflow import find_case
from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.reports import export, weekly
from supervise.reports import services as reports
from supervise.reports.weekly import Week, view_for
from tests.jobs.conftest import JW
from tests.jobs.test_deadlines import at, file_case
from tests.web.test_admin import login

W47 = Week.parse("2026-W47")


def _unsatisfied(village, n: int) -> None:
    refs = []
    with time_machine.travel(at(2026, 11, 16, 10), tick=False):
        refs = [file_case(village, category="efficiency") for _ in range(n)]
    for ref in refs:
        case = find_case(db.session, ref)
        case.rating = Rating.UNSATISFIED.value
        case.rated_at = at(2026, 11, 20, 10).astimezone(UTC)
    db.session.commit()


def _build():
    with time_machine.travel(at(2026, 11, 23, 8), tick=False):
        return reports.build(W47)


def _rows(report) -> dict[str, dict]:
    return {o["code"]: o for o in report.data["orgs"]}


@pytest.mark.parametrize(("ratings", "flagged"), [(4, False), (5, True)])
def test_a_rate_on_fewer_cases_than_the_minimum_is_shown_marked_and_not_flagged(
    app, village, ratings, flagged
):
    _unsatisfied(village, ratings)
    report = _build()
    assert report.data["thresholds"]["min_sample"] == 5
    for code in (JW, "demo-county"):
        row = _rows(report)[code]
        assert row["total"]["rated"] == ratings and row["total"]["satisfaction_rate"] == 0.0
        assert ("satisfaction_rate" in row["flags"]) is flagged, code
        assert ("satisfaction_rate" in row["thin"]) is not flagged, code  # shown, marked 样本不足
        assert "on_time_rate" not in row["thin"]  # no answers: no rate at all, nothing to mark
    note = report.data["footnotes"][-1]
    assert "少于5件" in note and "样本不足" in note and "不据以标记" in note

    county = {**view_for(report.data), "version": report.version, "built_at": report.built_at.isoformat()}
    html = export.to_html(county)
    csv_text = export.to_csv(county).decode("utf-8-sig")
    for text in (html, csv_text, export.to_text(county)):
        assert note in text
        assert "少于 5 件的比率注明“样本不足”，不标记" in text  # the line under the title
        assert ("0.0%（样本不足）" in text) is not flagged
        assert ("满意率低于85%" in text.replace(note, "")) is flagged  # the 需关注 words
    sheet = load_workbook(io.BytesIO(export.to_xlsx(county)))["汇总"]
    values = [c.value for row in sheet.iter_rows() for c in row if c.value is not None]
    assert any(isinstance(v, str) and note in v for v in values)
    cell = next(
        c for row in sheet.iter_rows() for c in row if c.value == 0.0 and c.number_format != "General"
    )
    assert cell.number_format == ('0.0%"（样本不足）"' if not flagged else "0.0%")  # still a number


def test_the_on_time_rate_needs_the_minimum_too():
    """One late answer is 0% on time: not flagged; five are."""
    lines = {"on_time_rate": 0.92, "satisfaction_rate": 0.85, "min_sample": 5}
    one = {
        "responded_on_time": 0,
        "responded_late": 1,
        "rated": 0,
        "on_time_rate": 0.0,
        "satisfaction_rate": None,
    }
    assert weekly._flags(one, lines) == [] and weekly.thin_rates(one, lines) == ["on_time_rate"]
    five = {**one, "responded_on_time": 4, "on_time_rate": 0.8}
    assert weekly._flags(five, lines) == ["on_time_rate"] and weekly.thin_rates(five, lines) == []
    # A report stored before the minimum existed keeps the flags it had.
    old = {k: v for k, v in lines.items() if k != "min_sample"}
    assert weekly._flags(one, old) == ["on_time_rate"] and weekly.thin_rates(one, old) == []


def test_the_admin_sets_the_minimum_and_only_new_builds_follow(app, client, village):
    _unsatisfied(village, 4)
    first = _build()
    assert "satisfaction_rate" not in _rows(first)[JW]["flags"]

    token = login(client, "demo-admin")
    assert 'name="REPORT_MIN_SAMPLE"' in client.get("/staff/admin/settings").get_data(as_text=True)
    bad = client.post("/staff/admin/settings/report", data={"csrf_token": token, "REPORT_MIN_SAMPLE": "0"})
    assert bad.status_code == 422 and "须在 1 到 1000 之间" in bad.get_data(as_text=True)
    saved = client.post("/staff/admin/settings/report", data={"csrf_token": token, "REPORT_MIN_SAMPLE": "4"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#report")

    with time_machine.travel(at(2026, 11, 24, 8), tick=False):
        second = reports.build(W47, reason="最少样本改为 4 件")
    assert second.data["thresholds"]["min_sample"] == 4
    assert "satisfaction_rate" in _rows(second)[JW]["flags"] and _rows(second)[JW]["thin"] == []
    # The stored first version is a snapshot: still unflagged, still 5 in its footnote.
    db.session.expire_all()
    assert "satisfaction_rate" not in _rows(reports.versions(W47)[-1])[JW]["flags"]
    assert "少于5件" in reports.versions(W47)[-1].data["footnotes"][-1]

    # The staff page marks the thin rate in version 1 and flags it in version 2.
    town = get_org_by_code(db.session, JW)
    old = client.get(f"/staff/reports/{W47.label}?version=1&org={town.code}").get_data(as_text=True)
    assert 'data-thin="satisfaction_rate"' in old and "少于5件" in old
    new = client.get(f"/staff/reports/{W47.label}?org={town.code}").get_data(as_text=True)
    assert 'data-thin="satisfaction_rate"' not in new and "少于4件" in new
