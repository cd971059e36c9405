"""The place's name on the QR form, and the page of a replaced code, in real Chromium at 360 px (the
narrowest phone the citizen's pages are made for): large type, no sideways scrolling, axe clean."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from supervise.extensions import db
from supervise.intake.models import Point
from supervise.intake.points import reissue_token
from tests.browser.axe import format_violations, violations

LONG_NAME = "东关村村民委员会便民服务大厅第三号综合受理窗口（社保、医保、民政、残联业务）"


@pytest.fixture
def narrow_phone(browser):
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], errors


def village_point() -> Point:
    return db.session.scalar(select(Point).where(Point.name == "东关村村务公开栏"))


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width} px wide at 360 px"


def place_font_px(page) -> float:
    return page.evaluate("parseFloat(getComputedStyle(document.querySelector('#place-name')).fontSize)")


def test_the_form_shows_the_place_large_at_360_px(app, demo, live_server, narrow_phone):
    point = village_point()
    point.name = LONG_NAME  # the longest kind of name a county gives a window
    db.session.commit()
    page = narrow_phone
    page.goto(f"{live_server}/s/{point.token}")
    name = page.locator("#place-name")
    assert name.inner_text() == LONG_NAME and "东关村" in page.inner_text(".place-org")
    assert place_font_px(page) >= 20
    box = name.bounding_box()
    assert box["y"] < 300 and box["x"] >= 0 and box["x"] + box["width"] <= 360  # at the top, on screen
    no_sideways_scroll(page)
    found = violations(page)
    assert not found, format_violations(found, "point form at 360 px")

    # 大字版: larger still, and still no sideways scrolling.
    normal = place_font_px(page)
    page.click("#text-size")
    page.wait_for_selector("html.large-text")
    assert place_font_px(page) > normal
    no_sideways_scroll(page)
    found = violations(page)
    assert not found, format_violations(found, "point form, 大字版, at 360 px")


def test_a_replaced_code_page_is_clear_and_leads_to_the_new_form(app, demo, live_server, narrow_phone):
    point = village_point()
    old = point.token
    reissue_token(point, None)
    db.session.commit()
    page = narrow_phone
    response = page.goto(f"{live_server}/s/{old}")
    assert response.status == 410
    assert page.inner_text("h1") == "此码已更换"
    assert page.inner_text("#place-name") == "东关村村务公开栏" and place_font_px(page) >= 20
    no_sideways_scroll(page)
    found = violations(page)
    assert not found, format_violations(found, "replaced code page")

    page.click("#new-form")
    page.wait_for_selector("#case-form")
    assert page.url == f"{live_server}/s/{point.token}"
    assert page.inner_text("#place-name") == "东关村村务公开栏"

    # A form left open from before the reissue: sent with JavaScript (the upload path), it lands on
    # the new form with a notice and creates nothing.
    page.goto(f"{live_server}/s/{point.token}")
    page.evaluate(f"document.querySelector('#case-form').action = '/s/{old}'")
    page.select_option("#category", "petty_corruption")
    page.fill("#subject", "村务公开栏")
    page.fill("#content", "村务公开栏三个月没有更新，低保名单一直没有公示。")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    page.wait_for_selector(".notice")
    assert page.url == f"{live_server}/s/{point.token}?replaced=1"
    assert "刚才填写的内容没有提交" in page.inner_text(".notice")
    assert page.input_value("#content") == ""
    found = violations(page)
    assert not found, format_violations(found, "new form after a replaced code's POST")


def test_an_admin_reissues_a_code_from_the_point_page(app, demo, live_server, browser):
    point = village_point()
    old, point_id = point.token, point.id
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/staff/login")
        page.fill("#username", "demo-admin")
        page.fill("#password", "demo-password")
        page.click("button[type=submit]")
        page.wait_for_selector(".tabs")
        page.goto(f"{live_server}/staff/admin/points")
        page.click(f"a[href='/staff/admin/points/{point_id}']")
        page.wait_for_selector("#point-reissue")
        found = violations(page)
        assert not found, format_violations(found, "admin point page")

        # The browser asks for the confirmation before anything is sent (and the server checks too).
        page.click("#point-reissue button[type=submit]")
        assert page.url.endswith(f"/staff/admin/points/{point_id}")
        db.session.expire_all()
        assert village_point().token == old
        page.check("#point-reissue input[name=confirm]")
        page.click("#point-reissue button[type=submit]")
        page.wait_for_selector("#retired-codes")
        db.session.expire_all()
        new = village_point().token
        assert new != old and page.inner_text("#point-url").endswith(f"/s/{new}")
        assert old in page.inner_text("#retired-codes")
        found = violations(page)
        assert not found, format_violations(found, "admin point page after a reissue")
    finally:
        context.close()
