"""WeCom / DingTalk group robots (supervise/robots): escalations and review requests posted through
the outbox to a local stand-in that checks the signature as DingTalk documents it and the WeCom
key; providers' errors retried or dead-lettered; no reporter data in any message; the admin page."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import time_machine
from sqlalchemy import select

from supervise.cases.models import Case
from supervise.cases.services import identity_box
from supervise.config import ConfigError, load_config
from supervise.extensions import db
from supervise.notify import outbox
from supervise.notify.channels import default_channels
from supervise.notify.models import OutboxMessage
from supervise.orgs.services import get_org_by_code
from supervise.robots import services
from supervise.robots.channel import RobotChannel, RobotError, dingtalk_sign, signed_url
from supervise.robots.models import OrgRobot
from supervise.robots.services import RobotInput, RobotRefused, check_webhook, parse_hosts
from supervise.staff.models import AuditEntry, User
from supervise.staff.services import create_user
from tests.conftest import REPORTER_NAMES, REPORTER_PHONES, VALID_SUBMISSION
from tests.jobs.conftest import JW
from tests.jobs.test_deadlines import act, at, deliver_all, file_case, transfer_to_village
from tests.robot_standin import RobotStandIn
from tests.web.test_admin import changes, login

DING_SECRET = "SEC" + "0123456789abcdef" * 4
CONTENT = "村里低保名额被村干部亲属占用，多次反映无人处理。"
SUBJECT = "低保名额问题"


@pytest.fixture
def standin(app, tmp_path):
    app.config["DATA_DIR"] = str(tmp_path)  # the escalation e-mails go to a fresh development sink
    app.config["ROBOT_WEBHOOK_HOSTS"] = "127.0.0.1"
    stand = RobotStandIn()
    server = stand.start()
    yield stand
    server.shutdown()
    server.server_close()


def robot(
    org_code: str, kind: str, credential: str, standin: RobotStandIn, secret: str | None = None
) -> OrgRobot:
    """A robot added as an admin would (through the service), and known to the stand-in."""
    if kind == "dingtalk":
        standin.dingtalk[credential] = secret
    else:
        standin.wecom.add(credential)
    admin = db.session.scalar(select(User).where(User.username == "demo-admin"))
    added = services.add_robot(
        db.session,
        get_org_by_code(db.session, org_code),
        RobotInput(kind, f"{org_code} 工作群", standin.url(kind, credential), secret or ""),
        admin,
        identity_box(),
        parse_hosts("127.0.0.1"),
    )
    db.session.commit()
    return added


def robot_rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.channel == "robot").order_by(OutboxMessage.id)
        )
    )


def assert_no_reporter_data(standin: RobotStandIn) -> None:
    for post in standin.posts:
        for secret in (*REPORTER_NAMES, *REPORTER_PHONES, CONTENT, SUBJECT, VALID_SUBMISSION["content"]):
            assert secret not in post.raw, secret


def real_name_case(village) -> str:
    return file_case(
        village,
        category="efficiency",
        name=REPORTER_NAMES[0],
        phone=REPORTER_PHONES[0],
        content=CONTENT,
        subject=SUBJECT,
    )


# -- end to end: the sweep and the workflow --------------------------------------------------------


def test_escalations_reach_each_bodys_group_signed_once(app, village, standin):
    """Level 1 goes to 城关镇纪委's DingTalk group (signed), level 2 to the county's WeCom group."""
    robot(JW, "dingtalk", "jw-token", standin, DING_SECRET)
    robot("demo-county", "wecom", "county-key", standin)
    with time_machine.travel(at(2026, 11, 2), tick=False):
        ref = real_name_case(village)
        transfer_to_village(ref)
    with time_machine.travel(at(2026, 12, 1, 9), tick=False):  # past the due day and level 2's
        from supervise.deadlines.services import run_sweep

        result = run_sweep()
        assert (result.level1, result.level2) == (1, 1)
        deliver_all(app)
        assert run_sweep().notifications == 0  # a second sweep: nothing new, no second post
        deliver_all(app)

    assert [(p.kind, p.credential) for p in standin.posts] == [
        ("dingtalk", "jw-token"),
        ("wecom", "county-key"),
    ]
    ding, wecom = standin.posts
    assert set(ding.query) == {"access_token", "timestamp", "sign"} and standin.refused == []
    text = ding.body["markdown"]["text"]
    assert (
        ding.body["msgtype"] == "markdown"
        and ding.body["markdown"]["title"] == f"【码上监督】一级督办：{ref}"
    )
    for expected in ("一级督办", ref, "东关村", "答复期限：2026-11-23（已超期）", f"/staff/cases/{ref}"):
        assert expected in text, expected
    content = wecom.body["markdown"]["content"]
    assert "二级督办" in content and ref in content and f"http://127.0.0.1:8000/staff/cases/{ref}" in content
    assert_no_reporter_data(standin)
    assert [(r.kind, r.status, r.attempts) for r in robot_rows()] == [("escalated", "delivered", 1)] * 2


def test_a_review_request_reaches_the_reviewing_bodys_group(app, village, standin):
    robot(JW, "wecom", "jw-key", standin)
    robot("demo-county", "wecom", "county-key", standin)  # not the reviewing body: told nothing
    with time_machine.travel(at(2026, 11, 2), tick=False):
        ref = real_name_case(village)
        transfer_to_village(ref)
        act(ref, "v-handler", "feedback", text=f"已核实，{REPORTER_NAMES[0]}反映的问题已整改。")
        deliver_all(app)
    (post,) = standin.posts
    assert post.credential == "jw-key"
    content = post.body["markdown"]["content"]
    for expected in ("答复待审核", ref, "东关村", "答复期限：2026-11-23", f"/staff/cases/{ref}"):
        assert expected in content, expected
    assert_no_reporter_data(standin)
    assert REPORTER_NAMES[0] not in post.raw and "整改" not in post.raw  # nor the answer's text


def test_a_disabled_robot_is_not_told_and_one_disabled_after_queueing_posts_nothing(app, village, standin):
    off = robot(JW, "wecom", "jw-key", standin)
    off.enabled = False
    db.session.commit()
    with time_machine.travel(at(2026, 11, 2), tick=False):
        ref = real_name_case(village)
        transfer_to_village(ref)
        act(ref, "v-handler", "feedback", text="已整改。")
    assert robot_rows() == []
    case = db.session.scalar(select(Case).where(Case.tracking_no == ref))
    on = robot(JW, "dingtalk", "jw-token", standin)
    services.queue_for_org(db.session, kind="review_requested", case=case, org_id=on.org_id)
    on.enabled = False
    db.session.commit()
    (row,) = robot_rows()
    assert outbox.deliver(db.session, row.id, default_channels()) == "delivered"
    assert standin.posts == []


# -- the providers' answers ------------------------------------------------------------------------


def _queued_test(added: OrgRobot) -> int:
    services.queue_test(db.session, added)
    db.session.commit()
    return robot_rows()[-1].id


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        ("dingtalk", (200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})),
        ("wecom", (200, {"errcode": 45009, "errmsg": "api freq out of limit"})),
        ("wecom", (502, {"errmsg": "bad gateway"})),
    ],
    ids=["dingtalk-rate-limit", "wecom-rate-limit", "http-502"],
)
def test_a_rate_limit_is_retried_then_delivered(app, demo, standin, kind, answer):
    added = robot(JW, kind, "good", standin, DING_SECRET if kind == "dingtalk" else None)
    message_id = _queued_test(added)
    standin.script.append(answer)
    with pytest.raises(RobotError):
        outbox.deliver(db.session, message_id, default_channels())
    row = db.session.get(OutboxMessage, message_id)
    assert (row.status, row.attempts) == ("pending", 1) and "good" not in row.last_error
    assert outbox.deliver(db.session, message_id, default_channels()) == "delivered"
    (post,) = standin.posts
    assert "测试消息" in post.raw and "码上监督" in post.raw


@pytest.mark.parametrize(
    ("kind", "stored", "known"),
    [("dingtalk", DING_SECRET, "SEC" + "f" * 64), ("wecom", None, None)],
    ids=["dingtalk-bad-sign", "wecom-bad-key"],
)
def test_a_bad_signature_or_key_is_a_dead_letter_at_once(app, demo, standin, kind, stored, known):
    added = robot(JW, kind, "good", standin, stored)
    if kind == "dingtalk":
        standin.dingtalk["good"] = known  # the group's secret was changed: ours no longer signs right
    else:
        standin.wecom.clear()  # the robot was removed from the group: its key is invalid
    message_id = _queued_test(added)
    assert outbox.deliver(db.session, message_id, default_channels()) == "dead"
    row = db.session.get(OutboxMessage, message_id)
    assert (row.status, row.attempts) == ("dead", 1)
    assert ("310000" if kind == "dingtalk" else "93000") in row.last_error and "good" not in row.last_error
    assert standin.refused == [(kind, 310000 if kind == "dingtalk" else 93000)] and standin.posts == []


def test_the_standin_refuses_a_timestamp_over_an_hour_old(app, demo, standin):
    """The signature is recomputed by the stand-in with its own code, and dated: a clock two hours
    slow signs correctly but too late, which DingTalk refuses (310000: a dead letter)."""
    added = robot(JW, "dingtalk", "good", standin, DING_SECRET)
    message_id = _queued_test(added)
    slow = RobotChannel(
        identity_box(), app.config["BASE_URL"], parse_hosts("127.0.0.1"), clock=lambda: time.time() - 7200
    )
    assert outbox.deliver(db.session, message_id, {"robot": slow}) == "dead"
    assert standin.refused == [("dingtalk", 310000)]


def test_dingtalk_signature_matches_the_documented_example():
    """The sign is urlencoded base64 of HMAC-SHA256 over "timestamp\\nsecret" (the documented
    Python sample computes the same): '+', '/' and '=' are escaped in the query."""
    import base64
    import hashlib
    import hmac
    from urllib.parse import parse_qs, quote_plus, urlsplit

    secret, timestamp = DING_SECRET, 1700000000000
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    assert dingtalk_sign(secret, timestamp) == base64.b64encode(digest).decode()
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=t", secret, timestamp)
    assert url.endswith(f"&timestamp={timestamp}&sign={quote_plus(base64.b64encode(digest).decode())}")
    assert parse_qs(urlsplit(url).query)["sign"] == [base64.b64encode(digest).decode()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_nothing_listening_is_retried_but_a_lost_answer_is_never_resent(app, demo, standin):
    """Refused before the request went out: retried. Sent, then the connection dropped with no
    answer: the group may have it, so the row becomes `unknown` for an admin (at most once)."""
    added = robot(JW, "wecom", "good", standin)
    port = _free_port()
    added.webhook_enc = identity_box().seal(f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=good")
    db.session.commit()
    message_id = _queued_test(added)
    with pytest.raises(RobotError):
        outbox.deliver(db.session, message_id, default_channels())
    assert db.session.get(OutboxMessage, message_id).status == "pending"

    listener = socket.socket()
    listener.bind(("127.0.0.1", port))
    listener.listen(1)

    def swallow() -> None:  # reads the whole request, then hangs up without answering
        conn, _ = listener.accept()
        conn.settimeout(5)
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    try:
        assert outbox.deliver(db.session, message_id, default_channels()) == "unknown"
    finally:
        thread.join(5)
        listener.close()
    row = db.session.get(OutboxMessage, message_id)
    assert row.status == "unknown" and "may have been posted" in row.last_error


# -- webhook addresses: no requests into the intranet ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("dingtalk", "http://oapi.dingtalk.com/robot/send?access_token=t"),  # not https
        ("dingtalk", "https://oapi.dingtalk.com/other?access_token=t"),  # not the robot path
        ("dingtalk", "https://oapi.dingtalk.com/robot/send"),  # no token
        ("wecom", "https://qyapi.weixin.qq.com:8443/cgi-bin/webhook/send?key=k"),  # another port
        ("wecom", "https://10.0.0.5/cgi-bin/webhook/send?key=k"),  # the intranet
        ("wecom", "https://qyapi.weixin.qq.com.evil.example/cgi-bin/webhook/send?key=k"),
        ("wecom", "https://user@qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"),
        ("wecom", "https://oapi.dingtalk.com/robot/send?access_token=t"),  # the other provider's
        ("wecom", "file:///etc/passwd"),
    ],
)
def test_only_the_providers_https_webhooks_are_accepted(kind, url):
    with pytest.raises(RobotRefused):
        check_webhook(kind, url, frozenset())


def test_listed_hosts_are_accepted_and_a_delisted_one_is_never_called(app, demo, standin):
    assert check_webhook("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", frozenset())
    assert check_webhook("wecom", "http://robots.gov.internal/x?key=k", parse_hosts("robots.gov.internal"))
    added = robot(JW, "wecom", "good", standin)
    message_id = _queued_test(added)
    app.config["ROBOT_WEBHOOK_HOSTS"] = ""  # the operator withdrew the stand-in's host
    assert outbox.deliver(db.session, message_id, default_channels()) == "dead"
    assert standin.posts == [] and standin.refused == []


def test_start_up_refuses_a_url_in_robot_webhook_hosts():
    with pytest.raises(ConfigError) as refused:
        load_config({"ROBOT_WEBHOOK_HOSTS": "gw.example.org https://gw.example.org/robot"})
    assert [p for p in refused.value.problems if p.startswith("ROBOT_WEBHOOK_HOSTS")]
    assert load_config({"ROBOT_WEBHOOK_HOSTS": "gw.example.org, 10.1.2.3"})["ROBOT_WEBHOOK_HOSTS"]


# -- the admin page ---------------------------------------------------------------------------------


@pytest.fixture
def admin_post(client, demo, standin):
    token = login(client, "demo-admin")

    def post(url, **data):
        return client.post(url, data={"csrf_token": token, **data})

    return post


def test_admin_adds_tests_changes_and_removes_a_robot_audited_without_its_keys(
    app, client, admin_post, standin
):
    jw = get_org_by_code(db.session, JW)
    page = f"/staff/admin/orgs/{jw.id}/robots"
    assert "群机器人" in client.get(page).get_data(as_text=True)
    assert f'href="{page}"' in client.get("/staff/admin/orgs").get_data(as_text=True)
    url = standin.url("dingtalk", "tok-1234-wxyz")
    standin.dingtalk["tok-1234-wxyz"] = DING_SECRET

    refused = admin_post(
        page, kind="dingtalk", name="督办工作群", webhook="https://10.0.0.5/robot/send?access_token=x"
    )
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "ROBOT_WEBHOOK_HOSTS" in body and 'value="督办工作群"' in body
    assert (
        admin_post(page, kind="dingtalk", name="督办工作群", webhook=url, secret="not-a-secret").status_code
        == 422
    )
    assert db.session.scalars(select(OrgRobot)).all() == []

    response = admin_post(
        page, kind="dingtalk", name="督办工作群", webhook=url, secret=DING_SECRET, enabled="1"
    )
    assert response.status_code == 302
    added = db.session.scalar(select(OrgRobot))
    assert (added.org_id, added.kind, added.hint, added.enabled) == (jw.id, "dingtalk", "wxyz", True)
    assert b"tok-1234" not in added.webhook_enc and DING_SECRET.encode() not in added.secret_enc
    shown = client.get(page).get_data(as_text=True)
    assert "…wxyz" in shown and "tok-1234" not in shown and DING_SECRET not in shown

    bad_edit = admin_post(
        f"/staff/admin/robots/{added.id}", name="改名", webhook="http://127.0.0.1:1/x", secret=""
    )
    assert bad_edit.status_code == 422 and 'value="改名"' in bad_edit.get_data(as_text=True)
    assert admin_post(f"/staff/admin/robots/{added.id}/test").status_code == 302
    (row,) = robot_rows()
    assert (row.kind, row.payload["robot_id"]) == ("robot_test", added.id)
    deliver_all(app)
    assert [p.credential for p in standin.posts] == ["tok-1234-wxyz"] and "sign" in standin.posts[0].query

    assert (
        admin_post(f"/staff/admin/robots/{added.id}", name="督办群", webhook="", secret="").status_code == 302
    )
    db.session.expire_all()
    assert (added.name, added.enabled, added.hint) == ("督办群", False, "wxyz")  # unchecked: disabled
    assert admin_post(f"/staff/admin/robots/{added.id}/remove").status_code == 302
    assert db.session.scalars(select(OrgRobot)).all() == []

    audited = {what: changes(what) for what in ("robot.add", "robot.test", "robot.change", "robot.remove")}
    assert [len(rows) for rows in audited.values()] == [1, 1, 1, 1]
    assert audited["robot.change"][0].detail["changed"] == ["name", "enabled"]
    for rows in audited.values():
        assert rows[0].detail["org"] == JW and rows[0].detail["robot_id"] == added.id
        assert "tok-1234" not in str(rows[0].detail) and DING_SECRET not in str(rows[0].detail)


def test_robots_are_for_bodies_and_within_the_admins_subtree_only(app, client, demo, standin):
    jw = get_org_by_code(db.session, JW)
    mine = robot(JW, "wecom", "jw-key", standin)
    town2_jw = get_org_by_code(db.session, "demo-town-2-jw")
    town1 = get_org_by_code(db.session, "demo-town-1")  # the township government: a unit above 城关镇纪委
    create_user(db.session, username="jw2-admin", org=town2_jw, role="admin", password="demo-password")
    create_user(db.session, username="town1-admin", org=town1, role="admin", password="demo-password")
    db.session.commit()
    for username in ("jw2-admin", "town1-admin"):
        client.get("/staff/logout")
        token = login(client, username)
        assert client.get(f"/staff/admin/orgs/{jw.id}/robots").status_code == 404, username
        for path in ("", "/test", "/remove"):
            response = client.post(
                f"/staff/admin/robots/{mine.id}{path}", data={"csrf_token": token, "name": "x"}
            )
            assert response.status_code == 404, (username, path)
        added = client.post(
            f"/staff/admin/orgs/{jw.id}/robots",
            data={"csrf_token": token, "kind": "wecom", "name": "x", "webhook": standin.url("wecom", "k")},
        )
        assert added.status_code == 404
    # A unit's own page: no robots (its group could include the people complained about).
    refused = client.post(
        f"/staff/admin/orgs/{town1.id}/robots",
        data={"csrf_token": token, "kind": "wecom", "name": "x", "webhook": standin.url("wecom", "k")},
    )
    assert refused.status_code == 422 and "只有纪检监察机构" in refused.get_data(as_text=True)
    assert db.session.scalars(select(OrgRobot.id)).all() == [mine.id] and robot_rows() == []
    assert not changes("robot.add") and not changes("robot.test") and not changes("robot.remove")


def test_a_post_without_csrf_token_is_refused(app, client, demo, standin):
    jw = get_org_by_code(db.session, JW)
    login(client, "demo-admin")
    response = client.post(
        f"/staff/admin/orgs/{jw.id}/robots",
        data={"kind": "wecom", "name": "x", "webhook": standin.url("wecom", "k")},
    )
    assert response.status_code == 400 and db.session.scalars(select(OrgRobot)).all() == []
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "admin_change")).all() == []
