"""The staff desk around the case page (issue 13): bulk actions, the org filter, the language
switch, error pages in the staff layout, the readable audit log and grouped notifications that
link to their case."""

# The fixtures imported below are used by name as test arguments, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import re

from rq import SimpleWorker
from sqlalchemy import func, select

from supervise.cases.models import Case, Event
from supervise.extensions import db
from supervise.notify.models import Notification
from supervise.queueing import redis_connection
from supervise.staff.models import User
from tests.web.test_deadline_ui import clock, signed_in, town_cases  # noqa: F401 - fixtures
from tests.web.test_staff import csrf_token, extra_users, staff_client, township_cases  # noqa: F401 - fixtures

FLASH = re.compile(r'<p class="(?:notice|error summary)" role="status">([^<]*)</p>')


def deliver_all(app) -> None:
    SimpleWorker(["default"], connection=redis_connection(app)).work(burst=True)
    db.session.expire_all()


def flashes(client, location: str) -> list[str]:
    return FLASH.findall(client.get(location).get_data(as_text=True))


def between(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end, html.index(start))]


# -- bulk actions ------------------------------------------------------------------------------------


def test_bulk_accept_on_the_intake_tab_case_by_case(staff_client, submit):
    refs = [submit()["tracking_no"] for _ in range(3)]
    intake = staff_client("demo-intake")
    page = intake.get("/staff/?queue=intake").get_data(as_text=True)
    # 待受理 offers 批量受理 (assign could never work on a case not yet accepted).
    assert 'action="/staff/bulk-accept"' in page and "批量受理" in page and "批量交办" not in page
    token = csrf_token(intake, "/staff/")
    back = "/staff/?queue=intake"

    nothing = intake.post("/staff/bulk-accept", data={"csrf_token": token, "back": back})
    assert nothing.status_code == 302 and nothing.location.endswith(back)
    assert flashes(intake, nothing.location) == ["请先选择案件"]

    # The third row's version is stale (someone acted on it meanwhile): it alone fails.
    picked = [f"{refs[0]}:1", f"{refs[1]}:1", f"{refs[2]}:7"]
    done = intake.post(
        "/staff/bulk-accept",
        data={"csrf_token": token, "back": back, "case": picked, "user": "demo-handler"},
    )
    said = flashes(intake, done.location)
    assert said[0] == f"已受理 2 件：{refs[0]}、{refs[1]}"
    assert said[1].startswith("未能受理 1 件：" + refs[2]) and "已被他人修改" in said[1]
    status = dict(db.session.execute(select(Case.tracking_no, Case.status)).all())
    assert status == {refs[0]: "assigned", refs[1]: "assigned", refs[2]: "received"}  # 受理并交办
    accepts = dict(
        db.session.execute(
            select(Case.tracking_no, func.count(Event.id))
            .join(Event, Event.case_id == Case.id)
            .where(Event.action == "accept")
            .group_by(Case.tracking_no)
        ).all()
    )
    assert accepts == {refs[0]: 1, refs[1]: 1}  # one event per case, through the workflow


def test_bulk_actions_are_offered_only_where_they_can_work(staff_client, submit):
    ref = submit()["tracking_no"]
    intake = staff_client("demo-intake")
    token = csrf_token(intake, "/staff/")
    intake.post("/staff/bulk-accept", data={"csrf_token": token, "case": [f"{ref}:1"]})
    dispatch = intake.get("/staff/?queue=dispatch").get_data(as_text=True)
    assert 'action="/staff/bulk-assign"' in dispatch and "批量交办" in dispatch and "批量受理" not in dispatch
    for queue in ("in_progress", "review", "overdue", "done", "mine"):
        html = intake.get(f"/staff/?queue={queue}").get_data(as_text=True)
        assert 'name="case"' not in html and 'id="bulk-submit"' not in html, queue
    # A handler has no bulk action anywhere.
    handler = staff_client("demo-handler").get("/staff/?queue=dispatch").get_data(as_text=True)
    assert 'id="bulk-submit"' not in handler
    nothing = intake.post("/staff/bulk-assign", data={"csrf_token": token, "user": "demo-handler"})
    assert flashes(intake, nothing.location) == ["请先选择案件"]


# -- filters, language, error pages -----------------------------------------------------------------


def test_the_org_filter_is_a_select_of_the_orgs_in_scope(staff_client, submit):
    town = staff_client("demo-town-1-jw-intake").get("/staff/").get_data(as_text=True)
    options = between(town, '<select name="org"', "</select>")
    assert "城关镇" in options and "东关村" in options and "城关镇纪委" in options
    names = re.findall(r"<option[^>]*>([^<]*)</option>", options)
    assert "青山乡" not in options and "石门村" not in options
    assert not any("demo-" in name for name in names)  # names, not codes
    assert 'placeholder="单位代码"' not in town
    county = staff_client("demo-intake").get("/staff/").get_data(as_text=True)
    assert "青山乡" in between(county, '<select name="org"', "</select>")
    # A unit's staff have one org: no filter to offer.
    village = staff_client("demo-town-1-village-1-leader").get("/staff/").get_data(as_text=True)
    assert 'name="org"' not in village
    # Each filter control has a label (a <label> around it).
    labelled = r'<label class="field"><span class="label-text">[^<]+</span>\s*<(?:input|select) name="(\w+)"'
    assert {"q", "category", "status", "org"} <= set(re.findall(labelled, county))


def test_lang_is_not_a_queue_filter_and_the_desk_has_a_language_switch(staff_client):
    from flask import g

    intake = staff_client("demo-intake")
    g.pop("_flask_babel", None)  # the test shares one app context: forget the last request's language
    page = intake.get("/staff/?queue=intake&lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<p class="error">' not in html
    assert '<html lang="en">' in html
    g.pop("_flask_babel", None)
    chinese = intake.get("/staff/?queue=intake").get_data(as_text=True)
    # The switch keeps the page (and its query) the person is on.
    assert 'href="/lang/en?next=/staff/?queue%3Dintake"' in chinese and 'id="lang-en"' in chinese
    login_page = staff_client("demo-intake").get("/staff/login").get_data(as_text=True)
    assert 'id="lang-en"' in login_page


def test_staff_404_and_403_use_the_staff_layout(app, staff_client, client):
    handler = staff_client("demo-handler")
    for path, status in (
        ("/staff/cases/MS-AAAAA-BBBBB", 404),  # no such case (or out of scope: the same answer)
        ("/staff/no-such-page", 404),
        ("/staff/audit", 403),  # a handler's role
    ):
        response = handler.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == status, path
        assert '<body class="staff">' in html and 'id="nav-queue"' in html and "返回工作队列" in html, path
    # The citizen side and the API keep theirs.
    citizen = client.get("/no-such-page")
    assert citizen.status_code == 404 and '<body class="staff">' not in citizen.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


# -- the audit log ------------------------------------------------------------------------------------


def test_the_audit_log_reads_in_chinese_and_links_cases(client, auth, staff_client, submit):
    ref = submit(name="张三", phone="13812345678")["tracking_no"]
    intake = staff_client("demo-intake")
    token = csrf_token(intake, f"/staff/cases/{ref}")
    intake.post(f"/staff/cases/{ref}/identity", data={"csrf_token": token, "reason": "核实情况"})
    intake.post("/staff/bulk-accept", data={"csrf_token": token, "case": [f"{ref}:1"]})
    html = staff_client("demo-supervisor").get("/staff/audit").get_data(as_text=True)
    table = between(html, 'id="audit"', "</table>")
    case = db.session.scalar(select(Case).where(Case.tracking_no == ref))
    assert f'<a href="/staff/cases/{ref}">{case.register_no}</a>' in table
    assert "登录" in table and "查看反映人身份" in table and "办理操作" in table
    assert "<dt>操作</dt><dd>受理</dd>" in table and "<dt>理由</dt><dd>核实情况</dd>" in table
    assert "case_action" not in re.sub(r'data-action="[a-z_]+"', "", table)
    assert "{" not in table and f">{case.id}<" not in table


def test_a_units_admin_never_sees_the_number_of_an_accusation_about_it(staff_client, township_cases):
    """The township leader's refused attempt on an accusation about the township is in the
    township admin's log (it is their person), but not which case it was."""
    ref = township_cases["accusation"]
    assert staff_client("demo-town-1-leader").get(f"/staff/cases/{ref}").status_code == 404
    html = staff_client("demo-town-1-admin").get("/staff/audit").get_data(as_text=True)
    table = between(html, 'id="audit"', "</table>")
    assert "越权访问被拒" in table and "demo-town-1-leader" in table
    assert f'href="/staff/cases/{ref}"' not in table


# -- notifications ----------------------------------------------------------------------------------


def unread_badge(html: str) -> int:
    found = re.search(r'<span class="badge" id="unread">(\d+)</span>', html)
    return int(found.group(1)) if found else 0


def test_one_notice_per_case_and_level_linked_to_the_case(app, town_cases, signed_in, clock):
    deliver_all(app)
    town1 = town_cases["town1"]
    case_id = db.session.scalar(select(Case.id).where(Case.tracking_no == town1))
    # Nobody holds two unread notices of one case and group (kind and level).
    pairs = db.session.execute(
        select(Notification.user_id, Notification.case_id, Notification.group_key, func.count())
        .where(Notification.read_at.is_(None))
        .group_by(Notification.user_id, Notification.case_id, Notification.group_key)
    ).all()
    assert pairs and {n for *_, n in pairs} == {1}
    # The township's 纪委: both late clocks of its case (response, stage) in one 一级督办 notice.
    jw = db.session.scalar(select(User).where(User.username == "demo-town-1-jw-intake"))
    notice = db.session.scalar(
        select(Notification).where(
            Notification.user_id == jw.id,
            Notification.case_id == case_id,
            Notification.group_key == "escalated:1",
        )
    )
    assert notice.repeats == 2 and set(notice.clocks) == {"response", "stage"}
    assert "答复期限" in notice.title and "受理/转办期限" in notice.title

    desk = signed_in("demo-town-1-jw-intake")
    page = desk.get("/staff/notifications").get_data(as_text=True)
    unread = db.session.scalar(
        select(func.count(Notification.id)).where(
            Notification.user_id == jw.id, Notification.read_at.is_(None)
        )
    )
    assert unread_badge(page) == unread == page.count('<li class="unread"')
    assert "×2" in page
    token = csrf_token(desk, "/staff/notifications")
    opened = desk.post("/staff/notifications/open", data={"csrf_token": token, "id": str(notice.id)})
    assert opened.status_code == 302 and opened.location.endswith(f"/staff/cases/{town1}")
    db.session.expire_all()
    assert db.session.get(Notification, notice.id).read_at is not None
    assert unread_badge(desk.get("/staff/").get_data(as_text=True)) < unread
    # Someone else's notice is not theirs to open.
    other = db.session.scalar(select(Notification).where(Notification.user_id != jw.id))
    assert (
        desk.post("/staff/notifications/open", data={"csrf_token": token, "id": str(other.id)}).status_code
        == 404
    )


def test_the_drafter_is_told_when_their_answer_is_published_rated_or_reopened(app, client, auth, submit):
    """A body's 直接答复 has a drafter and no assignee: the drafter hears what became of it; the
    reviewer hears that it awaits review; nobody is told of their own action."""
    sent = submit(category="efficiency")
    ref, code = sent["tracking_no"], sent["access_code"]

    def action(username: str, **args):
        version = client.get(f"/api/v1/cases/{ref}", headers=auth(username)).get_json()["version"]
        response = client.post(
            f"/api/v1/cases/{ref}/actions", headers=auth(username), json={**args, "version": version}
        )
        assert response.status_code == 200, response.get_json()

    action("demo-intake", action="accept")
    action("demo-intake", action="answer", text="已协调民政局办理，请留意电话通知。")
    action("demo-supervisor", action="publish")
    rated = client.post(
        "/api/v1/track/rating", json={"tracking_no": ref, "access_code": code, "rating": "unsatisfied"}
    )
    assert rated.status_code == 200
    deliver_all(app)
    told = db.session.execute(
        select(User.username, Notification.kind).join(User, User.id == Notification.user_id)
    ).all()
    assert ("demo-supervisor", "review_requested") in told
    assert ("demo-intake", "answer_published") in told and ("demo-intake", "case_reopened") in told
    assert ("demo-supervisor", "answer_published") not in told
