"""获取验证码 in a real Chromium: with JavaScript (fetch, no reload, a countdown) and without (the
button submits the form to the send-code action, which sends it back filled in)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from supervise.cases.models import Case
from supervise.extensions import db
from tests.conftest import ISSUED_ACCESS_CODES
from tests.web.test_citizen import jpeg
from tests.web.test_phone_verification import newest_row, sms_for

NAME, PHONE = "王五", "13700001234"
SUBJECT = "城关镇便民服务中心窗口"
CONTENT = "办理低保材料时窗口人员暗示要请吃饭才给盖章。"


def fill_report(page) -> None:
    page.select_option("#category", "petty_corruption")
    page.fill("#subject", SUBJECT)
    page.fill("#content", CONTENT)
    page.fill("#name", NAME)
    page.fill("#phone", PHONE)


def the_code() -> str:
    return sms_for(newest_row(PHONE).id).params["code"]


def filed_case(page) -> Case:
    ISSUED_ACCESS_CODES.append(page.inner_text("#access-code"))
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.tracking_no == page.inner_text("#tracking-no")))


def test_with_javascript_the_code_is_sent_without_reloading(app, demo, live_server, phone):
    page = phone
    page.goto(f"{live_server}/report")
    fill_report(page)
    page.evaluate("window.notReloaded = true")
    page.click("#send-code")
    status = page.locator("#phone-code-status")
    expect(status).to_have_text("验证码已发送至 137****1234，5 分钟内有效。")
    button = page.locator("#send-code")
    expect(button).to_be_disabled()
    assert re.fullmatch(r"(60|59|58) 秒后重新获取", button.input_value())
    assert page.evaluate("window.notReloaded") is True  # the same page: nothing retyped
    assert page.input_value("#content") == CONTENT
    page.fill("#phone_code", the_code())
    page.check("#consent")
    page.click("button[type=submit]")
    page.wait_for_url("**/report/submitted")
    assert page.locator("#filed-anonymous").count() == 0
    assert filed_case(page).real_name


def test_without_javascript_the_form_comes_back_filled_in(app, demo, live_server, browser, tmp_path):
    context = browser.new_context(
        java_script_enabled=False, locale="zh-CN", viewport={"width": 390, "height": 844}
    )
    page = context.new_page()
    photo = tmp_path / "scene.jpg"
    photo.write_bytes(jpeg())
    try:
        page.goto(f"{live_server}/report")
        fill_report(page)
        page.fill("#location", "城关镇")
        page.set_input_files("#photos", str(photo))
        page.check("#consent")
        page.click("#send-code")
        page.wait_for_load_state()
        assert page.url.endswith("/report/phone-code")
        assert "验证码已发送至 137****1234" in page.inner_text("#phone-code-status")
        for field, value in (
            ("#subject", SUBJECT),
            ("#content", CONTENT),
            ("#name", NAME),
            ("#phone", PHONE),
        ):
            assert page.input_value(field) == value
        assert page.input_value("#location") == "城关镇" and page.is_checked("#consent")
        assert page.is_visible("#photos-again")  # the photo must be chosen again, and it says so
        page.set_input_files("#photos", str(photo))
        page.fill("#phone_code", the_code())
        page.click("button[type=submit]")
        page.wait_for_url("**/report/submitted")
        case = filed_case(page)
        assert case.real_name and len(case.attachments) == 1
    finally:
        context.close()


@pytest.mark.parametrize("javascript", [False, True])
def test_enter_in_a_field_submits_the_report_not_the_code(app, demo, live_server, browser, javascript):
    """The form's default button is the report's: Enter never sends a code. Without a code the
    real-name report is filed anonymous, and the page says so."""
    context = browser.new_context(java_script_enabled=javascript, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/report")
        fill_report(page)
        page.check("#consent")
        page.press("#subject", "Enter")
        page.wait_for_url("**/report/submitted")
        assert "本件已按匿名反映受理" in page.inner_text("#filed-anonymous")
        assert not filed_case(page).real_name
        assert newest_row(PHONE) is None  # no code was asked for
    finally:
        context.close()
