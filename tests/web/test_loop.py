"""The whole loop through HTTP: submit → accept → assign → start → feedback → publish → track → rate."""

from __future__ import annotations

import re
import threading

from rq import SimpleWorker, Worker
from sqlalchemy import select

from supervise.extensions import db
from supervise.notify.models import Notification, OutboxMessage
from supervise.queueing import redis_connection


def act(client, headers, ref, action, version, **fields):
    return client.post(
        f"/api/v1/cases/{ref}/actions", headers=headers, json={"action": action, "version": version, **fields}
    )


def test_full_loop_through_http_with_a_real_worker(app, client, auth, submit):
    submitted = submit(name="张三", phone="13812345678")
    ref, code = submitted["tracking_no"], submitted["access_code"]
    assert ref.startswith("MS") and submitted["status"] == "received"
    assert len(code.replace("-", "")) == 12 and not set(code) & set("01IO")
    assert submitted["response_due_at"].endswith("+00:00")

    intake, handler, supervisor = auth("demo-intake"), auth("demo-handler"), auth("demo-supervisor")
    queue = client.get("/api/v1/cases?queue=intake", headers=intake).get_json()
    assert [c["tracking_no"] for c in queue["items"]] == [ref]

    version = queue["items"][0]["version"]
    steps = [
        (intake, "accept", {}),
        (intake, "assign", {"user": "demo-handler"}),
        (handler, "start", {}),
        (
            handler,
            "feedback",
            {
                "text": "经核查，反映属实，已责令当事人退还并作出检讨。",
                # 检举控告 (the category's default kind) ends with a recorded disposal
                "disposal": "concluded",
                "disposal_note": "已退还并作出检讨，予以了结",
            },
        ),
        (supervisor, "publish", {}),
    ]
    for headers, action, fields in steps:
        response = act(client, headers, ref, action, version, **fields)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        version = body["version"]
    assert body["status"] == "responded"
    assert body["reporter"] == {"name": "张*", "phone": "138****5678", "masked": True}
    assert [e["action"] for e in body["events"]] == [
        "submit",
        "accept",
        "assign",
        "start",
        "feedback",
        "publish",
    ]

    # The citizen sees the feedback, then rates it; the case closes.
    tracked = client.post("/api/v1/track", json={"tracking_no": ref, "access_code": code}).get_json()
    assert tracked["feedback"].startswith("经核查") and tracked["can_rate"] and tracked["responded_on_time"]
    assert [e["action"] for e in tracked["timeline"]] == [
        "submit",
        "accept",
        "publish",
    ]  # public entries only
    rated = client.post(
        "/api/v1/track/rating",
        json={"tracking_no": ref, "access_code": code, "rating": "satisfied", "comment": "处理及时"},
    )
    assert rated.status_code == 200 and rated.get_json()["status"] == "closed"
    detail = client.get(f"/api/v1/cases/{ref}", headers=supervisor).get_json()
    assert detail["status"] == "closed" and detail["rating"] == "satisfied"

    # The outbox rows (received, assigned, the draft to review, the answer out and its rating to
    # the handler; SMS to the reporter: accepted, answered) were enqueued after commit; a real
    # worker delivers them.
    pending = db.session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")).all()
    assert {(m.kind, m.channel) for m in pending} == {
        ("case_received", "inapp"),
        ("case_assigned", "inapp"),
        ("review_requested", "inapp"),
        ("answer_published", "inapp"),
        ("case_rated", "inapp"),
        ("case_accepted", "sms"),
        ("feedback_published", "sms"),
        # The reporter's number verified first (issue 18): its code's SMS, used by now, sends nothing.
        ("phone_code", "sms"),
    }
    Worker(["default"], connection=redis_connection(app)).work(burst=True)
    db.session.expire_all()
    assert {m.status for m in db.session.scalars(select(OutboxMessage))} == {"delivered"}
    from supervise.staff.models import User

    received = set(db.session.execute(select(User.username, Notification.title).join(User)).all())
    assert received >= {
        ("demo-intake", f"新诉求件 {ref} 待受理"),
        ("demo-handler", f"诉求件 {ref} 已交办给你"),
        ("demo-supervisor", f"诉求件 {ref} 的答复待审核"),
        ("demo-handler", f"诉求件 {ref} 的答复已发布"),
        ("demo-handler", f"诉求件 {ref} 已收到群众评价"),
    }


def test_concurrent_actions_on_one_version_one_wins_one_conflicts(app, client, auth, submit):
    ref = submit()["tracking_no"]
    headers = auth("demo-intake")
    version = client.get(f"/api/v1/cases/{ref}", headers=headers).get_json()["version"]
    barrier = threading.Barrier(2)
    results: list[int] = []

    def accept_or_reject(action, fields):
        local = app.test_client()
        with app.app_context():
            barrier.wait()
            results.append(act(local, headers, ref, action, version, **fields).status_code)

    threads = [
        threading.Thread(target=accept_or_reject, args=("accept", {})),
        threading.Thread(
            target=accept_or_reject, args=("reject", {"reason": "重复反映", "reason_code": "duplicate"})
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    detail = client.get(f"/api/v1/cases/{ref}", headers=headers).get_json()
    assert detail["version"] == version + 1
    assert [e["action"] for e in detail["events"]][1:] in (["accept"], ["reject"])


def test_stale_version_gets_409_with_a_helpful_message(client, auth, submit):
    ref = submit()["tracking_no"]
    headers = auth("demo-intake")
    assert act(client, headers, ref, "accept", 1).status_code == 200
    stale = act(client, headers, ref, "message", 1, text="我看到的是旧版本")
    assert stale.status_code == 409
    error = stale.get_json()["error"]
    assert error["code"] == "stale_version" and error["details"]["current_version"] == 2


def test_internal_notes_never_conflict_and_leave_the_version_alone(client, auth, submit):
    """Two colleagues with the page open: notes from both land, the version does not move, and a
    state change made on the version both saw still goes through."""
    ref = submit()["tracking_no"]
    intake, supervisor = auth("demo-intake"), auth("demo-supervisor")
    first = act(client, intake, ref, "note", 1, text="已电话联系窗口负责人")
    second = act(client, supervisor, ref, "note", 1, text="请注意保护反映人")
    assert first.status_code == 200 and second.status_code == 200, second.get_json()
    body = second.get_json()
    assert body["version"] == 1
    assert [e["action"] for e in body["events"]] == ["submit", "note", "note"]  # both kept, as events
    assert act(client, intake, ref, "accept", 1).status_code == 200
    # A state change still locks: the stale version now conflicts, and says so in Chinese.
    stale = act(client, supervisor, ref, "transfer", 1, org="demo-town-1-jw")
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "stale_version"


def test_illegal_action_gets_409_listing_allowed_actions(client, auth, submit):
    ref = submit()["tracking_no"]
    response = act(client, auth("demo-supervisor"), ref, "publish", 1)
    assert response.status_code == 409
    error = response.get_json()["error"]
    # The message speaks Chinese: the state and the action by their labels, not their codes.
    assert error["code"] == "illegal_transition" and "“待受理”" in error["message"]
    assert "“答复”" in error["message"] and "received" not in error["message"]
    # Every allowed action is named by its label too (转办、延期、备注、留言), no code left over.
    assert re.search(r"[a-z_]{3,}", error["message"]) is None, error["message"]
    assert error["details"]["status"] == "received"
    assert error["details"]["allowed_actions"] == ["transfer", "extend", "note", "message"]


def test_out_of_scope_case_is_404_by_url_and_api(client, auth, submit):
    ref = submit()["tracking_no"]  # owned by demo-county
    for username in ("demo-town-1-jw-intake", "demo-town-1-leader"):  # another body; a unit
        other = auth(username)
        assert client.get(f"/api/v1/cases/{ref}", headers=other).status_code == 404
        assert act(client, other, ref, "accept", 1).status_code == 404
        assert client.get("/api/v1/cases", headers=other).get_json()["items"] == []


def test_staff_endpoints_need_a_token(client, submit):
    ref = submit()["tracking_no"]
    assert client.get("/api/v1/cases").status_code == 401
    assert client.get(f"/api/v1/cases/{ref}", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_queue_is_keyset_paginated_real_name_first(client, auth, submit):
    anonymous = [submit()["tracking_no"] for _ in range(3)]
    named = submit(name="李四", phone="13900001111")["tracking_no"]
    headers = auth("demo-intake")
    seen, cursor = [], None
    while True:
        url = "/api/v1/cases?queue=intake&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=headers).get_json()
        seen += [c["tracking_no"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [named, *anonymous]


def test_track_does_not_reveal_whether_a_tracking_number_exists(client, submit):
    ref = submit()["tracking_no"]
    wrong_code = client.post("/api/v1/track", json={"tracking_no": ref, "access_code": "AAAA-BBBB-CCCC"})
    no_case = client.post(
        "/api/v1/track", json={"tracking_no": "MS2026-999999", "access_code": "AAAA-BBBB-CCCC"}
    )
    assert wrong_code.status_code == no_case.status_code == 404
    assert wrong_code.get_json() == no_case.get_json()


def test_supplement_and_unsatisfied_rating_reopen(client, auth, submit):
    s = submit()
    creds = {"tracking_no": s["tracking_no"], "access_code": s["access_code"].lower()}  # case-insensitive
    added = client.post("/api/v1/track/supplement", json={**creds, "text": "补充：时间是上周三上午"})
    assert added.status_code == 200 and added.get_json()["timeline"][-1]["note"] == "补充：时间是上周三上午"
    refused = client.post("/api/v1/track/rating", json={**creds, "rating": "satisfied"})
    assert refused.status_code == 409  # nothing published yet


def test_idempotency_key_makes_one_case(client, demo):
    from tests.conftest import VALID_SUBMISSION

    body = {**VALID_SUBMISSION, "idempotency_key": "form-123"}
    first = client.post("/api/v1/cases", json=body).get_json()
    second = client.post("/api/v1/cases", json=body).get_json()
    assert first["tracking_no"] == second["tracking_no"]
    # The code on the last page the citizen saw is the one that works.
    ok = client.post(
        "/api/v1/track", json={"tracking_no": second["tracking_no"], "access_code": second["access_code"]}
    )
    assert ok.status_code == 200


def test_simple_worker_delivery_is_idempotent(app, submit):
    from supervise.notify import outbox
    from supervise.notify.channels import default_channels

    submit()
    message = db.session.scalar(select(OutboxMessage))
    assert outbox.deliver(db.session, message.id, default_channels()) == "delivered"
    assert outbox.deliver(db.session, message.id, default_channels()) == "skipped"
    SimpleWorker(["default"], connection=redis_connection(app)).work(burst=True)  # the queued job too
    assert db.session.scalar(select(Notification.id).where(Notification.outbox_id == message.id)) is not None
    assert (
        len(db.session.scalars(select(Notification).where(Notification.outbox_id == message.id)).all()) == 1
    )
