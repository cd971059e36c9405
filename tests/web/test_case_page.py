"""The staff case page as people read and use it (issue 13): labels not codes, the transfer's
note, drafts that survive the idle timeout, review beside its draft with a confirmation step,
the extension request carried into the approval, templates without JS, notes without conflicts,
nothing asked twice, and errors tied to their fields."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from supervise.cases.models import Case, CaseDraft
from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.orgs.services import get_org_by_code
from supervise.staff.models import ReplyTemplate, StaffSession
from tests.web.test_loop import act
from tests.web.test_staff import csrf_token, login

SERVICE = {"category": "efficiency", "subject": "县民政局", "content": "临时救助申请一个多月没有回音。"}


@pytest.fixture
def page_client(app, demo):
    """`page_client("demo-intake")` → a test client signed in through the login form."""

    def make(username: str):
        client = app.test_client()
        assert login(client, username).status_code == 302
        return client

    return make


def post(client, ref: str, **fields):
    token = csrf_token(client, f"/staff/cases/{ref}")
    return client.post(f"/staff/cases/{ref}/act", data={"csrf_token": token, **fields})


def version(ref: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(Case.version).where(Case.tracking_no == ref))


def at_the_unit(client, submit, auth, note="请重点核查窗口值班记录") -> str:
    """A service complaint owned by the county, accepted and transferred to 民政局 with a note."""
    ref = submit(**SERVICE)["tracking_no"]
    intake = auth("demo-intake")
    assert act(client, intake, ref, "accept", 1).status_code == 200
    assert act(client, intake, ref, "transfer", 2, org="demo-dept-civil", note=note).status_code == 200
    return ref


def test_a_person_reads_labels_never_codes(client, submit, auth, page_client):
    ref = submit()["tracking_no"]
    intake = page_client("demo-intake")
    page = intake.get(f"/staff/cases/{ref}").get_data(as_text=True)
    # Who submitted it: 群众, not `citizen`.
    assert re.search(r'<span class="who">群众</span>', page) and ">citizen<" not in page
    # A refused action (a handler may not publish; intake may not assign a new case): the
    # message names state and actions by their labels; no code, no `allowed_actions` list.
    for who, action in (("demo-handler", "publish"), ("demo-intake", "assign")):
        answer = post(page_client(who), ref, action=action, version="1", user="demo-handler", confirmed="1")
        assert answer.status_code in (403, 409)
        html = answer.get_data(as_text=True)
        summary = html[
            html.index('id="action-error"') : html.index("</div>", html.index('id="action-error"'))
        ]
        assert re.search(r"[a-z_]{4,}", summary.replace('id="action-error"', "")) is None, summary
        assert "allowed_actions" not in html and "received" not in summary
    # The API: codes for programs, labels beside them for people.
    detail = client.get(f"/api/v1/cases/{ref}", headers=auth("demo-intake")).get_json()
    submit_event = detail["events"][0]
    assert (submit_event["actor"], submit_event["actor_label"], submit_event["action_label"]) == (
        "citizen",
        "群众",
        "提交诉求",
    )
    refused = act(client, auth("demo-intake"), ref, "assign", 1, user="demo-handler").get_json()["error"]
    assert "“待受理”" in refused["message"] and "“交办”" in refused["message"]
    assert re.search(r"[a-z_]{3,}", refused["message"]) is None


def test_the_transfer_note_is_shown_to_the_unit_and_the_body(client, submit, auth, page_client):
    ref = at_the_unit(client, submit, auth)
    for username in ("demo-dept-civil-leader", "demo-intake"):
        html = page_client(username).get(f"/staff/cases/{ref}").get_data(as_text=True)
        assert "转办说明（内部）：请重点核查窗口值班记录" in html, username
    unit_view = client.get(f"/api/v1/cases/{ref}", headers=auth("demo-dept-civil-leader")).get_json()
    transfer = next(e for e in unit_view["events"] if e["action"] == "transfer")
    assert transfer["internal_note"] == "请重点核查窗口值班记录"
    assert transfer["actor_label"].endswith("（示范县纪委监委）") or "（" in transfer["actor_label"]
    # Another unit does not even see the case.
    assert page_client("demo-dept-hrss-leader").get(f"/staff/cases/{ref}").status_code == 404


def test_a_long_answer_survives_the_idle_timeout(app, client, submit, auth, page_client):
    ref = at_the_unit(client, submit, auth)
    assert (
        act(
            client, auth("demo-dept-civil-leader"), ref, "assign", 3, user="demo-dept-civil-handler"
        ).status_code
        == 200
    )
    handler = page_client("demo-dept-civil-handler")
    long_answer = "经核查，" + "临时救助款已核定并发放到位，" * 60
    token = csrf_token(handler, f"/staff/cases/{ref}")
    saved = handler.post(
        f"/staff/cases/{ref}/draft", data={"csrf_token": token, "action": "feedback", "text": long_answer}
    )
    assert saved.status_code == 200 and "saved_at" in saved.get_json()
    # Only on a case one may see: another unit is told there is no such case.
    stranger = page_client("demo-dept-hrss-leader")
    refused = stranger.post(
        f"/staff/cases/{ref}/draft",
        data={"csrf_token": csrf_token(stranger, "/staff/"), "action": "feedback", "text": "x"},
    )
    assert refused.status_code == 404
    # Kept on the server for this person and this case only: a colleague's page does not show it.
    assert long_answer not in page_client("demo-dept-civil-leader").get(f"/staff/cases/{ref}").get_data(
        as_text=True
    )

    # 30 minutes idle: the session ends; saving now says so (401), and the form's POST goes to
    # the sign-in, which comes back to the case page with the draft in the box.
    db.session.execute(StaffSession.__table__.update().values(last_seen_at=utcnow() - timedelta(minutes=31)))
    db.session.commit()
    assert (
        handler.post(
            f"/staff/cases/{ref}/draft", data={"csrf_token": token, "action": "feedback", "text": "x"}
        ).status_code
        == 401
    )
    sent = handler.post(
        f"/staff/cases/{ref}/act",
        data={"csrf_token": token, "action": "feedback", "version": "4", "text": long_answer + "！"},
    )
    assert sent.status_code == 302 and "/staff/login" in sent.headers["Location"]
    next_path = re.search(r"next=([^&]+)", sent.headers["Location"]).group(1).replace("%2F", "/")
    token = csrf_token(handler)
    signed_in = handler.post(
        "/staff/login",
        data={
            "username": "demo-dept-civil-handler",
            "password": "demo-password",
            "csrf_token": token,
            "next": next_path,
        },
    )
    assert signed_in.status_code == 302
    back = handler.get(signed_in.headers["Location"], follow_redirects=True)
    assert back.request.path == f"/staff/cases/{ref}"
    assert long_answer in back.get_data(as_text=True)

    # Sent for real (straight from 已交办: no 开始办理 click), the draft is gone.
    done = post(handler, ref, action="feedback", form="feedback", version=str(version(ref)), text=long_answer)
    assert done.status_code == 302
    assert db.session.scalar(select(CaseDraft.id)) is None
    events = client.get(f"/api/v1/cases/{ref}", headers=auth("demo-intake")).get_json()["events"]
    assert [e["action"] for e in events][-2:] == ["start", "feedback"]


def test_review_shows_the_draft_beside_the_decision_and_confirms(client, submit, auth, page_client):
    ref = at_the_unit(client, submit, auth)
    unit_handler = auth("demo-dept-civil-handler")
    act(client, auth("demo-dept-civil-leader"), ref, "assign", 3, user="demo-dept-civil-handler")
    request = act(client, unit_handler, ref, "request_extension", 4, days=7, reason="需到现场核查发放记录")
    assert request.status_code == 200, request.get_json()
    draft = act(client, unit_handler, ref, "feedback", 5, text="救助款本周内发放到位。")
    assert draft.status_code == 200, draft.get_json()

    supervisor = page_client("demo-supervisor")
    html = supervisor.get(f"/staff/cases/{ref}").get_data(as_text=True)
    # The draft sits in the review block at the top, beside publish / edit / send back.
    review = html[html.index('id="review"') : html.index('class="case-grid"')]
    assert "救助款本周内发放到位。" in review
    assert (
        'data-action="publish"' in review
        and 'id="f-publish_edit-text"' in review
        and 'id="f-send_back-reason"' in review
    )
    # The extension request is shown and carried into the approval form.
    assert "需到现场核查发放记录" in html[html.index('id="extension-request"') :]
    assert re.search(r'id="f-extend-days" name="days" type="number" value="7"', html)
    assert re.search(r'id="f-extend-reason" name="reason" type="text" value="需到现场核查发放记录"', html)

    # One click does not publish: a confirmation step shows the exact text first.
    v = version(ref)
    first = post(
        supervisor,
        ref,
        action="publish",
        form="publish_edit",
        version=str(v),
        text="救助款已于本周发放到位。",
    )
    body = first.get_data(as_text=True)
    assert first.status_code == 200 and 'id="confirm-publish"' in body and "救助款已于本周发放到位。" in body
    assert (
        client.get(f"/api/v1/cases/{ref}", headers=auth("demo-intake")).get_json()["status"]
        == "feedback_pending_review"
    )
    done = post(
        supervisor, ref, action="publish", version=str(v), confirmed="1", text="救助款已于本周发放到位。"
    )
    assert done.status_code == 302
    detail = client.get(f"/api/v1/cases/{ref}", headers=auth("demo-intake")).get_json()
    assert detail["status"] == "responded" and detail["feedback_text"] == "救助款已于本周发放到位。"
    assert detail["events"][-1]["data"].get("edited") is True
    assert "审核人修改后发布" in supervisor.get(f"/staff/cases/{ref}").get_data(as_text=True)


def test_send_back_needs_a_reason_tied_to_its_field(client, submit, auth, page_client):
    ref = at_the_unit(client, submit, auth)
    act(client, auth("demo-dept-civil-leader"), ref, "assign", 3, user="demo-dept-civil-handler")
    act(client, auth("demo-dept-civil-handler"), ref, "feedback", 4, text="已处理。")
    supervisor = page_client("demo-supervisor")
    answer = post(supervisor, ref, action="reopen", form="send_back", version=str(version(ref)), reason=" ")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    field = re.search(r'<input id="f-send_back-reason"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="e-send_back-reason"' in field
    assert re.search(r'<span class="field-error" id="e-send_back-reason">[^<]+</span>', html)
    assert 'href="#f-send_back-reason"' in html  # the summary links to the field


def test_a_reply_template_fills_the_box_without_js(client, submit, auth, page_client):
    ref = at_the_unit(client, submit, auth)
    act(client, auth("demo-dept-civil-leader"), ref, "assign", 3, user="demo-dept-civil-handler")
    org = get_org_by_code(db.session, "demo-dept-civil")
    template = ReplyTemplate(org_id=org.id, title="已发放", body="您反映的临时救助款已发放，请查收。")
    db.session.add(template)
    db.session.commit()
    handler = page_client("demo-dept-civil-handler")
    html = handler.get(f"/staff/cases/{ref}").get_data(as_text=True)
    assert 'data-body="您反映的临时救助款已发放，请查收。"' in html and 'name="use_template"' in html
    v = version(ref)
    shown = post(
        handler,
        ref,
        action="feedback",
        form="feedback",
        version=str(v),
        template=str(template.id),
        use_template="1",
        text="",
    )
    assert shown.status_code == 200
    assert re.search(
        r'<textarea id="f-feedback-text"[^>]*>您反映的临时救助款已发放，请查收。</textarea>',
        shown.get_data(as_text=True),
    )
    assert version(ref) == v  # nothing done yet


def test_nothing_asked_twice(client, submit, auth, page_client):
    # Accepted (定性: 作风效能诉求), sent on to the township's 纪委: its intake is not asked the kind again.
    ref = submit(**SERVICE)["tracking_no"]
    intake = auth("demo-intake")
    act(client, intake, ref, "accept", 1)
    assert act(client, intake, ref, "transfer", 2, org="demo-town-1-jw").status_code == 200
    html = page_client("demo-town-1-jw-intake").get(f"/staff/cases/{ref}").get_data(as_text=True)
    accept_form = html[html.index('id="form-accept"') : html.index("</form>", html.index('id="form-accept"'))]
    assert 'name="kind" value="service"' in accept_form and "<select" not in accept_form

    # Returned by the unit it was sent to: sending it on again starts from that unit.
    ref = at_the_unit(client, submit, auth)
    assert (
        act(client, auth("demo-dept-civil-leader"), ref, "return", 3, reason="窗口归政务中心管理").status_code
        == 200
    )
    html = page_client("demo-intake").get(f"/staff/cases/{ref}").get_data(as_text=True)
    assert '<option value="demo-dept-civil" selected>' in html
