"""A fresh `dev.py up` in real Chromium: the demo history (supervise/demo_history.py) gives the
desk's tabs, the weekly reports and their charts something true to show on first start."""

from __future__ import annotations

from supervise.demo_history import load_history
from tests.browser.test_report_charts import PAINTED


def test_a_fresh_demo_shows_history_on_the_desk_and_the_reports(app, demo, live_server, browser):
    """What a first start shows the county's supervisor: late and escalated cases on their tabs,
    a stored report for each past week, and its charts drawn from eight weeks of data."""
    summary = load_history()  # up to the real present, as `dev.py up` does
    assert summary is not None
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    desk = context.new_page()
    errors: list[str] = []
    desk.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        desk.goto(f"{live_server}/staff/login")
        desk.fill("#username", "demo-supervisor")
        desk.fill("#password", "demo-password")
        desk.click("button[type=submit]")
        desk.wait_for_selector(".tabs")
        for queue in ("overdue", "escalated", "done"):
            count = desk.inner_text(f'.tabs a[data-queue="{queue}"] .count')
            assert int(count) > 0, (queue, count)
        desk.click('.tabs a[data-queue="escalated"]')
        desk.wait_for_selector("table tbody tr")
        desk.goto(f"{live_server}/staff/reports/")
        for week in summary.weeks:
            assert desk.locator(f'a[href="/staff/reports/{week}"]').count(), week
        desk.click(f'a[href="/staff/reports/{summary.weeks[-1]}"]')
        desk.wait_for_selector('#chart-trend[data-rendered="true"] canvas', timeout=10_000)
        assert desk.evaluate(PAINTED, "#chart-trend")["painted"] > 1000
        assert desk.locator("#report-orgs a").count() >= 3  # the discipline bodies, each with figures
    finally:
        context.close()
    assert errors == [], errors
