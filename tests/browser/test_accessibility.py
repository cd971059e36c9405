"""WCAG 2.0/2.1 A+AA (axe-core) on every citizen page and the main staff pages, in real Chromium.

One browser context per side (a phone for citizens, a desktop for staff) to keep CI time down; each
test checks every page and then fails once, listing every violation of every page.
"""

from __future__ import annotations

import time_machine
from sqlalchemy import select

from supervise.extensions import db
from supervise.intake.models import Point
from supervise.orgs.models import Org
from tests.browser.axe import format_violations, violations
from tests.web.test_reports_ui import AFTER, WEEK, build_week


class Checker:
    """Runs axe on each page visited and keeps the report of every page that has violations."""

    def __init__(self, page) -> None:
        self.page = page
        self.failures: list[str] = []
        self.checked: list[str] = []

    def visit(self, url: str, name: str, status: int = 200) -> None:
        response = self.page.goto(url)
        if response is None or response.status != status:
            # Reported with the rest, so one run still lists every other page's violations.
            self.checked.append(name)
            self.failures.append(f"{name} ({url}): HTTP {response and response.status}, not {status}")
            return
        self.check(name)

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        self.checked.append(name)
        found = violations(self.page)
        if found:
            self.failures.append(format_violations(found, f"{name} ({self.page.url})"))

    def assert_clean(self) -> None:
        assert not self.failures, "\n\n".join(self.failures)


def test_citizen_pages(app, demo, live_server, phone):
    token = db.session.scalar(select(Point.token).join(Org).where(Org.code == "demo-town-1"))
    axe = Checker(phone)

    # The harness itself: a page with known faults must be reported (no alt, no lang, no label).
    phone.set_content('<img src="data:,"><input type="text">')
    found = {violation["id"] for violation in violations(phone)}
    assert {"image-alt", "html-has-lang", "label"} <= found, found

    axe.visit(f"{live_server}/", "home")
    axe.visit(f"{live_server}/s/{token}", "point form")
    phone.select_option("#category", "petty_corruption")
    phone.fill("#subject", "城关镇便民服务中心窗口")
    phone.fill("#content", "太短")
    phone.check("input[name=consent]")
    phone.click("button[type=submit]")
    phone.wait_for_selector("#content-error")
    axe.check("point form with errors")
    phone.fill("#content", "办理低保材料时，窗口人员暗示要请吃饭才给盖章，已经跑了三趟。")
    phone.click("button[type=submit]")
    phone.wait_for_selector("#access-code")
    axe.check("submitted")
    ref, code = phone.inner_text("#tracking-no"), phone.inner_text("#access-code")

    axe.visit(f"{live_server}/report", "/report")
    axe.visit(f"{live_server}/track", "/track")
    phone.fill("#tracking_no", ref)
    phone.fill("#access_code", code)
    phone.click("button[type=submit]")
    phone.wait_for_selector(".status")
    axe.check("track result")

    axe.visit(f"{live_server}/no-such-page", "404", status=404)

    # Last: wrong codes until the failure budget of this address is spent (a 429 page).
    for _ in range(30):
        phone.goto(f"{live_server}/track")
        phone.fill("#tracking_no", ref)
        phone.fill("#access_code", "AAAA-AAAA-AAAA")
        with phone.expect_navigation() as navigation:
            phone.click("button[type=submit]")
        if navigation.value.status == 429:
            break
    assert navigation.value.status == 429
    axe.check("429")
    axe.assert_clean()


def test_staff_pages(app, demo, live_server, browser):
    refs = build_week()
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    axe = Checker(page)

    def sign_in(username: str) -> None:
        context.clear_cookies()
        page.goto(f"{live_server}/staff/login")
        page.fill("#username", username)
        page.fill("#password", "demo-password")
        page.click("button[type=submit]")
        page.wait_for_selector(".tabs")

    try:
        with time_machine.travel(AFTER, tick=True):
            axe.visit(f"{live_server}/staff/login", "staff login")
            sign_in("demo-supervisor")
            axe.check("queue")
            axe.visit(f"{live_server}/staff/cases/{refs['county_overdue']}", "case page")
            for path, name in (
                ("/staff/notifications", "notifications"),
                ("/staff/escalations", "escalations"),
                ("/staff/reports/", "reports"),
                (f"/staff/reports/{WEEK}", "weekly report"),
                ("/staff/audit", "audit"),
            ):
                axe.visit(f"{live_server}{path}", name)
            sign_in("demo-admin")
            axe.visit(f"{live_server}/staff/admin/", "admin index")
    finally:
        context.close()
    assert len(axe.checked) == 9
    axe.assert_clean()
