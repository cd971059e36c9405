"""Two-factor sign-in in real Chromium, on a phone: a supervisor (required by default) signs in,
is led to enrolment, reads the secret off the page, confirms with a code computed by pyotp, keeps
the recovery codes, then signs in again with a code and once with a recovery code."""

from __future__ import annotations

import time

import pyotp
import pytest

from supervise.settings import TWO_FACTOR_DEFAULT_ROLES, TWO_FACTOR_ROLES_KEY
from tests.browser.axe import assert_no_axe_violations
from tests.conftest import ISSUED_ACCESS_CODES


@pytest.fixture(autouse=True)
def real_default(app):
    app.config[TWO_FACTOR_ROLES_KEY] = TWO_FACTOR_DEFAULT_ROLES


def password_step(page, live_server: str) -> None:
    page.goto(f"{live_server}/staff/login")
    page.fill("#username", "demo-supervisor")
    page.fill("#password", "demo-password")
    page.click("button[type=submit]")


def sign_out(page) -> None:
    page.click("nav form button.link")
    page.wait_for_url("**/staff/login")


def test_enrol_and_sign_in_with_codes(phone, live_server, demo):
    page = phone
    password_step(page, live_server)
    page.wait_for_url("**/staff/2fa")  # a supervisor without 2FA goes nowhere else
    assert page.locator("#must-enrol").is_visible()
    page.click("#start-two-factor")
    page.wait_for_selector("#totp-secret")
    qr = page.locator("#totp-qr")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")  # the data: URI passes the CSP
    assert_no_axe_violations(page, "enrolment")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    ISSUED_ACCESS_CODES.append(secret)  # never in the log of the run
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("form[action$='/2fa/confirm'] button[type=submit]")
    page.wait_for_selector("#recovery-codes")
    codes = [c.strip() for c in page.locator("#recovery-codes code").all_inner_texts()]
    ISSUED_ACCESS_CODES.extend(codes)
    assert len(codes) == 10
    assert_no_axe_violations(page, "recovery codes")
    page.click("text=我已保存，开始工作")
    page.wait_for_selector(".tabs")
    sign_out(page)

    # Password, then the next step's code (this step's was spent on enrolment).
    password_step(page, live_server)
    page.wait_for_url("**/staff/login/code")
    assert_no_axe_violations(page, "second step")
    page.fill("#code", "000000")
    page.click("button[type=submit]")
    assert "验证码不正确" in page.locator(".error.summary").inner_text()
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    page.click("button[type=submit]")
    page.wait_for_selector(".tabs")
    sign_out(page)

    # A recovery code, once.
    password_step(page, live_server)
    page.wait_for_url("**/staff/login/code")
    page.fill("#code", codes[0])
    page.click("button[type=submit]")
    page.wait_for_selector(".tabs")
    assert "还剩 9 个" in page.content()
    sign_out(page)
    password_step(page, live_server)
    page.wait_for_url("**/staff/login/code")
    page.fill("#code", codes[0])
    page.click("button[type=submit]")
    page.wait_for_selector(".error.summary")
    assert "/staff/login/code" in page.url
