"""A working day in the staff desk, in real headless Chromium at a desktop size."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_citizen_journey import shot
from tests.conftest import VALID_SUBMISSION


@pytest.fixture
def desk(browser):
    """`desk(username)` → a desktop page signed in through the login form."""
    contexts = []

    def open_desk(live_server: str, username: str):
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server}/staff/")
        page.fill("#username", username)
        page.fill("#password", "demo-password")
        page.click("button[type=submit]")
        page.wait_for_selector(".tabs")
        page.errors = errors
        return page

    yield open_desk
    for context in contexts:
        context.close()


def count(page, queue: str) -> int:
    return int(page.inner_text(f'[data-queue="{queue}"] .count'))


def act(page, action: str, fields: dict[str, str] | None = None, select: dict[str, str] | None = None):
    form = page.locator(f'form[data-action="{action}"]')
    for name, value in (fields or {}).items():
        form.locator(f'[name="{name}"]').fill(value)
    for name, value in (select or {}).items():
        form.locator(f'select[name="{name}"]').select_option(value)
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".notice")


def test_intake_handler_supervisor_and_the_citizen_sees_it(app, client, demo, live_server, desk):
    submitted = client.post("/api/v1/cases", json=VALID_SUBMISSION).get_json()
    ref, code = submitted["tracking_no"], submitted["access_code"]

    intake = desk(live_server, "demo-intake")
    assert count(intake, "intake") == 1 and count(intake, "dispatch") == 0
    intake.click(f"text={ref}")
    act(intake, "accept")
    act(intake, "assign", select={"user": "demo-handler"})
    intake.goto(f"{live_server}/staff/?queue=intake")
    assert count(intake, "intake") == 0 and count(intake, "in_progress") == 1
    shot(intake, "6-intake-queue")

    handler = desk(live_server, "demo-handler")
    assert count(handler, "mine") == 1
    handler.click(f"text={ref}")
    act(handler, "start")
    act(handler, "feedback", fields={"text": "经核查，情况属实，已对当事人批评教育并责令整改。"})
    assert "草稿" in handler.inner_text("main")

    supervisor = desk(live_server, "demo-supervisor")
    assert count(supervisor, "review") == 1
    supervisor.click(f"text={ref}")
    shot(supervisor, "7-case-page")
    act(supervisor, "publish")
    assert "已答复" in supervisor.inner_text("h1")
    supervisor.goto(f"{live_server}/staff/?queue=review")
    assert count(supervisor, "review") == 0 and count(supervisor, "done") == 1

    tracked = client.post("/api/v1/track", json={"tracking_no": ref, "access_code": code}).get_json()
    assert tracked["feedback"].startswith("经核查") and tracked["status"] == "responded"
    for page in (intake, handler, supervisor):
        assert page.errors == []
    assert re.match(r"MS\d{4}-\d{6}", ref)
