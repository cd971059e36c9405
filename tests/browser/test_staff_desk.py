"""The staff desk on a 360 px phone and at 1440 px with the keyboard, in real headless Chromium.

Few page loads, many checks each (CI time): at 360 px every desk page fits the screen (no
horizontal scroll) with its main action on screen; at 1440 px the filter row holds its button,
and the queue's shortcuts work (and stay out of the way while typing).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from supervise.extensions import db
from supervise.staff.models import User
from tests.browser.axe import assert_no_axe_violations
from tests.conftest import VALID_SUBMISSION

LONG = "办理低保时村干部要求先交材料费，说不交就不给盖章，" * 12


def sign_in(context, live_server: str, username: str):
    context.clear_cookies()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server}/staff/login")
    page.fill("#username", username)
    page.fill("#password", "demo-password")
    page.click("button[type=submit]")
    page.wait_for_selector(".tabs")
    # .tabs is in the DOM before the stylesheets and queue.js have run: a box measured then is
    # unstyled (CI saw the filter button a line below the search box under load).
    page.wait_for_load_state("load")
    page.errors = errors
    return page


def page_width(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


def fully_on_screen(page, selector: str, width: int = 360) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


@pytest.fixture
def cases(app, client, demo):
    """Three new cases (one with a long text and a long subject) and one answer awaiting the
    supervisor's review, so that every page has rows to lay out."""
    refs = []
    for extra in ({}, {"content": LONG, "subject": "东关村村委会" * 6}, {"category": "efficiency"}):
        response = client.post("/api/v1/cases", json={**VALID_SUBMISSION, **extra})
        assert response.status_code == 201
        refs.append(response.get_json()["tracking_no"])
    from supervise.cases import services
    from supervise.cases.workflow import Actor

    intake = Actor.staff(db.session.scalar(select(User).where(User.username == "demo-intake")))
    services.perform_action(refs[2], intake, {"action": "accept", "version": 1})
    services.perform_action(
        refs[2], intake, {"action": "answer", "version": 2, "text": "经核查，已责令整改。"}
    )
    from rq import SimpleWorker

    from supervise.queueing import redis_connection

    SimpleWorker(["default"], connection=redis_connection(app)).work(burst=True)
    return refs


def test_the_desk_fits_a_360px_phone(app, live_server, browser, cases):
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:
        intake = sign_in(context, live_server, "demo-intake")
        # The queue: cards, the bulk action and the case links on screen, no sideways scroll.
        assert page_width(intake) <= 360
        assert intake.locator("#queue thead").evaluate("e => getComputedStyle(e).position") == "absolute"
        assert intake.locator("#queue tbody tr").first.evaluate("e => getComputedStyle(e).display") == "block"
        assert fully_on_screen(intake, f"text={cases[1]}") and fully_on_screen(intake, "#bulk-submit")
        assert fully_on_screen(intake, "#nav-notifications") and not intake.locator("#filters").is_visible()
        intake.click("#filter-box summary")  # the filters fold away on a phone, one tap opens them
        assert fully_on_screen(intake, "#filter-submit") and fully_on_screen(intake, "#filter-org")
        assert intake.locator(".skip-link").evaluate("e => e.getBoundingClientRect().bottom") <= 0
        assert_no_axe_violations(intake, "queue at 360 px")
        # The bulk form says what is missing instead of reloading.
        intake.click("#bulk-submit")
        assert intake.locator("#bulk-empty").is_visible()
        # The case page (its content is another part's; its fit is this stylesheet's).
        intake.goto(f"{live_server}/staff/cases/{cases[1]}")
        assert page_width(intake) <= 360
        accept = intake.locator('form[data-action="accept"] button[type=submit]').first
        accept.scroll_into_view_if_needed()
        box = accept.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360
        assert intake.errors == []

        supervisor = sign_in(context, live_server, "demo-supervisor")
        for path, main_action in (
            ("/staff/", "#nav-queue"),
            ("/staff/notifications", "#notifications button.link-button"),
            ("/staff/escalations", "#show-all"),
            ("/staff/audit", "#audit"),
            ("/staff/reports/", "#nav-reports"),
        ):
            supervisor.goto(f"{live_server}{path}")
            assert page_width(supervisor) <= 360, path
            assert supervisor.locator(main_action).first.is_visible(), path
        assert supervisor.errors == []
    finally:
        context.close()


def test_the_queue_at_1440px_by_keyboard(app, live_server, browser, cases):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    try:
        page = sign_in(context, live_server, "demo-intake")
        # The filter button stays on the filters' line.
        search, button = (
            page.locator("input[name=q]").bounding_box(),
            page.locator("#filter-submit").bounding_box(),
        )
        assert button["y"] < search["y"] + search["height"] and button["y"] + button["height"] > search["y"]
        # ? shows the help, and again hides it.
        page.keyboard.press("?")
        assert page.locator("#shortcuts-help").is_visible()
        page.keyboard.press("?")
        assert not page.locator("#shortcuts-help").is_visible()
        # Typing in the search box is typing, not shortcuts.
        page.click("input[name=q]")
        page.keyboard.type("jk")
        assert page.locator("#queue tr.selected").count() == 0 and page.input_value("input[name=q]") == "jk"
        page.fill("input[name=q]", "")
        page.evaluate("document.activeElement.blur()")  # out of the box
        # j j k: the first row; a: its primary action here (受理), through the bulk form.
        for key in ("j", "j", "k"):
            page.keyboard.press(key)
        rows = page.locator("#queue tbody tr")
        first = rows.first.get_attribute("data-ref")
        assert rows.first.get_attribute("aria-selected") == "true"
        page.keyboard.press("a")
        page.wait_for_selector(".notice")
        assert page.inner_text(".notice") == f"已受理 1 件：{first}"
        # Enter opens the selected case.
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("j")
        second = page.locator("#queue tbody tr.selected").get_attribute("data-ref")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/staff/cases/{second}")
        assert page.errors == []
    finally:
        context.close()
