"""系统管理 → 投递失败 in a real browser: an e-mail whose outcome is unknown (its worker died
mid-send) is shown as 结果未知 with the two answers, apart from the ordinary dead letters."""

from __future__ import annotations

from supervise.extensions import db
from supervise.notify import outbox
from supervise.notify.models import OutboxMessage


def test_admin_answers_an_unknown_outcome(app, demo, live_server, browser):
    unknown = outbox.queue_message(db.session, kind="escalated", channel="email", payload={"user_ids": []})
    dead = outbox.queue_message(
        db.session, kind="deadline_overdue", channel="inapp", payload={"user_ids": []}
    )
    db.session.flush()
    unknown.status, unknown.claimed_by, unknown.last_error = "unknown", "worker-gone", outbox.UNKNOWN_NOTE
    dead.status, dead.attempts, dead.last_error = "dead", 5, "ConnectionError: down"
    db.session.commit()
    unknown_id, dead_id = unknown.id, dead.id

    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(f"{live_server}/staff/login")
        page.fill("#username", "demo-admin")
        page.fill("#password", "demo-password")
        page.click("button[type=submit]")
        page.wait_for_selector(".tabs")
        page.goto(f"{live_server}/staff/admin/outbox")

        rows = page.locator("table.admin-table:not(#sms-table) tbody tr")  # the failures, not the SMS log
        assert rows.count() == 2
        first = rows.nth(0)  # unknown outcomes first: someone may be waiting
        assert first.locator("td").first.inner_text() == str(unknown_id)
        assert first.locator(".unknown-outcome").inner_text() == "结果未知"
        assert first.get_by_role("button", name="确认未送达，重新投递").is_visible()
        assert first.get_by_role("button", name="已送达，关闭").is_visible()
        assert first.get_by_role("button", name="重新投递", exact=True).count() == 0
        second = rows.nth(1)
        assert second.get_by_role("button", name="重新投递", exact=True).is_visible()
        assert "无法确定对方是否已收到" in page.locator("#unknown-hint").inner_text()

        first.get_by_role("button", name="已送达，关闭").click()
        page.wait_for_url(f"{live_server}/staff/admin/outbox")
        assert f"消息 {unknown_id} 已按已送达关闭" in page.content()
        assert rows.count() == 1
        assert errors == []
    finally:
        context.close()
    db.session.expire_all()
    assert db.session.get(OutboxMessage, unknown_id).status == "delivered"
    assert db.session.get(OutboxMessage, dead_id).status == "dead"
