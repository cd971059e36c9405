"""登记来信来访 in headless Chromium: a clerk fills the form with a scanned letter page, lands on the
receipt slip (回执), and the slip printed is the slip alone: no header, navigation or buttons."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from PIL import Image
from sqlalchemy import select

from supervise.cases.models import Attachment, Case
from supervise.deadlines.calendar import local_date
from supervise.extensions import db
from tests.browser.axe import assert_no_axe_violations
from tests.conftest import ISSUED_ACCESS_CODES


def test_register_a_letter_and_print_its_slip(app, demo, live_server, browser, tmp_path):
    scan = tmp_path / "letter-page-1.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (1240, 1754), (250, 250, 245)).save(buffer, "JPEG")  # an A4 page at 150 dpi
    scan.write_bytes(buffer.getvalue())
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{live_server}/staff/login")
    page.fill("#username", "demo-town-1-jw-intake")
    page.fill("#password", "demo-password")
    page.click("button[type=submit]")
    page.wait_for_selector(".tabs")
    page.click("#nav-register")
    page.wait_for_selector("#register-form")
    assert_no_axe_violations(page, "registration form")

    received = local_date(datetime.now(UTC)) - timedelta(days=3)
    page.select_option("#channel", "letter")
    page.fill("#received_on", received.isoformat())
    page.select_option("#category", "efficiency")
    page.select_option("#subject_unit", "demo-town-1-village-1")
    page.fill("#subject", "东关村村委会")
    page.fill("#content", "来信反映：村里的低保名单三个月没有公示，去问了两次都说还没定。")
    page.fill("#name", "王五")
    page.fill("#phone", "13700002222")
    page.set_input_files("#photos", str(scan))
    page.click("#register-submit")

    page.wait_for_selector("#receipt")
    tracking_no = page.inner_text("#receipt-tracking-no").strip()
    code = page.inner_text("#receipt-access-code").strip()
    ISSUED_ACCESS_CODES.append(code)
    assert page.inner_text("#receipt-received").strip() == received.isoformat()
    assert page.is_visible("#print-receipt")  # receipt.js ran under the CSP
    assert_no_axe_violations(page, "receipt slip")

    # On screen: the desk around the slip. On paper: the slip alone.
    assert page.is_visible("header.top") and page.is_visible(".staff-nav")
    page.emulate_media(media="print")
    assert not page.is_visible("header.top") and not page.is_visible(".staff-nav")
    assert not page.is_visible("#receipt-tools") and not page.is_visible("#register-another")
    assert page.is_visible("#receipt-access-code") and page.is_visible("#receipt-due")
    box = page.locator("#receipt").bounding_box()
    assert box is not None and box["y"] < 40  # nothing printed above the slip
    pdf = page.pdf(format="A5")  # Chromium prints it (the @page size is A5)
    assert pdf.startswith(b"%PDF")
    page.emulate_media(media="screen")

    case = db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))
    assert case.channel == "letter" and local_date(case.received_at) == received
    assert db.session.scalar(select(Attachment.case_id)) == case.id  # the scanned page, stored

    # The citizen's side: the codes on the slip open the case.
    citizen = context.new_page()
    citizen.goto(f"{live_server}/track")
    citizen.fill("#tracking_no", tracking_no)
    citizen.fill("#access_code", code)
    citizen.click("button[type=submit]")
    citizen.wait_for_selector("#status-help")
    assert tracking_no in citizen.content()
    context.close()
    assert problems == [], problems
