"""The whole citizen journey on a phone-sized screen, in real headless Chromium."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from supervise.cases import services
from supervise.extensions import db
from supervise.intake.models import Point
from supervise.orgs.models import Org
from tests.browser.axe import AXE_JS, assert_no_axe_violations
from tests.unit.test_workflow import staff

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/supervise-screenshots"))


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def axe_check(page, context: str) -> None:
    """WCAG A/AA by axe-core where it is installed (always in CI), without skipping the journey."""
    if AXE_JS.exists() or os.environ.get("CI"):
        assert_no_axe_violations(page, context)


def publish_feedback(ref: str, text: str) -> None:
    """What the staff of 城关镇纪委 (the body that owns a complaint about 城关镇) do, through the
    service layer: accept (吃拿卡要: 检举控告), assign, start, answer with a disposal, approve."""
    steps = [
        ("demo-town-1-jw-intake", {"action": "accept", "kind": "accusation"}),
        ("demo-town-1-jw-intake", {"action": "assign", "user": "demo-town-1-jw-handler"}),
        ("demo-town-1-jw-handler", {"action": "start"}),
        (
            "demo-town-1-jw-handler",
            {
                "action": "feedback",
                "text": text,
                "disposal": "concluded",
                "disposal_note": "已整改，予以了结",
            },
        ),
        ("demo-town-1-jw-intake", {"action": "publish"}),  # intake+supervisor, not the drafter
    ]
    for username, args in steps:
        actor = staff(username)
        version = services.case_for_actor(ref, actor).version
        services.perform_action(ref, actor, {**args, "version": version})


def test_scan_fill_attach_submit_track_rate(app, demo, live_server, phone, tmp_path):
    token = db.session.scalar(select(Point.token).join(Org).where(Org.code == "demo-town-1"))
    photo = tmp_path / "receipt.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 900), (30, 120, 200)).save(buffer, "JPEG")
    photo.write_bytes(buffer.getvalue())
    posts: list[dict] = []
    phone.on("request", lambda r: posts.append(r.headers) if r.method == "POST" else None)

    # Scan: the point's form, already knowing where it is.
    phone.goto(f"{live_server}/s/{token}")
    assert "城关镇便民服务中心" in phone.inner_text(".point")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    phone.select_option("#category", "petty_corruption")
    phone.fill("#subject", "城关镇便民服务中心窗口")
    phone.fill("#content", "办理低保材料时，窗口人员暗示要请吃饭才给盖章，已经跑了三趟。")
    phone.set_input_files("#photos", str(photo))
    phone.wait_for_selector("#previews img")  # the preview script ran under the CSP
    phone.check("input[name=consent]")
    shot(phone, "1-form")
    phone.click("button[type=submit]")

    # Note the codes: uploaded by XMLHttpRequest (with progress), then post/redirect/get.
    phone.wait_for_selector("#access-code")
    assert phone.url.endswith("/report/submitted") and len(posts) == 1
    assert posts[0].get("x-requested-with") == "XMLHttpRequest"
    ref = phone.inner_text("#tracking-no")
    code = phone.inner_text("#access-code")
    assert ref.startswith("MS") and len(code) == 14
    assert "只显示这一次" in phone.inner_text("main")
    assert code not in phone.url
    shot(phone, "2-submitted")
    phone.reload()  # a reload submits nothing again and shows the code no more
    phone.wait_for_selector("#codes-gone")
    assert code not in phone.inner_text("body") and len(posts) == 1
    # The white page reaches the bottom of the screen, however short the page.
    main_bottom = phone.evaluate("document.querySelector('main').getBoundingClientRect().bottom")
    assert main_bottom >= phone.viewport_size["height"] - 1

    publish_feedback(ref, "经核查，反映属实，已责令当事人作出检查并退还材料。")

    # Track: the answer once, what the citizen wrote with their photo under its own heading.
    phone.goto(f"{live_server}/track")
    phone.fill("#tracking_no", ref)
    phone.fill("#access_code", code.lower())
    phone.click("button[type=submit]")
    phone.wait_for_selector(".feedback")
    assert "已责令当事人" in phone.inner_text(".feedback")
    assert phone.inner_text("main").count("已责令当事人") == 1
    assert "请查看答复内容并评价" in phone.inner_text("#status-help")
    assert "我反映的内容" in phone.inner_text("#own-report") and "跑了三趟" in phone.inner_text("#own-report")
    assert phone.locator("#own-report .previews img").count() == 1
    shot(phone, "3-tracked")
    phone.check("input[value=satisfied]")
    phone.click("text=提交评价")
    phone.wait_for_selector(".notice")
    assert phone.url.endswith("/track/case")
    assert "感谢您的评价" in phone.inner_text(".notice")
    assert "已办结" in phone.inner_text(".status") and "满意" in phone.inner_text("#rating-given")
    axe_check(phone, "track result after rating")  # the new sections, WCAG A/AA
    shot(phone, "4-rated")


def test_errors_before_upload_then_from_the_server_and_large_text(app, demo, live_server, phone, tmp_path):
    photo = tmp_path / "p.png"
    Image.new("RGB", (50, 40), (10, 200, 10)).save(photo, "PNG")
    posts: list[str] = []
    phone.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    phone.goto(f"{live_server}/report")
    phone.fill("#subject", "县民政局")
    phone.fill("#content", "太短")
    phone.click("button[type=submit]")
    # Checked in the browser: nothing was uploaded; each error beside its field, tied to it.
    phone.wait_for_selector("#content-error")
    assert posts == []
    assert phone.input_value("#subject") == "县民政局" and phone.input_value("#content") == "太短"
    assert "问题描述须为 10–5000 个字" in phone.inner_text("#content-error")
    assert phone.get_attribute("#content", "aria-invalid") == "true"
    assert "content-error" in phone.get_attribute("#content", "aria-describedby")
    assert phone.locator("#subject-error").count() == 0
    assert phone.locator("#category-error").count() == 1 and phone.locator("#consent-error").count() == 1
    phone.select_option("#category", "efficiency")  # put right: its error goes at once
    assert phone.locator("#category-error").count() == 0
    shot(phone, "5-errors")

    # An error only the server finds (the phone number): shown on the same page, which keeps
    # everything typed, the consent and the chosen photo (nothing to choose again).
    phone.fill("#content", "临时救助申请一个多月没有回音，打电话也没人接。")
    phone.fill("#phone", "12345")
    phone.set_input_files("#photos", str(photo))
    phone.check("input[name=consent]")
    phone.click("button[type=submit]")
    phone.wait_for_selector("#phone-error")
    assert len(posts) == 1 and phone.url.endswith("/report")
    assert phone.is_checked("input[name=consent]") and phone.input_value("#subject") == "县民政局"
    assert phone.evaluate("document.getElementById('photos').files.length") == 1
    assert phone.locator("#content-error").count() == 0 and phone.locator("#form-errors").count() == 1
    phone.fill("#phone", "1380013800")  # being put right: the old error goes
    assert phone.locator("#phone-error").count() == 0
    # A refusal page (here: too large) is told on the form too, and nothing is lost.
    original, app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_CONTENT_LENGTH"], 600
    try:
        phone.click("button[type=submit]")
        phone.wait_for_selector("#form-errors >> text=提交的内容过大")
    finally:
        app.config["MAX_CONTENT_LENGTH"] = original
    assert phone.evaluate("document.getElementById('photos').files.length") == 1
    assert phone.is_enabled("button[type=submit]")

    # 大字版: a link, bigger type, still no sideways scrolling at 360 px.
    phone.set_viewport_size({"width": 360, "height": 740})
    phone.goto(f"{live_server}/report")
    before = phone.evaluate("parseFloat(getComputedStyle(document.querySelector('#subject')).fontSize)")
    phone.click("#text-size")
    phone.wait_for_selector("html.large-text")
    after = phone.evaluate("parseFloat(getComputedStyle(document.querySelector('#subject')).fontSize)")
    assert after >= before * 1.25
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert phone.inner_text("#text-size") == "标准版"
    phone.keyboard.press("Tab")  # the first stop is the skip link, shown when focused
    assert phone.evaluate("document.activeElement.className") == "skip-link"
    axe_check(phone, "large-text form")
    shot(phone, "6-large-text")
    phone.click("text=English")
    phone.wait_for_selector("text=Report a problem")
    assert "Reply within 15 working days" in phone.inner_text("main")
