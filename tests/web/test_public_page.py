"""/public (办理情况公开): small-count protection on edge counts, no village-level figures, no
reporter data, and published summaries under four eyes (supervise/accountability)."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import select

from supervise.accountability import services as summaries
from supervise.accountability.models import PublishedSummary
from supervise.cases.models import Case, Category
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import SHANGHAI, local_date
from supervise.deadlines.models import CaseClock
from supervise.errors import Conflict, Forbidden
from supervise.extensions import db
from supervise.orgs.models import Org
from supervise.orgs.routing import OrgTree
from supervise.staff.models import AuditEntry, User
from supervise.stats.services import refresh
from tests.conftest import ISSUED_ACCESS_CODES, verified
from tests.web.test_discipline import point_token
from tests.web.test_staff import csrf_token, login

VILLAGES = ("东关村", "西关社区", "石门村", "桃园村")


def org(code: str) -> Org:
    return db.session.scalar(select(Org).where(Org.code == code))


def user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def staff(username: str) -> Actor:
    return Actor.staff(user(username))


_seq = iter(range(1, 10**6))


def seed(
    org_code: str, n: int, *, on_time: int = 0, late: int = 0, satisfied: int = 0, kind: str = "service"
):
    """`n` cases about `org_code` received mid last month: the first `on_time` answered on time,
    the next `late` answered late, the first `satisfied` rated 满意. Written directly (fast); the
    statistics summary is rebuilt by the caller."""
    subject = org(org_code)
    owner_id = OrgTree.load(db.session).supervising_body(subject.id)
    category = db.session.scalar(select(Category).order_by(Category.id).limit(1))
    first = local_date(utcnow()).replace(day=1)
    received = datetime.combine(first - timedelta(days=16), time(10), tzinfo=SHANGHAI)
    for i in range(n):
        number = next(_seq)
        answered = i < on_time + late
        case = Case(
            tracking_no=f"MS-T{number:05d}-X0000",
            access_code_hash="x" * 64,
            status="closed" if answered else "accepted",
            org_id=owner_id,
            owner_org_id=owner_id,
            subject_org_id=subject.id,
            kind=kind,
            category_id=category.id,
            subject="某单位",
            content="内容",
            received_at=received,
            response_due_at=received + timedelta(days=21),
            responded_at=received + timedelta(days=3 if i < on_time else 30) if answered else None,
            closed_at=received + timedelta(days=31) if answered else None,
            rating="satisfied" if i < satisfied else None,
        )
        db.session.add(case)
        db.session.flush()
        if answered:
            db.session.add(
                CaseClock(
                    case_id=case.id,
                    kind="response",
                    org_id=owner_id,
                    started_at=received,
                    start_day=received.date(),
                    days=15,
                    due_at=case.response_due_at,
                    met_at=case.responded_at,
                    outcome="met",
                )
            )
    db.session.commit()


def page(client, lang: str | None = None) -> str:
    response = client.get("/public" + (f"?lang={lang}" if lang else ""))
    assert response.status_code == 200
    assert (
        "public" in response.headers["Cache-Control"] and "max-age=300" in response.headers["Cache-Control"]
    )
    return response.get_data(as_text=True)


def card(html: str, org_code: str) -> list[str]:
    """The four figures of a unit's card, in order: received, on time, on-time rate, satisfaction."""
    section = re.search(rf'id="unit-{org(org_code).id}">.*?</section>', html, re.S).group(0)
    return [v.replace("&lt;", "<") for v in re.findall(r"<dd>(.*?)</dd>", section)]


# -- small-count protection ---------------------------------------------------------------------------


def test_k_anonymity_on_edge_counts(client, demo):
    # 城关镇: 4 cases (two about its villages, rolled up), all answered on time and rated 满意.
    seed("demo-town-1", 2, on_time=2, satisfied=2)
    seed("demo-town-1-village-1", 2, on_time=2, satisfied=2)
    # 青山乡: exactly 5, all on time, all rated 满意.
    seed("demo-town-2-village-2", 5, on_time=5, satisfied=5)
    # 民政局: 6 cases, 5 answered (4 on time, 1 late), only 4 rated: that rate's base is under k.
    seed("demo-dept-civil", 6, on_time=4, late=1, satisfied=4)
    # 人社局: none.
    refresh(db.session, everything=True)

    html = page(client)
    assert card(html, "demo-town-1") == ["<5", "<5", "—", "—"]
    assert card(html, "demo-town-2") == ["5", "5", "100%", "100%"]
    # A group of 6: its counts are shown; the on-time rate's base (5 answered) is enough, the
    # satisfaction rate's (4 rated) is not.
    assert card(html, "demo-dept-civil") == ["6", "4", "80%", "—"]
    assert card(html, "demo-dept-hrss") == ["0", "0", "—", "—"]
    assert "少于5件的不显示具体数字" in html
    assert summaries.K_MIN == 5
    # The rule itself, on the cells.
    assert summaries.count_cell(4, 4).text == "<5" and summaries.count_cell(5, 5).text == "5"
    assert summaries.count_cell(0, 0).text == "0" and summaries.count_cell(0, 3).text == "<5"
    assert summaries.count_cell(4, 9).text == "4"
    assert summaries.rate_cell(4, 4, 9).text == "—" and summaries.rate_cell(4, 5, 9).text == "80%"


def test_no_village_names_or_village_figures(client, demo):
    seed("demo-town-1-village-1", 7, on_time=7, satisfied=6)
    seed("demo-town-1-village-2", 3, on_time=3)
    refresh(db.session, everything=True)
    for lang in (None, "en"):
        html = page(client, lang)
        for village in VILLAGES:
            assert village not in html
        for village_code in ("demo-town-1-village-1", "demo-town-1-village-2"):
            assert f'id="unit-{org(village_code).id}"' not in html
        assert card(html, "demo-town-1") == ["10", "10", "100%", "100%"]  # 7 + 3, in the township
        assert "纪委" not in html  # discipline bodies are not units complained about


# -- no reporter data ---------------------------------------------------------------------------------

SECRET_SERVICE = {
    "category": "efficiency",
    "subject": "东关村村委会会计室",
    "content": "南坡组排水沟堵塞三个月无人疏通，雨天污水漫进院子，找村里三次都说等等再说。",
    "location": "东关村南坡组十七号院门口",
}
SECRET_ANSWER = "已安排施工队于周三疏通南坡组排水沟并加装盖板，村委会向反映人当面致歉。"
SECRET_ACCUSATION = {
    "category": "petty_corruption",
    "subject": "青山乡石门村文书欧阳某",
    "content": "石门村文书欧阳某发放危房改造补助时每户扣留八百元茶水费。",
    "location": "石门村文书办公室北屋",
}
SECRET_DISPOSAL = "经核实欧阳某扣留补助问题不属实，予以了结，已向反映人说明。"
SUMMARY = "反映某村排水设施长期失修影响群众出行，经督促已修复，村干部被批评教育。"
SUMMARY_2 = "反映某镇窗口办事推诿，经核查已整改并公开办事流程。"


def _file(client, org_code: str, fields: dict, **extra) -> tuple[str, str]:
    body = verified({**fields, "point": point_token(org_code), **extra})  # real name: with its SMS code
    response = client.post("/api/v1/cases", json=body)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    ISSUED_ACCESS_CODES.append(body["access_code"])
    return body["tracking_no"], body["access_code"]


@pytest.fixture
def act(client, auth):
    def _act(username: str, ref: str, action: str, expect: int = 200, **fields):
        version = client.get(f"/api/v1/cases/{ref}", headers=auth("demo-supervisor")).get_json()["version"]
        response = client.post(
            f"/api/v1/cases/{ref}/actions",
            headers=auth(username),
            json={"action": action, "version": version, **fields},
        )
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    return _act


def closed_service_case(client, act, **reporter) -> tuple[str, str]:
    """A real-name 作风效能 complaint about a village, answered, rated 满意: closed."""
    ref, code = _file(client, "demo-town-1-village-1", SECRET_SERVICE, **reporter)
    act("demo-town-1-jw-intake", ref, "accept", kind="service", text=SECRET_ANSWER)
    act("demo-supervisor", ref, "publish")
    rated = client.post(
        "/api/v1/track/rating", json={"tracking_no": ref, "access_code": code, "rating": "satisfied"}
    )
    assert rated.status_code == 200
    return ref, code


def case_of(ref: str) -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.tracking_no == ref))


@pytest.fixture
def staff_client(app, demo):
    def make(username: str):
        browser = app.test_client()
        assert login(browser, username).status_code == 302
        return browser

    return make


def test_no_reporter_data_reaches_the_page(client, demo, act, staff_client):
    ref, code = closed_service_case(client, act, name="张三丰", phone="13900001111")
    ref2, code2 = closed_service_case(client, act, name="赵六", phone="13600003333")
    acc, acc_code = _file(
        client, "demo-town-2-village-1", SECRET_ACCUSATION, name="李四", phone="13812345678"
    )
    act("demo-town-2-jw-intake", acc, "accept", kind="accusation", user="demo-town-2-jw-handler")
    act("demo-town-2-jw-handler", acc, "start")
    act(
        "demo-town-2-jw-handler",
        acc,
        "feedback",
        text=SECRET_DISPOSAL,
        disposal="concluded",
        disposal_note="不属实",
    )
    act("demo-town-2-jw-intake", acc, "publish")
    client.post(
        "/api/v1/track/rating", json={"tracking_no": acc, "access_code": acc_code, "rating": "satisfied"}
    )
    assert case_of(acc).status == "closed"

    # Summaries typed in the staff UI: one approved, one approved then withdrawn, one left pending.
    handler, reviewer = staff_client("demo-town-1-jw-handler"), staff_client("demo-town-1-jw-intake")
    for reference, text in ((ref, SUMMARY), (ref2, SUMMARY_2)):
        sent = handler.post(
            f"/staff/cases/{reference}/summary",
            data={"text": text, "csrf_token": csrf_token(handler, f"/staff/cases/{reference}")},
        )
        assert sent.status_code == 302, sent.get_data(as_text=True)
    first, second = db.session.scalars(select(PublishedSummary).order_by(PublishedSummary.id)).all()
    assert client.get("/public").get_data(as_text=True).count(SUMMARY) == 0  # not approved yet
    for summary_id in (first.id, second.id):
        token = csrf_token(reviewer, f"/staff/cases/{ref}")
        assert (
            reviewer.post(f"/staff/summaries/{summary_id}/approve", data={"csrf_token": token}).status_code
            == 302
        )
    refresh(db.session, everything=True)
    html = page(client)
    assert SUMMARY in html and SUMMARY_2 in html
    token = csrf_token(reviewer, "/staff/summaries")
    withdrawn = reviewer.post(
        f"/staff/summaries/{second.id}/withdraw", data={"csrf_token": token, "back": "list"}
    )
    assert withdrawn.status_code == 302 and withdrawn.headers["Location"].endswith("/staff/summaries")

    secrets = [
        "张三丰", "13900001111", "赵六", "13600003333", "李四", "13812345678",
        ref, ref2, acc, code, code2, acc_code,
        SECRET_SERVICE["content"][:10], SECRET_SERVICE["location"], SECRET_SERVICE["subject"],
        SECRET_ANSWER[:10], SECRET_ACCUSATION["content"][:10], SECRET_ACCUSATION["subject"],
        SECRET_ACCUSATION["location"], SECRET_DISPOSAL[:10], "欧阳", "南坡组", "MS-",
    ]  # fmt: skip
    for lang in (None, "en"):
        html = page(client, lang)
        for secret in secrets:
            assert secret not in html, secret
        assert SUMMARY in html  # only the approved text…
        assert SUMMARY_2 not in html  # …and a withdrawn one is gone
        # No date finer than the month: no yyyy-mm-dd, no "日".
        assert not re.search(r"\d{4}-\d{2}-\d{2}", html)
        assert not re.search(r"\d+日", html)
        closed = case_of(ref).closed_at.astimezone(SHANGHAI)
        assert (f"{closed.year}年{closed.month}月" if lang is None else str(closed.year)) in html
    # The accusation may not be published at all.
    with pytest.raises(Conflict):
        summaries.write(
            db.session,
            case_of(acc),
            staff("demo-town-2-jw-handler"),
            "反映某村干部问题，经核实不属实，予以了结。",
        )
    db.session.rollback()


# -- four eyes ----------------------------------------------------------------------------------------


def test_four_eyes_drafter_cannot_approve_a_unit_cannot_publish_withdrawal_removes(
    client, demo, act, staff_client
):
    ref, _ = closed_service_case(client, act, name="王五", phone="13700001234")
    case = case_of(ref)
    # Not from the citizen's words or the answer, no phone numbers, no tracking number.
    writer = staff("demo-town-1-jw-intake")  # intake and supervisor: may write and approve
    for bad in (
        SECRET_SERVICE["content"][:20] + "已处理。",
        "已处理，联系电话13900001111。",
        f"{ref} 已处理完毕请知悉",
        "太短",
    ):
        with pytest.raises(Exception) as refused:
            summaries.write(db.session, case, writer, bad)
        assert refused.value.status == 422
        db.session.rollback()
    summary = summaries.write(db.session, case, writer, SUMMARY)
    db.session.commit()
    # The drafter may not approve their own, though they are a supervisor of the owning body.
    with pytest.raises(Forbidden):
        summaries.approve(db.session, summary, writer)
    db.session.rollback()
    reviewer = staff_client("demo-town-1-jw-intake")
    token = csrf_token(reviewer, f"/staff/cases/{ref}")
    assert (
        reviewer.post(f"/staff/summaries/{summary.id}/approve", data={"csrf_token": token}).status_code == 403
    )
    # A handler is no approver; the other township's 纪委 is not the owner nor above it.
    for username in ("demo-town-1-jw-handler", "demo-town-2-jw-intake"):
        with pytest.raises(Forbidden):
            summaries.approve(db.session, summary, staff(username))
        db.session.rollback()
    # A unit (the village, the township government) can neither write, approve nor list.
    for username in ("demo-town-1-village-1-leader", "demo-town-1-leader"):
        unit = staff_client(username)
        token = csrf_token(unit, "/staff/")
        assert unit.post(
            f"/staff/cases/{ref}/summary", data={"text": SUMMARY_2, "csrf_token": token}
        ).status_code in (
            403,
            404,
        )
        assert (
            unit.post(f"/staff/summaries/{summary.id}/approve", data={"csrf_token": token}).status_code == 403
        )
        assert unit.get("/staff/summaries").status_code == 403
    assert SUMMARY not in page(client)
    # The county's supervisor (a body above the owner) approves it: on the page.
    county = staff_client("demo-supervisor")
    token = csrf_token(county, "/staff/summaries")
    listed = county.get("/staff/summaries").get_data(as_text=True)
    assert SUMMARY in listed and ref in listed
    assert (
        county.post(f"/staff/summaries/{summary.id}/approve", data={"csrf_token": token}).status_code == 302
    )
    assert SUMMARY in page(client)
    # Withdrawn by its writer: gone at once.
    summaries.withdraw(db.session, db.session.get(PublishedSummary, summary.id), writer)
    db.session.commit()
    assert SUMMARY not in page(client)
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.case_id == case.id)).all()
    assert {"summary_written", "summary_approved", "summary_withdrawn"} <= set(actions)
    audit_page = county.get("/staff/audit").get_data(as_text=True)
    assert "批准公开摘要" in audit_page


def test_the_case_page_offers_the_form_only_on_a_closed_publishable_case(client, demo, act, staff_client):
    ref, _ = closed_service_case(client, act, name="王五", phone="13700001234")
    handler = staff_client("demo-town-1-jw-handler")
    html = handler.get(f"/staff/cases/{ref}").get_data(as_text=True)
    assert 'id="summary-form"' in html and 'id="nav-summaries"' in html
    # A copied text is refused on the page, with what was typed kept.
    token = csrf_token(handler, f"/staff/cases/{ref}")
    copied = SECRET_SERVICE["content"][:30]
    refused = handler.post(f"/staff/cases/{ref}/summary", data={"text": copied, "csrf_token": token})
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert 'id="summary-error"' in body and copied in body
    open_ref, _ = _file(client, "demo-town-1", SECRET_SERVICE)
    assert 'id="publish-summary"' not in handler.get(f"/staff/cases/{open_ref}").get_data(as_text=True)
