"""The staff desk: sign-in, sessions, CSRF, the access matrix (DESIGN.md §2a), identity, queues and
actions."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from supervise.cases import workflow
from supervise.cases.models import Case
from supervise.cases.states import STAFF_ACTIONS, Action, Status
from supervise.cases.workflow import TRANSITIONS
from supervise.extensions import db
from supervise.staff.models import AuditEntry, StaffSession
from tests.conftest import VALID_SUBMISSION
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


# -- the access matrix (DESIGN.md §2a) --------------------------------------------------------------
#
# Who sees what. Three real-name cases about 城关镇 (a township government, a unit), all owned by
# 城关镇纪委 (the discipline body attached to it; "owner body" below; "body above": the county
# commission; "sibling body": 青山乡纪委; "subject unit": 城关镇; "unit below": 东关村; "other
# unit": 民政局):
#   accusation    检举控告 (吃拿卡要), accepted by the owner: it never leaves the discipline bodies;
#   service       作风效能诉求 (办事效率), accepted, still at the owner;
#   service@unit  the same kind, transferred (转办) to 城关镇 itself, the subject unit.
# What each person gets, everywhere at once (case page, API detail, queue, an internal note, the
# identity reveal):
REVEAL = "reveal"  # sees it, the reporter masked, and may reveal them (with a reason, audited)
MASKED = "masked"  # sees it, the reporter masked, may not reveal (403, audited)
UNIT = "unit"  # sees it with no trace of the reporter: no name, no mask, no 实名, no reveal (403)
HIDDEN = "hidden"  # 404 everywhere, as if it did not exist, and the attempt audited (access_denied)

SCENARIOS = ("accusation", "service", "service@unit")
# fmt: off
VISIBILITY = [
    # user                           org, role(s)                  accusation service  at unit  may note
    ("demo-town-1-jw-intake",        "owner body, intake+sup.",    REVEAL,    REVEAL,  REVEAL,  True),
    ("demo-town-1-jw-handler",       "owner body, handler",        MASKED,    MASKED,  MASKED,  True),
    ("demo-supervisor",              "body above, supervisor",     REVEAL,    REVEAL,  REVEAL,  True),
    ("demo-admin",                   "body above, admin",          MASKED,    MASKED,  MASKED,  False),
    ("demo-intake",                  "body above, intake",         HIDDEN,    HIDDEN,  HIDDEN,  False),
    ("demo-handler",                 "body above, handler",        HIDDEN,    HIDDEN,  HIDDEN,  False),
    ("demo-town-2-jw-intake",        "sibling body, intake+sup.",  HIDDEN,    HIDDEN,  HIDDEN,  False),
    ("demo-group-1-intake",          "派驻组, intake+sup.",        HIDDEN,    HIDDEN,  HIDDEN,  False),
    ("demo-town-1-leader",           "subject unit, leader",       HIDDEN,    HIDDEN,  UNIT,    True),
    ("demo-town-1-handler",          "subject unit, handler",      HIDDEN,    HIDDEN,  UNIT,    True),
    ("demo-town-1-admin",            "subject unit, admin",        HIDDEN,    HIDDEN,  UNIT,    False),
    ("demo-town-1-village-1-leader", "unit below, leader+handler", HIDDEN,    HIDDEN,  HIDDEN,  False),
    ("demo-dept-civil-leader",       "other unit, leader",         HIDDEN,    HIDDEN,  HIDDEN,  False),
]
# fmt: on
# Accounts the demo does not have: an admin at a lower body and at units.
EXTRA_USERS = [
    ("demo-town-1-jw-admin", "demo-town-1-jw", "admin"),
    ("demo-town-1-admin", "demo-town-1", "admin"),
    ("demo-dept-civil-admin", "demo-dept-civil", "admin"),
]
REPORTER = {"name": "张三丰", "phone": "13812345678"}
MASKED_REPORTER = {"name": "张**", "phone": "138****5678", "masked": True}


@pytest.fixture
def extra_users(demo):
    from supervise.orgs.services import get_org_by_code
    from supervise.staff.services import create_user

    for username, org_code, role in EXTRA_USERS:
        create_user(
            db.session,
            username=username,
            org=get_org_by_code(db.session, org_code),
            role=role,
            password="demo-password",
        )
    db.session.commit()


def perform(ref: str, username: str, **args) -> Case:
    from supervise.cases import services
    from tests.unit.test_workflow import staff

    actor = staff(username)
    version = services.case_for_actor(ref, actor).version
    return services.perform_action(ref, actor, {**args, "version": version})


@pytest.fixture
def township_cases(demo, submit, extra_users):
    """The three cases of the table, by scenario name."""
    token = dict(demo["points"])["城关镇便民服务中心"]
    refs = {}
    for scenario, category, kind in (
        ("accusation", "petty_corruption", "accusation"),
        ("service", "efficiency", "service"),
        ("service@unit", "efficiency", "service"),
    ):
        ref = submit(point=token, category=category, **REPORTER)["tracking_no"]
        perform(ref, "demo-town-1-jw-intake", action="accept", kind=kind)
        if scenario == "service@unit":
            perform(ref, "demo-town-1-jw-intake", action="transfer", org="demo-town-1")
        refs[scenario] = ref
    cases = {s: db.session.scalar(select(Case).where(Case.tracking_no == r)) for s, r in refs.items()}
    assert {c.owner.code for c in cases.values()} == {"demo-town-1-jw"}
    assert {c.subject_org.code for c in cases.values()} == {"demo-town-1"}
    assert cases["service@unit"].org.code == "demo-town-1" and cases["accusation"].kind == "accusation"
    return refs


def denied(username: str, case_id: int | None = None, path: str | None = None) -> bool:
    """An access_denied audit row for this user (about this case, or this request path)."""
    rows = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "access_denied", AuditEntry.username == username)
    ).all()
    return any(
        (case_id is None or r.case_id == case_id) and (path is None or (r.detail or {}).get("path") == path)
        for r in rows
    )


@pytest.mark.parametrize(
    ("username", "who", "accusation", "service", "service_at_unit", "may_note"),
    VISIBILITY,
    ids=[row[0] for row in VISIBILITY],
)
def test_who_sees_what(
    client, staff_client, auth, township_cases, username, who, accusation, service, service_at_unit, may_note
):
    expected = dict(zip(SCENARIOS, (accusation, service, service_at_unit), strict=True))
    page_client, headers = staff_client(username), auth(username)
    queue = {c["tracking_no"]: c for c in client.get("/api/v1/cases", headers=headers).get_json()["items"]}
    for scenario, outcome in expected.items():
        ref = township_cases[scenario]
        case_id = db.session.scalar(select(Case.id).where(Case.tracking_no == ref))
        where = f"{username} ({who}) on the {scenario} case"
        page = page_client.get(f"/staff/cases/{ref}")
        detail = client.get(f"/api/v1/cases/{ref}", headers=headers)
        note = client.post(
            f"/api/v1/cases/{ref}/actions",
            headers=headers,
            json={"action": "note", "version": detail.get_json().get("version", 0), "text": "已阅"},
        )
        reveal = client.post(f"/api/v1/cases/{ref}/identity", headers=headers, json={"reason": "核实情况"})

        if outcome == HIDDEN:
            assert page.status_code == detail.status_code == note.status_code == 404, where
            assert reveal.status_code == 404, where
            assert ref not in queue and VALID_SUBMISSION["content"] not in page.get_data(as_text=True), where
            assert denied(username, case_id), where  # the attempt is in the audit log
            continue

        html = page.get_data(as_text=True)
        body = detail.get_json()
        assert page.status_code == detail.status_code == 200, where
        assert ref in queue, where
        assert note.status_code == (200 if may_note else 403), (where, note.get_json())
        assert REPORTER["name"] not in html and REPORTER["phone"] not in html, where
        has_form = f'action="/staff/cases/{ref}/identity"' in html
        if outcome == UNIT:
            # Not the name, not its mask, not even whether one was given (DESIGN.md §2a).
            assert 'id="reporter"' not in html and "反映人" not in html, where
            assert "张**" not in html and "138****5678" not in html and "chip real" not in html, where
            assert not has_form, where
            assert body["reporter"] is None and body["real_name"] is False, where
            assert queue[ref]["real_name"] is False, where
        else:
            assert "张**" in html and "138****5678" in html, where
            assert body["reporter"] == MASKED_REPORTER and body["real_name"] is True, where
            assert has_form == (outcome == REVEAL), where
        if outcome == REVEAL:
            assert reveal.status_code == 200, where
            assert reveal.get_json() == REPORTER, where
        else:
            assert reveal.status_code == 403, where
            assert denied(username, path=f"/api/v1/cases/{ref}/identity"), where
    shown = db.session.scalars(select(AuditEntry.username).where(AuditEntry.action == "identity_view")).all()
    assert shown == [username] * sum(o == REVEAL for o in expected.values())


def test_the_identity_form_is_refused_to_whoever_may_not_reveal(staff_client, township_cases):
    """The reveal form posted by hand: a unit's leader, a body's handler, an admin: 403, audited."""
    ref = township_cases["service@unit"]
    for username in ("demo-town-1-leader", "demo-town-1-jw-handler", "demo-admin"):
        client = staff_client(username)
        token = csrf_token(client, "/staff/")
        path = f"/staff/cases/{ref}/identity"
        response = client.post(path, data={"csrf_token": token, "reason": "核实"})
        assert response.status_code == 403, username
        assert REPORTER["name"] not in response.get_data(as_text=True)
        assert denied(username, path=path), username
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "identity_view")) == 0


def test_a_unit_cannot_learn_from_the_queue_filters_whether_a_reporter_gave_their_name(
    client, auth, township_cases, submit, demo
):
    """仅实名 is a body's filter: at a unit it must not split named from anonymous cases."""
    token = dict(demo["points"])["城关镇便民服务中心"]
    anonymous = submit(point=token, category="efficiency")["tracking_no"]
    perform(anonymous, "demo-town-1-jw-intake", action="accept", kind="service")
    perform(anonymous, "demo-town-1-jw-intake", action="transfer", org="demo-town-1")
    headers = auth("demo-town-1-leader")
    every = {c["tracking_no"] for c in client.get("/api/v1/cases", headers=headers).get_json()["items"]}
    assert every == {anonymous, township_cases["service@unit"]}
    named_only = client.get("/api/v1/cases?real_name=true", headers=headers)
    assert named_only.status_code in (200, 422)
    if named_only.status_code == 200:
        assert {c["tracking_no"] for c in named_only.get_json()["items"]} == every


def test_an_accusation_is_never_offered_or_sent_to_a_unit(client, auth, staff_client, township_cases):
    accusation, service = township_cases["accusation"], township_cases["service"]
    intake = staff_client("demo-town-1-jw-intake")
    page = intake.get(f"/staff/cases/{accusation}").get_data(as_text=True)
    choices = re.findall(r'<option value="([\w-]+)">[^<]*（([^）]+)）</option>', page)
    assert choices and {note for _, note in choices} == {"纪检监察机构"}  # bodies only
    assert "检举控告件只能在纪检监察机构之间转办" in page
    version = client.get(f"/api/v1/cases/{accusation}", headers=auth("demo-town-1-jw-intake")).get_json()
    refused = client.post(
        f"/api/v1/cases/{accusation}/actions",
        headers=auth("demo-town-1-jw-intake"),
        json={"action": "transfer", "version": version["version"], "org": "demo-town-1"},
    )
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert "检举控告件只能在纪检监察机构之间转办" in error["message"]
    # A service complaint may go to a unit; the subject unit is offered first.
    page = intake.get(f"/staff/cases/{service}").get_data(as_text=True)
    choices = re.findall(r'<option value="([\w-]+)">[^<]*（([^）]+)）</option>', page)
    assert choices[0] == ("demo-town-1", "被反映单位")
    assert "单位" in {note for _, note in choices} and "纪检监察机构" in {note for _, note in choices}


def test_a_unit_page_offers_the_units_own_actions_only(staff_client, township_cases):
    ref = township_cases["service@unit"]
    leader = staff_client("demo-town-1-leader").get(f"/staff/cases/{ref}").get_data(as_text=True)
    assert 'data-action="assign"' in leader and 'data-action="return"' in leader
    for body_only in ("accept", "reject", "transfer", "publish", "classify", "message", "extend"):
        assert f'data-action="{body_only}"' not in leader, body_only
    assert "城关镇便民服务中心" in leader  # the content and where it came from: the unit needs them
    handler = staff_client("demo-town-1-handler").get(f"/staff/cases/{ref}").get_data(as_text=True)
    assert 'data-action="assign"' not in handler and 'data-action="note"' in handler


def test_the_real_name_filter_is_a_bodys_not_a_units(staff_client, township_cases):
    body = staff_client("demo-town-1-jw-intake").get("/staff/?queue=in_progress").get_data(as_text=True)
    assert 'name="real_name"' in body and "chip real" in body
    unit = staff_client("demo-town-1-leader").get("/staff/?queue=dispatch").get_data(as_text=True)
    assert township_cases["service@unit"] in unit
    assert 'name="real_name"' not in unit and "仅实名" not in unit and "chip real" not in unit


def audit_rows(client, query: str = "") -> str:
    return client.get(f"/staff/audit{query}").get_data(as_text=True)


def test_the_audit_log_follows_the_owner_and_stops_at_the_unit(client, auth, staff_client, township_cases):
    at_unit = township_cases["service@unit"]
    version = client.get(f"/api/v1/cases/{at_unit}", headers=auth("demo-town-1-leader")).get_json()["version"]
    noted = client.post(
        f"/api/v1/cases/{at_unit}/actions",
        headers=auth("demo-town-1-leader"),
        json={"action": "note", "version": version, "text": "已安排专人办理"},
    )
    assert noted.status_code == 200
    client.post(
        f"/api/v1/cases/{township_cases['accusation']}/identity",
        headers=auth("demo-town-1-jw-intake"),
        json={"reason": "核实情况"},
    )
    # The owner's reviewer sees what the unit did on the case it sent there.
    owner = audit_rows(staff_client("demo-town-1-jw-intake"), "?action=case_action")
    assert "demo-town-1-leader" in owner
    # The township's admin sees its own people, not the 纪委 placed under the township, not who
    # looked at a reporter's identity, and not the accusation about it.
    unit_admin = audit_rows(staff_client("demo-town-1-admin"))
    assert "demo-town-1-leader" in unit_admin
    assert (
        "demo-town-1-jw-intake" not in unit_admin and "identity_view" not in unit_admin.split("</select>")[1]
    )
    # A body's admin below the top: their subtree only.
    lower_admin = audit_rows(staff_client("demo-town-1-jw-admin"))
    assert "demo-town-1-jw-intake" in lower_admin and "demo-town-2-jw" not in lower_admin


# Who may act, through the API, on a case at the county commission (a body) and on a case sent
# to 民政局 (a unit). "in": staff of the org where the case sits; "out": the same role elsewhere.
BODY_STAFF = {  # role: (in scope, out of scope)
    "intake": ("demo-intake", "demo-town-1-jw-intake"),
    "handler": ("demo-handler", "demo-town-1-jw-handler"),
    "supervisor": ("demo-supervisor", "demo-group-1-intake"),  # a body below does not see up
    "admin": ("demo-admin", "demo-town-1-jw-admin"),
    "leader": (None, "demo-town-1-leader"),  # a unit never acts on what it was not sent
    "unit-handler": (None, "demo-town-1-handler"),
}
UNIT_STAFF = {
    "leader": ("demo-dept-civil-leader", "demo-town-1-leader"),
    "handler": ("demo-dept-civil-handler", "demo-town-1-handler"),
    "admin": ("demo-dept-civil-admin", "demo-town-1-admin"),
    "body-intake": (None, "demo-town-1-jw-intake"),  # another body: the county owns the case
}
BODY_MATRIX = [
    (role, action, scope)
    for role, users in BODY_STAFF.items()
    for action in STAFF_ACTIONS
    for scope, user in zip(("in", "out"), users, strict=True)
    if user
]
UNIT_MATRIX = [
    (role, action, scope)
    for role, users in UNIT_STAFF.items()
    for action in STAFF_ACTIONS
    for scope, user in zip(("in", "out"), users, strict=True)
    if user
]


def source_state(action: Action) -> Status:
    return sorted(next(t for t in TRANSITIONS if t.action == action).sources)[0]


def unit_rows(action: Action, role: str) -> list:
    """The transitions a unit's `role` may take on a case sitting at its unit."""
    return [
        t
        for t in TRANSITIONS
        if t.action == action and role in t.roles and t.where in (workflow.UNIT, workflow.HERE, workflow.SEEN)
    ]


@pytest.mark.parametrize(
    ("role", "action", "scope"), BODY_MATRIX, ids=[f"{r}-{a.value}-{s}" for r, a, s in BODY_MATRIX]
)
def test_access_matrix_at_a_body(client, auth, extra_users, role, action, scope):
    case = case_in(source_state(action))  # at demo-county, assigned to demo-handler where relevant
    username = BODY_STAFF[role][0 if scope == "in" else 1]
    response = client.post(
        f"/api/v1/cases/{case.tracking_no}/actions",
        headers=auth(username),
        json=args_for(action, case.version),
    )
    allowed = any(t.action == action and role in t.roles and t.where != workflow.UNIT for t in TRANSITIONS)
    if scope == "out":
        assert response.status_code == 404  # not even a hint that the case exists
    elif allowed:
        assert response.status_code == 200, response.get_json()
    else:
        assert response.status_code == 403, response.get_json()


@pytest.mark.parametrize(
    ("role", "action", "scope"), UNIT_MATRIX, ids=[f"{r}-{a.value}-{s}" for r, a, s in UNIT_MATRIX]
)
def test_access_matrix_at_a_unit(client, auth, extra_users, role, action, scope):
    rows = unit_rows(action, role)
    case = case_in(sorted(rows[0].sources)[0] if rows else source_state(action), at_unit=True)
    username = UNIT_STAFF[role][0 if scope == "in" else 1]
    args = args_for(action, case.version, "to_unit")
    if action == Action.ASSIGN:
        args["user"] = "demo-dept-civil-handler"
    if action == Action.MERGE:  # into a case the unit sees too: the refusal is about the role
        args["into"] = case_in(Status.ACCEPTED, at_unit=True).tracking_no
    if action == Action.TRANSFER:
        args["org"] = "demo-dept-hrss"
    response = client.post(f"/api/v1/cases/{case.tracking_no}/actions", headers=auth(username), json=args)
    if scope == "out":
        assert response.status_code == 404
    elif rows:
        assert response.status_code == 200, response.get_json()
    else:
        assert response.status_code == 403, response.get_json()


def test_idor_by_url_is_404_in_pages_and_api(staff_client, auth, submit):
    ref = submit()["tracking_no"]  # owned by demo-county
    for username in ("demo-town-1-jw-intake", "demo-town-1-leader"):
        other = staff_client(username)
        assert other.get(f"/staff/cases/{ref}").status_code == 404
        assert other.get("/staff/cases/MS2026-999999").status_code == 404
        assert other.get(f"/api/v1/cases/{ref}").status_code == 404
        assert denied(username, db.session.scalar(select(Case.id).where(Case.tracking_no == ref)))


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
        data={"csrf_token": token, "action": "message", "version": "1", "text": "旧页面上的留言"},
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
    assert client.get(f"/api/v1/cases/{ref}", headers=auth("demo-town-1-jw-intake")).status_code == 404
    denied = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "access_denied")).all()
    assert {d.username for d in denied} == {"demo-handler", "demo-town-1-jw-intake"}
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "identity_view")) == 1
