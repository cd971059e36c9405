"""A working day in the staff desk, in real headless Chromium at a desktop size."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_citizen_journey import shot
from tests.conftest import VALID_SUBMISSION, verified


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
        # The queue's load event may come after .tabs exists: a test counting page loads from here
        # on must not count this one (a loaded CI machine counted the queue as a third load).
        page.wait_for_load_state("load")
        page.errors = errors
        return page

    yield open_desk
    for context in contexts:
        context.close()


def count(page, queue: str) -> int:
    return int(page.inner_text(f'[data-queue="{queue}"] .count'))


def act(
    page,
    action: str,
    fields: dict[str, str] | None = None,
    select: dict[str, str] | None = None,
    button: str | None = None,
):
    """Fill and submit the form of `action` (`button`: which one, where an action has several,
    e.g. 受理 / 受理并交办 / 受理并直接答复)."""
    form = page.locator(f'form[data-action="{action}"]')
    if button is not None:
        form = form.filter(has=page.get_by_role("button", name=button, exact=True))
    for name, value in (fields or {}).items():
        form.locator(f'[name="{name}"]').fill(value)
    for name, value in (select or {}).items():
        form.locator(f'select[name="{name}"]').select_option(value)
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".notice")


def test_intake_handler_supervisor_and_the_citizen_sees_it(app, client, demo, live_server, desk):
    """A 检举控告 (吃拿卡要) about the county: it stays inside the commission and ends with a
    recorded disposal."""
    submitted = client.post("/api/v1/cases", json=VALID_SUBMISSION).get_json()
    ref, code = submitted["tracking_no"], submitted["access_code"]

    intake = desk(live_server, "demo-intake")
    assert count(intake, "intake") == 1 and count(intake, "dispatch") == 0
    intake.click(f"text={ref}")
    # The category's default kind is preselected; accepting records it.
    accept_form = intake.locator('form[data-action="accept"]').first
    assert accept_form.locator('select[name="kind"]').input_value() == "accusation"
    act(intake, "accept", button="受理")
    assert intake.inner_text("#kind") == "检举控告"
    act(intake, "assign", select={"user": "demo-handler"})
    intake.goto(f"{live_server}/staff/?queue=intake")
    assert count(intake, "intake") == 0 and count(intake, "in_progress") == 1
    shot(intake, "6-intake-queue")

    handler = desk(live_server, "demo-handler")
    assert count(handler, "mine") == 1
    handler.click(f"text={ref}")
    act(handler, "start")
    act(
        handler,
        "feedback",
        fields={
            "text": "经核查，情况属实，已对当事人批评教育并责令整改。",
            "disposal_note": "已批评教育并整改",
        },
        select={"disposal": "concluded"},
    )
    assert "草稿" in handler.inner_text("main")
    assert "予以了结" in handler.inner_text("#disposal")

    supervisor = desk(live_server, "demo-supervisor")
    assert count(supervisor, "review") == 1
    supervisor.click(f"text={ref}")
    shot(supervisor, "7-case-page")
    supervisor.click('#form-publish button[type="submit"]')  # 按原文发布… → the confirmation page
    supervisor.click("#confirm-publish-button")
    supervisor.wait_for_selector(".notice")
    assert "已答复" in supervisor.inner_text("h1")
    supervisor.goto(f"{live_server}/staff/?queue=review")
    assert count(supervisor, "review") == 0 and count(supervisor, "done") == 1

    tracked = client.post("/api/v1/track", json={"tracking_no": ref, "access_code": code}).get_json()
    assert tracked["feedback"].startswith("经核查") and tracked["status"] == "responded"
    for page in (intake, handler, supervisor):
        assert page.errors == []
    assert re.fullmatch(r"MS-[2-9A-HJ-NP-Z]{5}-[2-9A-HJ-NP-Z]{5}", ref)


def test_a_service_complaint_goes_to_the_unit_and_its_answer_back_for_review(
    app, client, demo, live_server, desk
):
    """作风效能诉求 about 民政局: the 派驻组 that supervises it accepts and sends it to 民政局; the
    unit's leader assigns, its handler answers; the 派驻组 reviews and publishes. The unit never
    sees who complained (screenshots 10–11)."""
    token = dict(demo["points"])["民政局办事大厅窗口"]
    submitted = client.post(
        "/api/v1/cases",
        json=verified(  # real name: with the number's SMS code
            {
                **VALID_SUBMISSION,
                "category": "efficiency",
                "point": token,
                "name": "李四",
                "phone": "13900001111",
            }
        ),
    ).get_json()
    ref, code = submitted["tracking_no"], submitted["access_code"]

    body = desk(live_server, "demo-group-1-intake")  # intake and reviewer of a two-person office
    assert count(body, "intake") == 1
    body.click(f"text={ref}")
    assert "李*" in body.inner_text("#reporter")
    assert body.locator('form[data-action="accept"]').first.locator('select[name="kind"]').input_value() == (
        "service"
    )
    act(body, "accept", button="受理")
    transfer = body.locator('form[data-action="transfer"] select[name="org"] option').first
    assert transfer.get_attribute("value") == "demo-dept-civil" and "被反映单位" in transfer.inner_text()
    act(body, "transfer", select={"org": "demo-dept-civil"})
    assert "示范县民政局" in body.inner_text("#holder")

    leader = desk(live_server, "demo-dept-civil-leader")
    assert count(leader, "dispatch") == 1  # the leader's desk opens on what waits for a handler
    leader.click(f"text={ref}")
    main = leader.inner_text("main")
    assert "反映人" not in main and "李" not in main and "139" not in main and "实名" not in main
    shot(leader, "10-unit-leader-case")
    act(leader, "assign", select={"user": "demo-dept-civil-handler"})

    handler = desk(live_server, "demo-dept-civil-handler")
    assert count(handler, "mine") == 1
    handler.click(f"text={ref}")
    act(handler, "start")
    act(handler, "feedback", fields={"text": "已联系申请人，临时救助款本周内发放到位。"})
    assert "反映人" not in handler.inner_text("main")

    body.goto(f"{live_server}/staff/?queue=review")
    assert count(body, "review") == 1
    body.click(f"text={ref}")
    assert "示范县民政局" in body.inner_text(".timeline")
    shot(body, "11-review-a-units-answer")
    body.click('#form-publish button[type="submit"]')  # 按原文发布… → the confirmation page
    body.click("#confirm-publish-button")
    body.wait_for_selector(".notice")
    assert "已答复" in body.inner_text("h1")

    tracked = client.post("/api/v1/track", json={"tracking_no": ref, "access_code": code}).get_json()
    assert tracked["feedback"].startswith("已联系申请人") and tracked["status"] == "responded"
    for page in (body, leader, handler):
        assert page.errors == []


def test_deadline_chips_and_the_escalation_inbox(app, client, demo, live_server, desk, monkeypatch):
    """An overdue, escalated case as a county supervisor sees it: coloured chips, the 期限 table,
    the 督办 inbox and its count in the nav (screenshots 8–9)."""
    from datetime import UTC, datetime, time

    from supervise.cases import services
    from supervise.deadlines.calendar import SHANGHAI, local_date
    from supervise.deadlines.services import run_sweep

    now = datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)  # a Monday
    monkeypatch.setattr(services, "utcnow", lambda: now)  # the live server runs in this process
    ref = client.post("/api/v1/cases", json=VALID_SUBMISSION).get_json()["tracking_no"]
    due = services.make_context().clocks.calendar.add_working_days(local_date(now), 15).day
    late = services.make_context().clocks.calendar.add_working_days(due, 2).day
    now = datetime.combine(late, time(11), tzinfo=SHANGHAI).astimezone(UTC)
    run_sweep(now)

    supervisor = desk(live_server, "demo-supervisor")
    # One case under 督办 (its stage clock at levels 1 and 2, its response clock at level 1): the
    # badge counts cases, as the 督办件 tab does.
    assert supervisor.inner_text("#nav-escalations .badge") == "1"
    supervisor.goto(f"{live_server}/staff/?queue=escalated")
    assert supervisor.inner_text('[data-queue="escalated"] .count') == "1"
    row = supervisor.locator("table.queue tbody tr", has_text=ref)
    overdue = row.locator(".chip.due.overdue")
    assert overdue.inner_text() == "超期 2 个工作日"
    # Red with white text, and the level-2 escalation chip solid dark red: a visible difference.
    assert overdue.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(179, 18, 15)"
    assert row.locator(".chip.escalated").inner_text() == "督办·二级"
    assert (
        row.locator(".chip.escalated").evaluate("e => getComputedStyle(e).backgroundColor")
        == "rgb(107, 10, 8)"
    )
    shot(supervisor, "8-escalated-queue")

    supervisor.click(f"text={ref}")
    assert supervisor.locator('#clocks tr[data-kind="response"] .chip.due').inner_text() == "超期 2 个工作日"
    supervisor.click("#nav-escalations")
    assert supervisor.locator("#escalations tbody tr").count() == 3
    shot(supervisor, "9-escalation-inbox")
    assert supervisor.errors == []
