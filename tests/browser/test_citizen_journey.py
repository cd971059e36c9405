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
from tests.unit.test_workflow import staff

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/supervise-screenshots"))


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


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

    # Note the codes.
    phone.wait_for_selector("#access-code")
    ref = phone.inner_text("#tracking-no")
    code = phone.inner_text("#access-code")
    assert ref.startswith("MS") and len(code) == 14
    assert "只显示这一次" in phone.inner_text("main")
    assert code not in phone.url
    shot(phone, "2-submitted")

    publish_feedback(ref, "经核查，反映属实，已责令当事人作出检查并退还材料。")

    # Track, see the feedback, rate it.
    phone.goto(f"{live_server}/track")
    phone.fill("#tracking_no", ref)
    phone.fill("#access_code", code.lower())
    phone.click("button[type=submit]")
    phone.wait_for_selector(".feedback")
    assert "已责令当事人" in phone.inner_text(".feedback")
    assert phone.locator(".previews img").count() == 1
    shot(phone, "3-tracked")
    phone.check("input[value=satisfied]")
    phone.click("text=提交评价")
    phone.wait_for_selector(".notice")
    assert "感谢您的评价" in phone.inner_text(".notice")
    assert "已办结" in phone.inner_text(".status")
    shot(phone, "4-rated")


def test_errors_keep_what_was_typed_and_english_is_one_tap_away(app, demo, live_server, phone):
    phone.goto(f"{live_server}/report")
    phone.fill("#subject", "县民政局")
    phone.fill("#content", "太短")
    phone.click("button[type=submit]")
    phone.wait_for_selector("#content-error")
    assert phone.input_value("#subject") == "县民政局" and phone.input_value("#content") == "太短"
    assert "问题描述须为 10–5000 个字" in phone.inner_text("#content-error")
    shot(phone, "5-errors")
    phone.click("text=English")
    phone.wait_for_selector("text=Report a problem")
    assert "Reply within 15 working days" in phone.inner_text("main")
