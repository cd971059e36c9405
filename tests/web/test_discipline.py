"""Who receives, who handles, who may see (DESIGN.md §2a), through the HTTP API a client uses.

Each test names the rule of §2a it holds to. The demo county: 城关镇纪委 (demo-town-1-jw) sits
below 城关镇 and supervises it and its villages; the 派驻组 (demo-county-group-1) supervises the
two departments; the county commission (demo-county) is above them all.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from supervise.cases import services, workflow
from supervise.cases.models import Case
from supervise.cases.states import Rating
from supervise.extensions import db
from supervise.intake.models import Point
from supervise.notify.models import OutboxMessage
from supervise.orgs.models import Org
from supervise.staff.models import AuditEntry, User
from tests.conftest import ISSUED_ACCESS_CODES, verified

SERVICE = {
    "category": "efficiency",
    "subject": "东关村村委会",
    "content": "村委会办公室工作日经常没人，开证明跑了三趟。",
}
ACCUSATION = {
    "category": "petty_corruption",
    "subject": "东关村会计",
    "content": "村会计发放补贴时要求每户交五十元手续费。",
}
REPORTER = {"name": "王五", "phone": "13700001234"}


def point_token(org_code: str) -> str:
    org_id = db.session.scalar(select(Org.id).where(Org.code == org_code))
    return db.session.scalar(select(Point.token).where(Point.org_id == org_id))


@pytest.fixture
def file_case(client, demo):
    """`file_case(org_code, **fields)` → (tracking_no, access_code) of a QR submission at that org's point."""

    def _file(org_code: str, **fields):
        body = verified({**SERVICE, "point": point_token(org_code), **fields})  # real name: with its SMS code
        response = client.post("/api/v1/cases", json=body)
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        ISSUED_ACCESS_CODES.append(body["access_code"])
        return body["tracking_no"], body["access_code"]

    return _file


@pytest.fixture
def act(client, auth):
    """`act(username, ref, action, **fields)` → the JSON answer, asserting the status (200 by default)."""

    def _act(username: str, ref: str, action: str, expect: int = 200, **fields):
        headers = auth(username)
        version = client.get(f"/api/v1/cases/{ref}", headers=auth("demo-supervisor")).get_json()["version"]
        response = client.post(
            f"/api/v1/cases/{ref}/actions",
            headers=headers,
            json={"action": action, "version": version, **fields},
        )
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    return _act


def view(client, auth, username: str, ref: str):
    return client.get(f"/api/v1/cases/{ref}", headers=auth(username))


def case(ref: str) -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.tracking_no == ref))


# -- routing: subject and owner -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point_org", "about_head", "owner"),
    [
        ("demo-town-1-village-1", False, "demo-town-1-jw"),  # a village → its township's 纪委
        ("demo-town-1", False, "demo-town-1-jw"),  # the township itself → its own 纪委
        ("demo-dept-civil", False, "demo-county-group-1"),  # set by an admin: the 派驻组
        ("demo-county", False, "demo-county"),
        ("demo-town-1-village-1", True, "demo-county"),  # about its leadership: one body up
        ("demo-town-1", True, "demo-county"),
    ],
)
def test_a_qr_complaint_is_owned_by_the_subject_units_discipline_body(
    file_case, point_org, about_head, owner
):
    ref, _ = file_case(point_org, about_org_head=about_head)
    row = case(ref)
    assert row.subject_org.code == point_org and row.owner.code == owner and row.org.code == owner


def test_report_form_subject_unit_is_chosen_or_the_commission(client, demo):
    chosen = client.post(
        "/api/v1/cases", json={**SERVICE, "subject_unit": "demo-town-2-village-1"}
    ).get_json()
    unknown = client.post("/api/v1/cases", json=SERVICE).get_json()
    ISSUED_ACCESS_CODES.extend([chosen["access_code"], unknown["access_code"]])
    assert case(chosen["tracking_no"]).owner.code == "demo-town-2-jw"
    assert case(unknown["tracking_no"]).subject_org.code == "demo-county"
    bad = client.post("/api/v1/cases", json={**SERVICE, "subject_unit": "no-such-unit"})
    assert bad.status_code == 422 and "找不到该单位" in str(bad.get_json())


def test_no_stalls_a_body_without_intake_is_passed_over(file_case, app):
    """§2a: a case never waits at an org where nobody can act on it."""
    intake = db.session.scalar(select(User).where(User.username == "demo-town-1-jw-intake"))
    intake.active = False
    db.session.commit()
    ref, _ = file_case("demo-town-1-village-1")
    assert case(ref).owner.code == "demo-county"
    from supervise.demo import intake_warnings

    assert any("城关镇纪委" in line for line in intake_warnings(db.session))


# -- the identity wall -------------------------------------------------------------------------------


def test_the_accused_village_never_sees_an_accusation_about_it(client, auth, file_case, act):
    """§2a: a user of the subject unit never sees a 检举控告 case about it (404, audited)."""
    ref, _ = file_case("demo-town-1-village-1", **ACCUSATION, **REPORTER)
    act("demo-town-1-jw-intake", ref, "accept", kind="accusation")
    for username in ("demo-town-1-village-1-leader", "demo-town-1-leader", "demo-town-1-handler"):
        assert view(client, auth, username, ref).status_code == 404
        listed = client.get("/api/v1/cases?queue=in_progress", headers=auth(username)).get_json()
        assert ref not in [c["tracking_no"] for c in listed["items"]]
    denied = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "access_denied")).all()
    assert {e.user.username for e in denied} >= {"demo-town-1-village-1-leader", "demo-town-1-leader"}


def test_accusations_are_never_transferred_to_any_unit(file_case, act):
    """§2a: 检举控告 stays inside discipline bodies; the refusal names the rule."""
    ref, _ = file_case("demo-town-1-village-1", **ACCUSATION)
    act("demo-town-1-jw-intake", ref, "accept", kind="accusation")
    for unit in ("demo-town-1-village-1", "demo-town-1", "demo-dept-civil"):
        refused = act("demo-town-1-jw-intake", ref, "transfer", expect=422, org=unit)
        assert "检举控告件只能在纪检监察机构之间转办" in refused["error"]["message"]
    moved = act("demo-town-1-jw-intake", ref, "transfer", org="demo-county")  # another body: allowed
    assert moved["status"] == "received" and moved["owner"] == "demo-county"


def test_a_transferred_service_case_shows_the_unit_its_content_never_its_reporter(
    client, auth, file_case, act
):
    ref, _ = file_case("demo-town-1-village-1", **REPORTER)
    act("demo-town-1-jw-intake", ref, "accept", kind="service")
    act("demo-town-1-jw-intake", ref, "note", text="反映人王五称其为村民组长")  # internal to the body
    act("demo-town-1-jw-intake", ref, "transfer", org="demo-town-1-village-1")
    seen = view(client, auth, "demo-town-1-village-1-leader", ref)
    assert seen.status_code == 200
    body = seen.get_json()
    assert body["content"] == SERVICE["content"] and body["reporter"] is None and body["real_name"] is False
    assert "王五" not in seen.get_data(as_text=True) and "137" not in seen.get_data(as_text=True)
    page = client.get(f"/staff/cases/{ref}", headers=auth("demo-town-1-village-1-leader"))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and SERVICE["content"] in html
    assert "王" not in html and "1234" not in html and "反映人" not in html and "实名" not in html
    reveal = client.post(
        f"/api/v1/cases/{ref}/identity", headers=auth("demo-town-1-village-1-leader"), json={"reason": "核实"}
    )
    assert reveal.status_code == 403
    # Another village sees nothing at all.
    assert view(client, auth, "demo-town-1-village-2-leader", ref).status_code == 404


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("demo-town-1-jw-intake", True),  # intake (and supervisor) of the owner
        ("demo-supervisor", True),  # a supervisor of the body above
        ("demo-town-1-jw-handler", False),
        ("demo-admin", False),
        ("demo-handler", False),
    ],
)
def test_only_the_owner_and_bodies_above_reveal_the_reporter(client, auth, file_case, username, allowed):
    ref, _ = file_case("demo-town-1-village-1", **REPORTER)
    response = client.post(
        f"/api/v1/cases/{ref}/identity", headers=auth(username), json={"reason": "核实身份"}
    )
    if allowed:
        assert response.get_json() == REPORTER
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "identity_view"))
        assert entry.user.username == username and entry.detail["reason"] == "核实身份"
    else:
        assert response.status_code in (403, 404)


# -- the service loop: 转办 — 反馈 — 审核 ------------------------------------------------------------


def test_the_full_service_loop_through_a_unit(client, auth, file_case, act):
    ref, code = file_case("demo-dept-civil", **REPORTER)
    assert act("demo-group-1-intake", ref, "accept", kind="service")["kind"] == "service"
    sent = act("demo-group-1-intake", ref, "transfer", org="demo-dept-civil", note="请民政局核实整改")
    assert (sent["status"], sent["org"], sent["owner"], sent["assignee"]) == (
        "assigned",
        "demo-dept-civil",
        "demo-county-group-1",
        None,
    )
    waiting = client.get("/api/v1/cases?queue=dispatch", headers=auth("demo-dept-civil-leader")).get_json()
    assert [c["tracking_no"] for c in waiting["items"]] == [ref]
    act("demo-dept-civil-leader", ref, "assign", user="demo-dept-civil-handler")
    act("demo-dept-civil-handler", ref, "start")
    answered = act("demo-dept-civil-handler", ref, "feedback", text="已联系申请人，临时救助金已于本周发放。")
    assert (answered["status"], answered["org"]) == ("feedback_pending_review", "demo-county-group-1")
    act("demo-dept-civil-handler", ref, "publish", expect=403)  # units never publish
    published = act("demo-group-1-intake", ref, "publish")
    assert published["status"] == "responded"
    tracked = client.post("/api/v1/track", json={"tracking_no": ref, "access_code": code}).get_json()
    assert tracked["feedback"].startswith("已联系申请人") and tracked["can_rate"]
    rated = client.post(
        "/api/v1/track/rating", json={"tracking_no": ref, "access_code": code, "rating": "satisfied"}
    )
    assert rated.status_code == 200 and case(ref).status == "closed"
    # The unit keeps seeing what it handled.
    done = client.get("/api/v1/cases?queue=done", headers=auth("demo-dept-civil-handler")).get_json()
    assert [c["tracking_no"] for c in done["items"]] == [ref]
    kinds = db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.case_id == case(ref).id)).all()
    assert {"case_transferred", "case_assigned", "review_requested", "feedback_published"} <= set(kinds)


def test_the_owner_sends_a_units_draft_back_to_the_unit(file_case, act):
    ref, _ = file_case("demo-dept-civil")
    act("demo-group-1-intake", ref, "accept")
    act("demo-group-1-intake", ref, "transfer", org="demo-dept-civil")
    act("demo-dept-civil-leader", ref, "assign", user="demo-dept-civil-handler")
    act("demo-dept-civil-handler", ref, "start")
    act("demo-dept-civil-handler", ref, "feedback", text="已处理。")
    back = act("demo-group-1-intake", ref, "reopen", reason="请写明处理结果和时间")
    assert (back["status"], back["org"], back["assignee"]) == (
        "processing",
        "demo-dept-civil",
        "demo-dept-civil-handler",
    )


def test_a_unit_returns_a_case_that_is_not_its_own(client, auth, file_case, act):
    ref, _ = file_case("demo-town-1-village-1")
    act("demo-town-1-jw-intake", ref, "accept")
    act("demo-town-1-jw-intake", ref, "transfer", org="demo-town-1-village-1")
    act("demo-town-1-village-1-leader", ref, "return", expect=422)  # a reason is required
    returned = act("demo-town-1-village-1-leader", ref, "return", reason="该事项属镇民政办职责")
    assert (returned["status"], returned["org"], returned["unit"]) == ("accepted", "demo-town-1-jw", None)
    assert view(client, auth, "demo-town-1-village-1-leader", ref).status_code == 404
    kinds = db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.case_id == case(ref).id)).all()
    assert "case_returned" in kinds


def test_a_unit_without_a_leader_account_cannot_be_sent_a_case(file_case, act):
    leader = db.session.scalar(select(User).where(User.username == "demo-town-1-village-2-leader"))
    leader.active = False
    db.session.commit()
    ref, _ = file_case("demo-town-1-village-2")
    act("demo-town-1-jw-intake", ref, "accept")
    refused = act("demo-town-1-jw-intake", ref, "transfer", expect=422, org="demo-town-1-village-2")
    assert "单位负责人" in refused["error"]["message"]


# -- classification and disposal ---------------------------------------------------------------------


def test_the_category_gives_the_kind_and_intake_may_change_it(file_case, act):
    accusation, _ = file_case("demo-town-1", **ACCUSATION)
    assert act("demo-town-1-jw-intake", accusation, "accept")["kind"] == "accusation"
    service, _ = file_case("demo-town-1")
    assert act("demo-town-1-jw-intake", service, "accept", kind="suggestion")["kind"] == "suggestion"
    assert act("demo-town-1-jw-intake", service, "classify", kind="service")["kind"] == "service"


def test_an_accusation_ends_with_a_recorded_disposal_told_to_the_reporter(client, file_case, act):
    ref, code = file_case("demo-town-1-village-1", **ACCUSATION, **REPORTER)
    act("demo-town-1-jw-intake", ref, "accept", user="demo-town-1-jw-handler")  # 受理并交办
    act("demo-town-1-jw-handler", ref, "start")
    missing = act(
        "demo-town-1-jw-handler", ref, "feedback", expect=422, text="经初步核实，反映问题部分属实。"
    )
    assert "disposal" in missing["error"]["details"]
    drafted = act(
        "demo-town-1-jw-handler",
        ref,
        "feedback",
        text="经初步核实，反映问题部分属实，已立案审查。",
        disposal="preliminary_check",
        disposal_note="初步核实后转立案审查",
    )
    assert drafted["disposal"] == "preliminary_check"
    act("demo-town-1-jw-intake", ref, "publish")
    tracked = client.post("/api/v1/track", json={"tracking_no": ref, "access_code": code}).get_json()
    assert "已立案审查" in tracked["feedback"]
    sms = db.session.scalars(
        select(OutboxMessage.kind).where(
            OutboxMessage.case_id == case(ref).id, OutboxMessage.channel == "sms"
        )
    ).all()
    assert "feedback_published" in sms


# -- rejection oversight -------------------------------------------------------------------------------


def test_a_rejection_needs_a_listed_reason_and_a_supervisor_may_reverse_it(client, auth, file_case, act):
    ref, code = file_case("demo-town-1", **REPORTER)
    assert (
        "reason_code"
        in act("demo-town-1-jw-intake", ref, "reject", expect=422, reason="不属于本机关")["error"]["details"]
    )
    act("demo-town-1-jw-intake", ref, "reject", reason_code="out_of_scope", reason="请向县信访局反映")
    tracked = client.post("/api/v1/track", json={"tracking_no": ref, "access_code": code}).get_json()
    assert any("不属于本机关受理范围：请向县信访局反映" in (e["note"] or "") for e in tracked["timeline"])
    sms = db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.channel == "sms")).all()
    assert "case_rejected" in sms
    review = client.get("/api/v1/cases?queue=rejected", headers=auth("demo-town-1-jw-intake")).get_json()
    assert [c["tracking_no"] for c in review["items"]] == [ref]
    back = act("demo-town-1-jw-intake", ref, "reverse_rejection", reason="复核认为属于受理范围")
    assert back["status"] == "received"
    assert [e["action"] for e in back["events"]][-1] == "reverse_rejection"


def test_a_rejection_cannot_be_reversed_after_ten_working_days(app, file_case, act):
    import time_machine

    ref, _ = file_case("demo-town-1")
    with time_machine.travel("2026-12-01 10:00 +0800", tick=False):
        act("demo-town-1-jw-intake", ref, "reject", reason_code="no_facts", reason="内容不具体")
    with time_machine.travel("2026-12-16 10:00 +0800", tick=False):  # 11 working days later
        refused = act("demo-town-1-jw-intake", ref, "reverse_rejection", expect=422, reason="复核")
    assert "10 个工作日" in refused["error"]["message"]


# -- merged reporters are answered ---------------------------------------------------------------------


def test_a_merged_reporter_sees_the_answer_gets_the_sms_and_rates(client, file_case, act):
    master, _ = file_case("demo-town-1")
    duplicate, dup_code = file_case("demo-town-1", **REPORTER)
    act("demo-town-1-jw-intake", duplicate, "merge", into=master)
    act(
        "demo-town-1-jw-intake", master, "accept", text="已通知便民服务中心严格执行工作时间。"
    )  # 受理并直接答复
    act("demo-town-1-jw-intake", master, "publish", expect=403)  # four eyes: the drafter does not publish
    act("demo-supervisor", master, "publish")
    tracked = client.post(
        "/api/v1/track", json={"tracking_no": duplicate, "access_code": dup_code}
    ).get_json()
    assert tracked["merged_into"]["tracking_no"] == master
    assert tracked["feedback"].startswith("已通知") and tracked["can_rate"]
    sms = db.session.scalars(
        select(OutboxMessage.kind).where(
            OutboxMessage.case_id == case(duplicate).id, OutboxMessage.channel == "sms"
        )
    ).all()
    assert "feedback_published" in sms
    rated = client.post(
        "/api/v1/track/rating",
        json={"tracking_no": duplicate, "access_code": dup_code, "rating": "satisfied"},
    )
    assert rated.status_code == 200
    master_events = case(master).events
    assert any(e.action == "rate" and e.data.get("from_merged") == duplicate for e in master_events)


# -- small offices ---------------------------------------------------------------------------------


def test_one_person_may_draft_and_publish_only_where_the_org_allows_it(file_case, act):
    ref, _ = file_case("demo-town-1")
    act("demo-town-1-jw-intake", ref, "accept", text="该事项请到镇便民服务中心三号窗口办理。")
    refused = act("demo-town-1-jw-intake", ref, "publish", expect=403)
    assert "四眼" in refused["error"]["message"]
    office = db.session.scalar(select(Org).where(Org.code == "demo-town-1-jw"))
    office.self_publish_allowed = True
    db.session.commit()
    assert act("demo-town-1-jw-intake", ref, "publish")["status"] == "responded"
    other, _ = file_case("demo-town-1")
    answered = act("demo-town-1-jw-intake", other, "accept", text="已当场答复。")  # published at once
    assert answered["status"] == "responded"


# -- the demo: every sample case can be worked to the end --------------------------------------------


def test_every_demo_points_sample_case_can_be_worked_to_closed_by_the_printed_accounts(app, client, auth):
    from supervise.demo import CASES, USERS, load_demo

    load_demo(sample_cases=True)
    accounts = {username: (roles.split(","), org) for username, roles, org in USERS}

    def account(org_code: str, role: str) -> str:
        return next(u for u, (roles, org) in accounts.items() if org == org_code and role in roles)

    cases = db.session.scalars(select(Case).order_by(Case.id)).all()
    assert len(cases) == len(CASES) == 9
    for row in cases:
        ref, owner, subject = row.tracking_no, row.owner.code, row.subject_org
        intake, supervisor = account(owner, "intake"), account(owner, "supervisor")

        def step(username, action, ref=ref, **fields):
            version = client.get(f"/api/v1/cases/{ref}", headers=auth(username)).get_json()["version"]
            response = client.post(
                f"/api/v1/cases/{ref}/actions",
                headers=auth(username),
                json={"action": action, "version": version, **fields},
            )
            assert response.status_code == 200, (ref, username, action, response.get_json())
            return response.get_json()

        kind = step(intake, "accept")["kind"]
        if kind == "accusation" or subject.is_body:
            handler = account(owner, "handler")
            step(intake, "assign", user=handler)
            step(handler, "start")
            extra = {"disposal": "concluded", "disposal_note": "经核实不属实"} if kind == "accusation" else {}
            step(handler, "feedback", text="经核查，已处理，特此答复。", **extra)
        else:
            step(intake, "transfer", org=subject.code)
            leader, unit_handler = account(subject.code, "leader"), account(subject.code, "handler")
            step(leader, "assign", user=unit_handler)
            step(unit_handler, "start")
            step(unit_handler, "feedback", text="已整改到位，特此反馈。")
        assert step(supervisor, "publish")["status"] == "responded"
        # The demo does not print access codes: the citizen's rating goes through the workflow.
        workflow.rate(services.make_context(), case(ref), rating=Rating.SATISFIED)
        services.commit()
        assert case(ref).status == "closed", ref


def test_the_report_form_offers_the_units_and_keeps_the_choice(client, demo):
    page = client.get("/report").get_data(as_text=True)
    assert 'name="subject_unit"' in page and "东关村" in page and "城关镇纪委" not in page
    refused = client.post("/report", data={"subject_unit": "demo-town-1-village-1", "category": "efficiency"})
    assert refused.status_code == 422
    assert 'value="demo-town-1-village-1" selected' in refused.get_data(as_text=True)
    units = client.get("/api/v1/units").get_json()
    assert {"code": "demo-town-1-village-1", "name": "东关村", "kind": "village"} in units
    assert all(u["kind"] in ("department", "township", "village") for u in units)


def test_the_merged_reporters_tracking_page_names_the_case_it_joined(client, file_case, act):
    master, _ = file_case("demo-town-1")
    duplicate, code = file_case("demo-town-1")
    act("demo-town-1-jw-intake", duplicate, "merge", into=master)
    page = client.post("/track", data={"tracking_no": duplicate, "access_code": code}).get_data(as_text=True)
    assert 'id="merged-into"' in page and master in page


def test_an_unsatisfied_citizen_sends_a_units_answer_back_to_that_unit(client, file_case, act):
    ref, code = file_case("demo-dept-civil")
    act("demo-group-1-intake", ref, "accept")
    act("demo-group-1-intake", ref, "transfer", org="demo-dept-civil")
    act("demo-dept-civil-leader", ref, "assign", user="demo-dept-civil-handler")
    act("demo-dept-civil-handler", ref, "start")
    act("demo-dept-civil-handler", ref, "feedback", text="已处理。")
    act("demo-group-1-intake", ref, "publish")
    rated = client.post(
        "/api/v1/track/rating", json={"tracking_no": ref, "access_code": code, "rating": "unsatisfied"}
    )
    assert rated.status_code == 200
    row = case(ref)
    assert (row.status, row.org.code, row.assignee.username) == (
        "reopened",
        "demo-dept-civil",
        "demo-dept-civil-handler",
    )
    assert act("demo-dept-civil-handler", ref, "start")["status"] == "processing"


def test_a_units_queue_order_does_not_tell_who_gave_their_name(client, auth, file_case, act):
    anonymous, _ = file_case("demo-town-1-village-1")
    named, _ = file_case("demo-town-1-village-1", **REPORTER)
    for ref in (anonymous, named):
        act("demo-town-1-jw-intake", ref, "accept")
        act("demo-town-1-jw-intake", ref, "transfer", org="demo-town-1-village-1")

    def order(username):
        rows = client.get("/api/v1/cases?queue=in_progress", headers=auth(username)).get_json()["items"]
        return [r["tracking_no"] for r in rows]

    assert order("demo-town-1-jw-intake") == [named, anonymous]  # 实名优先 at the body
    assert order("demo-town-1-village-1-leader") == [anonymous, named]  # by due day, then arrival
    paged = client.get(
        "/api/v1/cases?queue=in_progress&limit=1", headers=auth("demo-town-1-village-1-leader")
    )
    cursor = paged.get_json()["next_cursor"]
    second = client.get(
        f"/api/v1/cases?queue=in_progress&limit=1&cursor={cursor}",
        headers=auth("demo-town-1-village-1-leader"),
    )
    assert [r["tracking_no"] for r in second.get_json()["items"]] == [named]
