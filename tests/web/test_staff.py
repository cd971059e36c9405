"""The staff desk: sign-in, sessions, CSRF, the access matrix, identity, queues and actions."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from supervise.cases.models import Case
from supervise.cases.states import STAFF_ACTIONS, Action, Status
from supervise.cases.workflow import TRANSITIONS
from supervise.extensions import db
from supervise.staff.models import AuditEntry, StaffSession
from tests.unit.test_workflow import args_for, case_in

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/staff/login") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def login(client, username: str, password: str = "demo-password"):
    token = csrf_token(client)
    return client.post("/staff/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def staff_client(app, demo):
    """`staff_client("demo-intake")` → a test client signed in through the real form."""

    def make(username: str):
        client = app.test_client()
        response = login(client, username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make


# -- sign-in and sessions ---------------------------------------------------------------------------


def test_login_logout_and_audit(client, demo):
    assert client.get("/staff/").status_code == 302  # to the login page
    assert login(client, "demo-intake").headers["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200
    token = csrf_token(client, "/staff/")
    client.post("/staff/logout", data={"csrf_token": token})
    assert client.get("/staff/").status_code == 302
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions[:2] == ["login", "logout"]
    assert db.session.scalar(select(StaffSession.revoked_at)) is not None


def test_wrong_password_and_unknown_user_look_the_same(client, demo):
    wrong = login(client, "demo-intake", "nope")
    unknown = login(client, "nobody-here", "nope")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码不正确" in wrong.get_data(as_text=True) and "用户名或密码不正确" in unknown.get_data(
        as_text=True
    )
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "login_failed")) == 2


def test_failed_logins_are_throttled_per_account(app, client, demo):
    app.config["LOGIN_FAILURE_LIMIT_USER"] = "3/15 minutes"
    for _ in range(3):
        assert login(client, "demo-supervisor", "guess").status_code == 401
    assert login(client, "demo-supervisor", "demo-password").status_code == 429  # even the right one, for now


def test_session_id_rotates_at_login_and_logout_ends_it_on_the_server(app, demo):
    client = app.test_client()
    login(client, "demo-intake")
    first = db.session.scalar(select(StaffSession.token).order_by(StaffSession.id.desc()))
    login(client, "demo-intake")
    second = db.session.scalar(select(StaffSession.token).order_by(StaffSession.id.desc()))
    assert first != second
    assert db.session.scalar(select(StaffSession.revoked_at).where(StaffSession.token == first)) is not None


def test_idle_timeout_ends_the_session(app, staff_client):
    from datetime import timedelta

    from supervise.dbtypes import utcnow

    client = staff_client("demo-intake")
    db.session.execute(StaffSession.__table__.update().values(last_seen_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    assert client.get("/staff/").status_code == 302


def test_password_change_ends_other_sessions(app, staff_client):
    laptop, phone = staff_client("demo-handler"), staff_client("demo-handler")
    token = csrf_token(laptop, "/staff/password")
    changed = laptop.post(
        "/staff/password",
        data={
            "current": "demo-password",
            "new": "a-new-long-password",
            "confirm": "a-new-long-password",
            "csrf_token": token,
        },
    )
    assert changed.status_code == 302
    assert laptop.get("/staff/").status_code == 200
    assert phone.get("/staff/").status_code == 302


def test_a_staff_post_without_the_csrf_token_is_refused(staff_client, submit):
    ref = submit()["tracking_no"]
    client = staff_client("demo-intake")
    refused = client.post(f"/staff/cases/{ref}/act", data={"action": "accept", "version": "1"})
    assert refused.status_code == 400
    assert db.session.scalar(select(Case.status)) == "received"


def test_api_with_a_session_cookie_needs_csrf_for_actions(staff_client, submit):
    ref = submit()["tracking_no"]
    client = staff_client("demo-intake")
    assert client.get(f"/api/v1/cases/{ref}").status_code == 200  # reading is fine
    refused = client.post(f"/api/v1/cases/{ref}/actions", json={"action": "accept", "version": 1})
    assert refused.status_code == 400
    token = csrf_token(client, "/staff/")
    ok = client.post(
        f"/api/v1/cases/{ref}/actions",
        json={"action": "accept", "version": 1},
        headers={"X-CSRFToken": token},
    )
    assert ok.status_code == 200


def test_no_get_changes_state(app, staff_client):
    client = staff_client("demo-intake")
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("staff.") and "POST" in rule.methods and "GET" not in rule.methods:
            path = rule.rule.replace("<ref>", "MS2026-000001")
            assert client.get(path).status_code == 405, rule.rule


# -- the access matrix (DESIGN.md §2) ----------------------------------------------------------------

ROLES = ["intake", "handler", "supervisor", "admin"]
IN_SCOPE = {
    "intake": "demo-intake",
    "handler": "demo-handler",
    "supervisor": "demo-supervisor",
    "admin": "demo-admin",
}
OUT_OF_SCOPE = {
    "intake": "demo-town-1-intake",
    "handler": "demo-town-1-handler",
    "supervisor": "demo-town-1-supervisor",
    "admin": "demo-town-1-intake",
}
MATRIX = [(role, action, scope) for role in ROLES for action in STAFF_ACTIONS for scope in ("in", "out")]


def source_state(action: Action) -> Status:
    return sorted(next(t for t in TRANSITIONS if t.action == action).sources)[0]


@pytest.mark.parametrize(
    ("role", "action", "scope"), MATRIX, ids=[f"{r}-{a.value}-{s}" for r, a, s in MATRIX]
)
def test_access_matrix(client, auth, role, action, scope):
    case = case_in(source_state(action))  # at demo-county, assigned to demo-handler where relevant
    username = IN_SCOPE[role] if scope == "in" else OUT_OF_SCOPE[role]
    response = client.post(
        f"/api/v1/cases/{case.tracking_no}/actions",
        headers=auth(username),
        json=args_for(action, case.version),
    )
    allowed = any(t.action == action and role in t.roles for t in TRANSITIONS)
    if scope == "out":
        assert response.status_code == 404  # not even a hint that the case exists
    elif allowed:
        assert response.status_code == 200, response.get_json()
    else:
        assert response.status_code == 403, response.get_json()


def test_idor_by_url_is_404_in_pages_and_api(staff_client, auth, submit):
    ref = submit()["tracking_no"]  # at demo-county
    town = staff_client("demo-town-1-intake")
    assert town.get(f"/staff/cases/{ref}").status_code == 404
    assert town.get("/staff/cases/MS2026-999999").status_code == 404
    assert town.get(f"/api/v1/cases/{ref}").status_code == 404


# -- identity -------------------------------------------------------------------------------------------


def test_identity_masked_until_revealed_with_a_reason_and_audited(staff_client, auth, submit):
    ref = submit(name="张三丰", phone="13812345678")["tracking_no"]
    handler = staff_client("demo-handler")
    page = handler.get(f"/staff/cases/{ref}").get_data(as_text=True)
    assert "张**" in page and "138****5678" in page and "张三丰" not in page and "13812345678" not in page
    assert 'action="/staff/cases/' + ref + '/identity"' not in page  # handlers may not reveal
    api = handler.get(f"/api/v1/cases/{ref}").get_json()
    assert api["reporter"] == {"name": "张**", "phone": "138****5678", "masked": True}

    intake = staff_client("demo-intake")
    token = csrf_token(intake, f"/staff/cases/{ref}")
    assert (
        intake.post(f"/staff/cases/{ref}/identity", data={"csrf_token": token, "reason": ""}).status_code
        == 422
    )
    shown = intake.post(f"/staff/cases/{ref}/identity", data={"csrf_token": token, "reason": "电话核实情况"})
    html = shown.get_data(as_text=True)
    assert "张三丰" in html and "13812345678" in html
    rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "identity_view")).all()
    assert (
        len(rows) == 1 and rows[0].username == "demo-intake" and rows[0].detail == {"reason": "电话核实情况"}
    )
    assert intake.get(f"/staff/cases/{ref}").get_data(as_text=True).count("张三丰") == 0  # not sticky


def test_handler_cannot_reveal_even_by_posting(staff_client, submit):
    ref = submit(name="李四", phone="13900001111")["tracking_no"]
    handler = staff_client("demo-handler")
    token = csrf_token(handler, "/staff/")
    assert (
        handler.post(f"/staff/cases/{ref}/identity", data={"csrf_token": token, "reason": "x"}).status_code
        == 403
    )


# -- queues and the case page ---------------------------------------------------------------------------


def tab_count(html: str, queue: str) -> int:
    return int(re.search(rf'data-queue="{queue}">[^<]*<span class="count">(\d+)</span>', html).group(1))


def test_queue_tabs_count_and_actions_move_cases(staff_client, submit):
    refs = [submit()["tracking_no"] for _ in range(3)]
    intake = staff_client("demo-intake")
    page = intake.get("/staff/?queue=intake").get_data(as_text=True)
    assert tab_count(page, "intake") == 3 and all(r in page for r in refs)
    token = csrf_token(intake, f"/staff/cases/{refs[0]}")
    accepted = intake.post(
        f"/staff/cases/{refs[0]}/act", data={"csrf_token": token, "action": "accept", "version": "1"}
    )
    assert accepted.status_code == 302
    page = intake.get("/staff/?queue=intake").get_data(as_text=True)
    assert tab_count(page, "intake") == 2 and tab_count(page, "dispatch") == 1


def test_stale_version_says_someone_else_changed_it(staff_client, submit):
    ref = submit()["tracking_no"]
    intake = staff_client("demo-intake")
    token = csrf_token(intake, f"/staff/cases/{ref}")
    intake.post(f"/staff/cases/{ref}/act", data={"csrf_token": token, "action": "accept", "version": "1"})
    stale = intake.post(
        f"/staff/cases/{ref}/act",
        data={"csrf_token": token, "action": "note", "version": "1", "text": "旧页面上的备注"},
    )
    assert stale.status_code == 409
    html = stale.get_data(as_text=True)
    assert "已被他人修改" in html and "刷新页面" in html


def test_bulk_assign(staff_client, submit):
    refs = [submit()["tracking_no"] for _ in range(2)]
    intake = staff_client("demo-intake")
    token = csrf_token(intake, "/staff/")
    for ref in refs:
        intake.post(f"/staff/cases/{ref}/act", data={"csrf_token": token, "action": "accept", "version": "1"})
    result = intake.post(
        "/staff/bulk-assign",
        data={"csrf_token": token, "user": "demo-handler", "case": [f"{r}:2" for r in refs]},
    )
    assert result.status_code == 302
    assert set(db.session.scalars(select(Case.status))) == {"assigned"}


def test_message_to_the_citizen_and_the_reply_goes_to_the_top(app, client, staff_client, submit, auth):
    first = submit()
    second = submit(name="王五", phone="13700002222")
    intake = auth("demo-intake")
    client.post(
        f"/api/v1/cases/{second['tracking_no']}/actions",
        headers=intake,
        json={"action": "message", "version": 1, "text": "请补充发生的具体时间"},
    )
    tracked = client.post(
        "/api/v1/track", json={"tracking_no": second["tracking_no"], "access_code": second["access_code"]}
    ).get_json()
    assert tracked["timeline"][-1]["note"] == "请补充发生的具体时间"
    # The anonymous first case answers its own question: it jumps ahead of the real-name one.
    client.post(
        "/api/v1/track/supplement",
        json={"tracking_no": first["tracking_no"], "access_code": first["access_code"], "text": "上周三上午"},
    )
    queue = client.get("/api/v1/cases?queue=intake", headers=intake).get_json()["items"]
    assert [c["tracking_no"] for c in queue] == [first["tracking_no"], second["tracking_no"]]
    from supervise.notify.models import OutboxMessage

    assert (
        db.session.scalar(select(OutboxMessage.channel).where(OutboxMessage.kind == "citizen_message"))
        == "sms"
    )


def test_text_search_finds_chinese_words(client, auth, submit):
    hit = submit(content="村里的耕地地力保护补贴今年迟迟没有发放。")["tracking_no"]
    submit(content="窗口人员态度恶劣，办事拖拉，已经跑了三趟。")
    for query in ("补贴 发放", "地力保护", "耕地"):  # words anywhere, or a phrase as typed
        found = client.get(f"/api/v1/cases?q={query}", headers=auth("demo-intake")).get_json()["items"]
        assert [c["tracking_no"] for c in found] == [hit], query
    assert client.get("/api/v1/cases?q=补贴发放", headers=auth("demo-intake")).get_json()["items"] == []


def test_case_page_shows_deadlines_timeline_and_allowed_actions(staff_client, submit):
    ref = submit()["tracking_no"]
    html = staff_client("demo-intake").get(f"/staff/cases/{ref}").get_data(as_text=True)
    assert 'data-action="accept"' in html and 'data-action="publish"' not in html
    assert "个工作日" in html and "提交诉求" in html


def test_identity_through_the_api_and_refusals_are_audited(client, auth, submit):
    ref = submit(name="赵六", phone="13600003333")["tracking_no"]
    shown = client.post(
        f"/api/v1/cases/{ref}/identity", headers=auth("demo-supervisor"), json={"reason": "核实"}
    )
    assert shown.get_json() == {"name": "赵六", "phone": "13600003333"}
    refused = client.post(
        f"/api/v1/cases/{ref}/identity", headers=auth("demo-handler"), json={"reason": "好奇"}
    )
    assert refused.status_code == 403
    assert client.get(f"/api/v1/cases/{ref}", headers=auth("demo-town-1-intake")).status_code == 404
    denied = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "access_denied")).all()
    assert {d.username for d in denied} == {"demo-handler", "demo-town-1-intake"}
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "identity_view")) == 1
