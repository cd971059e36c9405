"""The weekly report's charts in real headless Chromium: the vendored ECharts draws both, under the CSP."""

from __future__ import annotations

import pytest
import time_machine

from tests.browser.test_citizen_journey import shot
from tests.web.test_reports_ui import AFTER, WEEK, build_week

# Collected before any page script runs: a CSP refusal (script, inline style, eval…) lands here.
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""

# Pixels a chart actually painted (a blank canvas has none).
PAINTED = """(selector) => {
  const canvas = document.querySelector(selector + " canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
  return {painted, width: canvas.width, height: canvas.height};
}"""


@pytest.fixture
def desk(browser):
    """A desktop page that fails the test on any console error, page error or CSP violation."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    context.add_init_script(CSP_PROBE)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    yield page
    problems += [f"csp: {v}" for v in page.evaluate("window.__cspViolations || []")]
    context.close()
    assert problems == [], problems


def test_the_report_page_draws_both_charts_without_errors(app, demo, live_server, desk):
    build_week()
    static: dict[str, dict[str, str]] = {}  # what the browser got for each static file
    desk.on(
        "response", lambda r: "/static/" in r.url and static.setdefault(r.url.split("/static/")[1], r.headers)
    )
    with time_machine.travel(AFTER, tick=True):
        desk.goto(f"{live_server}/staff/login")
        desk.fill("#username", "demo-supervisor")
        desk.fill("#password", "demo-password")
        desk.click("button[type=submit]")
        desk.wait_for_selector(".tabs")
        desk.click("#nav-reports")
        desk.wait_for_url("**/staff/reports/")
        desk.click(f'a[href="/staff/reports/{WEEK}"]')
        desk.wait_for_url(f"**/staff/reports/{WEEK}")

        for chart in ("#chart-trend", "#chart-orgs"):
            desk.wait_for_selector(f'{chart}[data-rendered="true"] canvas', timeout=10_000)
            drawn = desk.evaluate(PAINTED, chart)
            assert drawn["width"] > 300 and drawn["height"] > 200, drawn
            assert drawn["painted"] > 1000, drawn  # axes, bars, legend: not a blank canvas

        # The tooltip is drawn in the canvas too (HTML tooltips would need inline styles).
        desk.hover("#chart-trend canvas", position={"x": 400, "y": 200})
        desk.hover("#chart-orgs canvas", position={"x": 300, "y": 200})
        assert desk.locator("#chart-trend").get_attribute("aria-label")  # ECharts' generated description
        # The small ECharts build, fingerprinted, compressed and cached for good (static_assets.py).
        echarts = next(
            headers for url, headers in static.items() if url.startswith("vendor/echarts/echarts.min.js?v=")
        )
        assert echarts["content-encoding"] == "br" and "immutable" in echarts["cache-control"], echarts
        assert int(echarts["content-length"]) < 200_000, echarts
        shot(desk, "9-weekly-report")

        # Drill down to 城关镇纪委 (rows are discipline bodies): nothing below it, so one chart and
        # no script error.
        desk.click('#report-orgs a:text("城关镇纪委")')
        desk.wait_for_url("**?org=demo-town-1-jw")
        desk.wait_for_selector('#chart-trend[data-rendered="true"] canvas')
        assert "每周超期件通报 · 城关镇纪委" in desk.inner_text("h1")
        assert desk.locator("#chart-orgs").count() == 0
