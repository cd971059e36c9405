"""The case desk in real Chromium (issue 13): a unit's handler answers with a template and an
autosaved draft, the supervisor reviews the draft beside the decision and confirms, the 期限
table reads on a desktop and at 360 px, and the page's text has enough contrast. Clicks and page
loads of both jobs are counted (README "staff efficiency")."""

from __future__ import annotations

from sqlalchemy import select

from supervise.cases.models import CaseDraft
from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.staff.models import ReplyTemplate
from tests.browser.test_citizen_journey import shot
from tests.browser.test_staff_journey import desk  # noqa: F401 - the fixture
from tests.web.test_loop import act

SERVICE = {"category": "efficiency", "subject": "县民政局", "content": "临时救助申请一个多月没有回音。"}
TEMPLATE = "您反映的临时救助申请已办结，救助款已发放到位，请查收。"

CONTRAST = """els => els.map(e => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = c => { const [r, g, b] = c.map(lin); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  let bg = null;
  for (let n = e; n && !bg; n = n.parentElement) {
    const c = getComputedStyle(n).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') bg = c;
  }
  const a = lum(rgb(getComputedStyle(e).color)), b = lum(rgb(bg || 'rgb(255,255,255)'));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
})"""
# How many line boxes an element's text takes.
LINES = (
    "e => { const r = document.createRange(); r.selectNodeContents(e); return r.getClientRects().length; }"
)


def loads(page) -> list[str]:
    """Every document load of the page's main frame, counted as they happen."""
    seen: list[str] = []
    page.on("load", lambda: seen.append(page.url))
    return seen


def test_answer_and_review_of_one_case(app, client, demo, auth, live_server, desk):  # noqa: F811
    ref = client.post("/api/v1/cases", json=SERVICE).get_json()["tracking_no"]
    intake = auth("demo-intake")
    assert act(client, intake, ref, "accept", 1).status_code == 200
    act(client, intake, ref, "transfer", 2, org="demo-dept-civil", note="请核查窗口值班记录")
    act(client, auth("demo-dept-civil-leader"), ref, "assign", 3, user="demo-dept-civil-handler")
    db.session.add(
        ReplyTemplate(org_id=get_org_by_code(db.session, "demo-dept-civil").id, title="已发放", body=TEMPLATE)
    )
    db.session.commit()

    # -- the handler: open the case from 我的待办, pick a template, add a line, send ------------------
    handler = desk(live_server, "demo-dept-civil-handler")
    handler_loads, handler_clicks = loads(handler), 0
    handler.click(f"text={ref}")
    handler_clicks += 1
    handler.wait_for_selector("#form-feedback")
    assert "请核查窗口值班记录" in handler.inner_text(".timeline")  # the transfer's note, for the unit
    handler.select_option("#f-feedback-template", label="已发放")  # JS fills the box
    handler_clicks += 1
    box = handler.locator("#f-feedback-text")
    assert box.input_value() == TEMPLATE
    box.press("End")
    box.type("如有疑问请致电民政局。")
    handler.locator("#autosave-status", has_text="已自动保存").wait_for()
    db.session.expire_all()
    assert db.session.scalar(select(CaseDraft.text)).endswith("如有疑问请致电民政局。")  # saved server-side
    handler.click("#form-feedback button.primary")  # no 开始办理 first
    handler_clicks += 1
    handler.wait_for_selector(".notice")
    assert "答复审核中" in handler.inner_text("h1")

    # -- the supervisor: open it from 待审核, read the draft beside the buttons, publish, confirm -----
    supervisor = desk(live_server, "demo-supervisor")
    supervisor.goto(f"{live_server}/staff/?queue=review")
    review_loads, review_clicks = loads(supervisor), 0
    supervisor.click(f"text={ref}")
    review_clicks += 1
    supervisor.wait_for_selector("#review")
    draft = supervisor.locator("#review-draft").bounding_box()
    button = supervisor.locator('#form-publish button[type="submit"]').bounding_box()
    # Beside each other, both in the first screen: no scrolling from the text to the button.
    assert draft["y"] < 900 and button["y"] < 900 and button["x"] > draft["x"] + draft["width"] - 1
    assert TEMPLATE in supervisor.inner_text("#review-draft")
    shot(supervisor, "12-review-beside-the-draft")
    # Contrast (WCAG AA 4.5:1) of the small grey text and the field labels.
    ratios = supervisor.locator(
        ".hint, .timeline .who, .timeline li.internal, form.action label"
    ).evaluate_all(CONTRAST)
    assert ratios and min(ratios) >= 4.5, ratios
    supervisor.click('#form-publish button[type="submit"]')
    review_clicks += 1
    supervisor.wait_for_selector("#confirm-publish")
    assert TEMPLATE in supervisor.inner_text("#confirm-publish")
    assert "答复审核中" in supervisor.inner_text("h1")  # nothing published yet
    supervisor.click("#confirm-publish-button")
    review_clicks += 1
    supervisor.wait_for_selector(".notice")
    assert "已答复" in supervisor.inner_text("h1")

    # The measure for the README: clicks and page loads, from the queue to done.
    assert (handler_clicks, len(handler_loads)) == (3, 2), handler_loads
    assert (review_clicks, len(review_loads)) == (3, 3), review_loads

    # -- the 期限 table: one line per heading on a desktop, cards at 360 px --------------------------
    lines = supervisor.locator("#clocks th").evaluate_all(f"els => els.map({LINES})")
    assert set(lines) == {1}, lines  # every heading, and each deadline's name, on one line
    supervisor.set_viewport_size({"width": 360, "height": 800})
    assert supervisor.evaluate("document.documentElement.scrollWidth") <= 360
    row = supervisor.locator("#clocks tbody tr").first
    assert row.evaluate("e => getComputedStyle(e).display") == "block"
    assert row.locator("th").evaluate(LINES) == 1  # 答复期限 on one line, not one character per line
    shot(supervisor, "13-deadlines-at-360px")
    assert handler.errors == [] and supervisor.errors == []
