"""Deadlines in the staff desk: the chips on queue rows and the case page, the 期限 section (and the
API's `clocks`), and the supervisors' escalation inbox (督办) with its scope, toggle and nav count.

Time is moved, not waited for: the case services take "now" from a clock the test sets, and the
deadline sweep runs as of that moment (`run_sweep(now)`), as the cron would have.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import select

from supervise.cases import services
from supervise.cases.models import Case
from supervise.cases.workflow import Actor
from supervise.deadlines.calendar import SHANGHAI, local_date
from supervise.deadlines.models import CaseClock, Escalation
from supervise.deadlines.services import run_sweep
from supervise.extensions import db
from supervise.staff.models import User
from tests.web.test_staff import login

# A Monday with an official calendar: 10:00 in Shanghai.
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
PROVISIONAL_HINT = "该年度节假日安排尚未公布，期限为暂定"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now


@pytest.fixture
def clock(monkeypatch):
    """The moment case services (submission, pages, actions, the API) take as now; set `.now`."""
    fake = FakeClock(T0)
    monkeypatch.setattr(services, "utcnow", lambda: fake.now)
    return fake


@pytest.fixture
def signed_in(app, demo):
    """`signed_in("demo-intake")` → a test client signed in through the real form."""

    def make(username: str):
        client = app.test_client()
        assert login(client, username).status_code == 302
        return client

    return make


def calendar():
    return services.make_context().clocks.calendar


def at_11(day: date) -> datetime:
    """11:00 Shanghai on `day`, in UTC."""
    return datetime.combine(day, time(11), tzinfo=SHANGHAI).astimezone(UTC)


def due_day(ref: str, kind: str = "response") -> date:
    case = db.session.scalar(select(Case).where(Case.tracking_no == ref))
    clock = db.session.scalar(select(CaseClock).where(CaseClock.case_id == case.id, CaseClock.kind == kind))
    return local_date(clock.due_at)


def accept(ref: str, username: str) -> None:
    user = db.session.scalar(select(User).where(User.username == username))
    version = db.session.scalar(select(Case.version).where(Case.tracking_no == ref))
    services.perform_action(ref, Actor.staff(user), {"action": "accept", "version": version})


def row_of(html: str, ref: str) -> str:
    """The one table row of a page that names this case."""
    rows = [r.split("</tr>")[0] for r in html.split("<tr")[1:] if ref in r.split("</tr>")[0]]
    assert len(rows) == 1, rows
    return "<tr" + rows[0]


def section(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end, html.index(start))]


def chip(tone: str, text: str) -> str:
    return f'<span class="chip due {tone}">{text}</span>'


def escalated_tab(html: str) -> int:
    return int(re.search(r'data-queue="escalated">[^<]*<span class="count">(\d+)</span>', html).group(1))


def nav_count(html: str) -> int | None:
    """The number on the 督办 nav link (None: no link; 0: a link without a badge)."""
    found = re.search(r'id="nav-escalations">督办(?: <span class="badge">(\d+)</span>)?</a>', html)
    return None if found is None else int(found.group(1) or 0)


# -- chips ------------------------------------------------------------------------------------------


def test_chips_follow_the_response_deadline_on_the_queue_and_the_case_page(clock, submit, signed_in):
    ref = submit()["tracking_no"]
    # Accepted at once, so only the response clock runs (a late stage clock would escalate too).
    accept(ref, "demo-intake")
    due = due_day(ref)
    intake, supervisor = signed_in("demo-intake"), signed_in("demo-supervisor")

    def queue_row(client=intake, queue="dispatch") -> str:
        return row_of(client.get(f"/staff/?queue={queue}").get_data(as_text=True), ref)

    def due_on_case_page(client=intake) -> str:
        return section(client.get(f"/staff/cases/{ref}").get_data(as_text=True), '<dd id="due">', "</dd>")

    # Just received: 15 working days, nothing to colour.
    row = queue_row()
    assert chip("normal", "剩 15 个工作日") in row and 'class="normal"' in row
    assert "督办" not in row and "暂定" not in row
    assert chip("normal", "剩 15 个工作日") in due_on_case_page()

    # Two working days left: the sweep flags it due soon; the row and chip turn amber.
    clock.now = at_11(calendar().working_days_before(due, 2))
    run_sweep(clock.now)
    row = queue_row()
    assert chip("soon", "剩 2 个工作日") in row and 'class="soon"' in row
    assert chip("soon", "剩 2 个工作日") in queue_row(queue="due_soon")

    # The due day itself.
    clock.now = at_11(due)
    assert chip("soon", "今日到期") in queue_row()
    assert chip("soon", "今日到期") in due_on_case_page()

    # Two working days late: overdue, escalated to level 1.
    clock.now = at_11(calendar().add_working_days(due, 2).day)
    run_sweep(clock.now)
    row = queue_row()
    assert chip("overdue", "超期 2 个工作日") in row and 'class="overdue"' in row
    assert '<span class="chip escalated level-1">督办·一级</span>' in row
    page = due_on_case_page(supervisor)
    assert chip("overdue", "超期 2 个工作日") in page and "督办·一级" in page
    assert "督办·一级" in queue_row(supervisor, "escalated")
    assert chip("overdue", "超期 2 个工作日") in queue_row(supervisor, "overdue")

    # Still not answered well after: level 2.
    clock.now = at_11(calendar().add_working_days(due, 7).day)
    run_sweep(clock.now)
    row = queue_row(supervisor, "escalated")
    assert chip("overdue", "超期 7 个工作日") in row
    assert '<span class="chip escalated level-2">督办·二级</span>' in row and "督办·一级" not in row


def test_a_chip_never_counts_negative_days_before_the_sweep_catches_up(clock, submit, signed_in):
    ref = submit()["tracking_no"]
    clock.now = at_11(calendar().add_working_days(due_day(ref), 1).day)  # no sweep has run
    row = row_of(signed_in("demo-intake").get("/staff/?queue=intake").get_data(as_text=True), ref)
    assert chip("overdue", "超期 1 个工作日") in row and "剩 -" not in row


def test_a_provisional_deadline_is_marked_with_a_reason(clock, submit, signed_in):
    # A year far ahead has no official holiday schedule: the deadline is counted by rule.
    clock.now = datetime(2091, 3, 5, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
    answer = submit()
    assert answer["due_provisional"] is True
    intake = signed_in("demo-intake")
    provisional = f'<span class="chip provisional" title="{PROVISIONAL_HINT}">暂定</span>'
    assert provisional in row_of(
        intake.get("/staff/?queue=intake").get_data(as_text=True), answer["tracking_no"]
    )
    page = intake.get(f"/staff/cases/{answer['tracking_no']}").get_data(as_text=True)
    assert provisional in section(page, '<dd id="due">', "</dd>")
    assert provisional in section(page, 'id="clocks"', "</table>")


def test_a_finished_case_shows_its_status_not_a_countdown(clock, submit, signed_in):
    ref = submit()["tracking_no"]
    intake = db.session.scalar(select(User).where(User.username == "demo-intake"))
    case = services.perform_action(
        ref,
        Actor.staff(intake),
        {"action": "reject", "version": 1, "reason": "不属于受理范围", "reason_code": "out_of_scope"},
    )
    assert case.status == "rejected"
    row = row_of(signed_in("demo-intake").get("/staff/?queue=done").get_data(as_text=True), ref)
    assert '<span class="chip done">' in row and "个工作日" not in row


# -- the 期限 section and the API --------------------------------------------------------------------


def test_clocks_section_lists_every_deadline_oldest_first(clock, client, submit, signed_in, auth):
    ref = submit(name="张三", phone="13812345678")["tracking_no"]  # real name: also the 告知 clock
    stage_due = due_day(ref, "stage")
    # Past the 5-day stage deadline, the sweep escalates; then intake accepts, late.
    clock.now = at_11(calendar().add_working_days(stage_due, 1).day)
    run_sweep(clock.now)
    api = client  # Bearer tokens, no session (a session would need the CSRF header)
    version = api.get(f"/api/v1/cases/{ref}", headers=auth("demo-intake")).get_json()["version"]
    response = api.post(
        f"/api/v1/cases/{ref}/actions",
        json={"action": "accept", "version": version},
        headers=auth("demo-intake"),
    )
    assert response.status_code == 200, response.get_json()

    clocks = api.get(f"/api/v1/cases/{ref}", headers=auth("demo-supervisor")).get_json()["clocks"]
    assert [c["kind"] for c in clocks] == ["response", "stage", "ack"]
    response_clock, stage, ack = clocks
    assert response_clock["label"] == "答复期限" and response_clock["met_at"] is None
    assert response_clock["working_days_left"] == 15 - 6 and response_clock["late"] is None
    assert (
        response_clock["due_date"] == due_day(ref).isoformat() and response_clock["due_provisional"] is False
    )
    assert stage["label"] == "受理/转办期限" and stage["outcome"] == "met" and stage["late"] is True
    assert stage["overdue_at"] is not None and stage["working_days_left"] is None and stage["level"] == 1
    assert stage["due_date"] == stage_due.isoformat()
    assert ack["outcome"] == "met" and ack["late"] is False and ack["overdue_at"] is None
    assert set(response_clock) >= {
        "kind",
        "label",
        "started_at",
        "due_at",
        "due_provisional",
        "warned_at",
        "overdue_at",
        "level2_at",
        "met_at",
        "outcome",
        "late",
    }

    page = signed_in("demo-supervisor").get(f"/staff/cases/{ref}").get_data(as_text=True)
    table = section(page, 'id="clocks"', "</table>")
    assert "<h2>期限</h2>" in page
    rows = re.findall(r'<tr data-kind="(\w+)" class="(\w+)">(.*?)</tr>', table, re.S)
    assert [(kind, tone) for kind, tone, _ in rows] == [
        ("response", "normal"),
        ("stage", "stopped"),
        ("ack", "stopped"),
    ]
    response_row, stage_row, ack_row = (cells for _, _, cells in rows)
    assert "答复期限" in response_row and due_day(ref).isoformat() in response_row
    assert chip("normal", "剩 9 个工作日") in response_row
    assert "受理/转办期限" in stage_row and "逾期完成" in stage_row and stage_due.isoformat() in stage_row
    assert clock.now.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") in stage_row
    assert "实名举报受理告知期限" in ack_row and "按期完成" in ack_row
    assert "本单位处理期限" not in page  # the stage deadline is met: no longer a running fact


# -- the escalation inbox -----------------------------------------------------------------------------


def point_token(demo, name: str) -> str:
    return dict(demo["points"])[name]


def act(ref: str, username: str, **args) -> None:
    user = db.session.scalar(select(User).where(User.username == username))
    version = db.session.scalar(select(Case.version).where(Case.tracking_no == ref))
    services.perform_action(ref, Actor.staff(user), {**args, "version": version})


@pytest.fixture
def town_cases(clock, demo, submit):
    """A service complaint about a village of each township, accepted by the township's 纪委 and
    sent to the village (转办), then swept two working days after its response due day, still not
    started there. Late at a unit, each clock goes first to the owner (the township's 纪委, level
    1), and the village's stage clock, long late, on to the county (level 2)."""
    refs = {}
    for name, point_name, town in (("town1", "东关村村务公开栏", 1), ("town2", "石门村村委会", 2)):
        ref = submit(point=point_token(demo, point_name), category="efficiency")["tracking_no"]
        act(ref, f"demo-town-{town}-jw-intake", action="accept", kind="service")
        act(ref, f"demo-town-{town}-jw-intake", action="transfer", org=f"demo-town-{town}-village-1")
        refs[name] = ref
    clock.now = at_11(calendar().add_working_days(due_day(refs["town1"]), 2).day)
    run_sweep(clock.now)
    return refs


def inbox_rows(client, query: str = "") -> list[tuple[str, str]]:
    """(class, row html) of each escalation on the inbox page."""
    html = client.get(f"/staff/escalations{query}").get_data(as_text=True)
    table = section(html, 'id="escalations"', "</table>")
    return re.findall(r'<tr class="(resolved|overdue)" data-escalation="\d+">(.*?)</tr>', table, re.S)


def test_inbox_shows_escalations_to_the_supervisors_subtree_only(town_cases, signed_in):
    town1, town2 = town_cases["town1"], town_cases["town2"]
    # Level 1 of both clocks goes to the owner (the township's 纪委), level 2 of the stage clock
    # to the county.
    rows = inbox_rows(signed_in("demo-town-1-jw-intake"))
    assert len(rows) == 2 and all(town1 in r and town2 not in r for _, r in rows)
    assert all("城关镇纪委" in r and "督办·一级" in r for _, r in rows)
    assert {label for label in ("答复期限", "受理/转办期限") if any(label in r for _, r in rows)} == {
        "答复期限",
        "受理/转办期限",
    }
    other = inbox_rows(signed_in("demo-town-2-jw-intake"))
    assert len(other) == 2 and all(town2 in r and town1 not in r for _, r in other)
    county = inbox_rows(signed_in("demo-supervisor"))
    assert len(county) == 6
    assert sum("督办·二级" in r and "示范县纪委监委" in r for _, r in county) == 2


def test_inbox_row_links_the_case_and_says_what_is_late(town_cases, signed_in):
    town1 = town_cases["town1"]
    rows = inbox_rows(signed_in("demo-town-1-jw-intake"))
    response_row = next(r for _, r in rows if "答复期限" in r)
    assert f'<a href="/staff/cases/{town1}">{town1}</a>' in response_row
    assert due_day(town1).isoformat() in response_row
    assert "<td>已交办</td>" in response_row  # the case's current status: sent, not yet started
    assert "未完成" in response_row


def test_inbox_toggle_and_nav_count(town_cases, signed_in, clock):
    town1 = town_cases["town1"]
    county = signed_in("demo-supervisor")
    # The badge counts 督办 cases, as the 督办件 tab does (not one per late clock and level: the
    # inbox below lists 6 escalations of these 2 cases).
    html = county.get("/staff/").get_data(as_text=True)
    assert nav_count(html) == escalated_tab(html) == 2
    html = signed_in("demo-town-1-jw-intake").get("/staff/").get_data(as_text=True)
    assert nav_count(html) == escalated_tab(html) == 1
    assert nav_count(signed_in("demo-intake").get("/staff/").get_data(as_text=True)) is None
    assert nav_count(signed_in("demo-town-1-village-1-leader").get("/staff/").get_data(as_text=True)) is None

    # The village's leader assigns it to themself and starts (late): the unit's stage clock is
    # met, so both of its escalations are done; the response clock's is not.
    leader = "demo-town-1-village-1-leader"
    act(town1, leader, action="assign", user=leader)
    act(town1, leader, action="start")
    assert nav_count(county.get("/staff/").get_data(as_text=True)) == 2  # its response is still late
    open_rows = inbox_rows(county)
    assert len(open_rows) == 4 and all(cls == "overdue" for cls, _ in open_rows)
    assert not any(town1 in r and "受理/转办期限" in r for _, r in open_rows)
    all_rows = inbox_rows(county, "?all=1")
    assert len(all_rows) == 6
    done = [r for cls, r in all_rows if cls == "resolved"]
    assert len(done) == 2 and all(town1 in r and "受理/转办期限" in r and "已完成" in r for r in done)
    html = county.get("/staff/escalations?all=1").get_data(as_text=True)
    assert 'class="tab active" id="show-all"' in html


def test_inbox_pages_newest_first_by_keyset(app, town_cases, signed_in, clock):
    app.config["PAGE_SIZE"] = 4
    county = signed_in("demo-supervisor")
    seen, query = [], "?all=1"
    for _ in range(5):
        html = county.get(f"/staff/escalations{query}").get_data(as_text=True)
        seen += [int(i) for i in re.findall(r'data-escalation="(\d+)"', html)]
        found = re.search(r'href="(/staff/escalations\?[^"]*cursor=[^"]+)"', html)
        if not found:
            break
        query = "?" + found.group(1).split("?", 1)[1].replace("&amp;", "&")
        assert "all=1" in query
    newest_first = db.session.scalars(
        select(Escalation.id).order_by(Escalation.at.desc(), Escalation.id.desc())
    )
    assert seen == list(newest_first) and len(seen) == 6
    assert county.get("/staff/escalations?cursor=not-a-cursor").status_code == 422


def test_a_units_admin_gets_no_escalations_addressed_to_a_discipline_body(town_cases, signed_in):
    """The township's 纪委 sits under the township in the org tree; its 督办 is not the township's."""
    from supervise.orgs.services import get_org_by_code
    from supervise.staff.services import create_user

    create_user(
        db.session,
        username="town-1-admin",
        org=get_org_by_code(db.session, "demo-town-1"),
        role="admin",
        password="demo-password",
    )
    db.session.commit()
    admin = signed_in("town-1-admin")
    page = admin.get("/staff/escalations")
    assert page.status_code == 403 or inbox_rows(admin) == []
    assert nav_count(admin.get("/staff/").get_data(as_text=True)) in (None, 0)


def test_inbox_is_for_supervisors_and_admins(town_cases, signed_in):
    assert signed_in("demo-handler").get("/staff/escalations").status_code == 403
    assert signed_in("demo-intake").get("/staff/escalations").status_code == 403
    assert signed_in("demo-town-1-village-1-leader").get("/staff/escalations").status_code == 403
    assert len(inbox_rows(signed_in("demo-admin"))) == 6
