"""Verified phones (issue 18): a real-name report is real-name only with the number's SMS code.

Real Redis and the real database throughout; the code is read from the SMS the delivery job
would send (the registered `phone_code` source), never from the table (it holds no code).
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from supervise.cases.models import Case
from supervise.dbtypes import utcnow
from supervise.deadlines.models import CaseClock, ClockKind
from supervise.extensions import db
from supervise.intake import verification
from supervise.intake.verification import PhoneVerification
from supervise.notify.channels import SMS_SOURCES
from supervise.notify.models import OutboxMessage
from tests.conftest import ISSUED_ACCESS_CODES, VALID_SUBMISSION, issue_phone_code

NAME, PHONE = "张三", "13812345678"
OTHER_NAME, OTHER_PHONE = "李四", "13900001111"
HERE = {"REMOTE_ADDR": "10.30.0.1"}
FORM = {
    "category": "petty_corruption",
    "subject": "城关镇便民服务中心窗口",
    "content": "办理低保材料时窗口人员暗示要请吃饭才给盖章。",
    "consent": "yes",
}


def request_code(client, phone=PHONE, environ=HERE):
    return client.post("/api/v1/phone-codes", json={"phone": phone}, environ_base=environ)


def sms_for(row_id: int):
    """The SMS the delivery job would send for the code row (None: nothing to send)."""
    message = db.session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.kind == "phone_code",
            OutboxMessage.payload["verification_id"].as_integer() == row_id,
        )
    )
    assert message is not None and message.channel == "sms"
    return SMS_SOURCES["phone_code"](db.session, message)


def newest_row(phone=PHONE) -> PhoneVerification:
    db.session.expire_all()
    return db.session.scalar(
        select(PhoneVerification)
        .where(PhoneVerification.phone_hash == verification.phone_hash(phone))
        .order_by(PhoneVerification.id.desc())
    )


def code_by_api(client, phone=PHONE) -> str:
    assert request_code(client, phone).status_code == 202
    return sms_for(newest_row(phone).id).params["code"]


def submit_api(client, **fields):
    response = client.post("/api/v1/cases", json={**VALID_SUBMISSION, "name": NAME, "phone": PHONE, **fields})
    if response.status_code == 201:
        ISSUED_ACCESS_CODES.append(response.get_json()["access_code"])
    return response


def stored(tracking_no: str) -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))


def assert_anonymous(case: Case) -> None:
    """Nothing of the unverified identity kept: not sealed, not hashed, no priority, no 告知 clock."""
    assert case.real_name is False and case.priority == 1
    assert case.reporter_name_enc is None and case.reporter_phone_enc is None and case.reporter_hash is None
    kinds = set(db.session.scalars(select(CaseClock.kind).where(CaseClock.case_id == case.id)))
    assert ClockKind.ACK not in kinds and ClockKind.ACK.value not in kinds


# -- the code and its SMS ----------------------------------------------------------------------


def test_right_code_makes_a_real_name_case_and_is_spent_with_it(client, demo):
    response = request_code(client)
    assert response.status_code == 202
    assert response.get_json() == {"phone": "138****5678", "valid_minutes": 5, "resend_after": 60}
    row = newest_row()
    # The number sealed and hashed, no code in any column.
    assert PHONE.encode() not in row.phone_enc and row.phone_hash != PHONE
    sms = sms_for(row.id)
    assert sms.phone == PHONE and sms.kind == "phone_code"
    code = sms.params["code"]
    assert re.fullmatch(r"[0-9]{6}", code) and sms.params["minutes"] == "5"
    assert f"验证码为{code}，5分钟内有效" in sms.text
    columns = {c.name: getattr(row, c.name) for c in PhoneVerification.__table__.columns}
    assert not any(code in str(v) for v in columns.values())

    answer = submit_api(client, phone_code=code)
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["real_name"] is True and body["real_name_note"] is None
    case = stored(body["tracking_no"])
    assert case.real_name and case.priority == 0 and case.reporter_hash
    assert newest_row().used_at is not None
    # Used: a late delivery sends nothing, and the code makes no second real-name case.
    assert sms_for(row.id) is None
    again = submit_api(client, phone_code=code, subject="另一件事的反映对象")
    assert again.get_json()["real_name"] is False
    assert "验证码已使用过" in again.get_json()["real_name_note"]


def test_the_code_row_and_its_sms_commit_together(app, demo):
    """create_code writes the row and the outbox message in the caller's transaction: a rollback
    leaves neither, a commit both."""
    verification.create_code(db.session, PHONE)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(PhoneVerification)) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    row = verification.create_code(db.session, PHONE)
    db.session.commit()
    messages = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "phone_code")))
    assert [m.payload for m in messages] == [{"verification_id": row.id}]  # an id only, no number, no code
    assert messages[0].case_id is None


def test_a_new_code_voids_the_earlier_one(client, demo):
    first = code_by_api(client)
    first_row = newest_row().id
    with time_machine.travel(utcnow() + timedelta(seconds=61), tick=False):
        second = code_by_api(client)
        assert sms_for(first_row) is None  # its SMS, if still queued, is not sent
        if first != second:
            wrong = submit_api(client, phone_code=first)
            assert wrong.status_code == 422
        assert submit_api(client, phone_code=second).get_json()["real_name"] is True


def test_full_width_digits_are_the_same_code(client, demo):
    code = code_by_api(client)
    wide = "".join(chr(ord(d) + 0xFEE0) for d in code)
    assert submit_api(client, phone_code=f" {wide[:3]} {wide[3:]} ").get_json()["real_name"] is True


# -- wrong, burnt, expired, none ---------------------------------------------------------------


def test_five_wrong_codes_burn_it_and_the_case_is_then_anonymous(client, demo):
    code = code_by_api(client)
    wrong = str((int(code) + 1) % 10**6).zfill(6)
    for left in (4, 3, 2, 1):
        answer = submit_api(client, phone_code=wrong)
        assert answer.status_code == 422
        assert answer.get_json()["error"]["details"]["phone_code"] == [f"验证码不正确，还可以再试 {left} 次"]
    fifth = submit_api(client, phone_code=wrong)
    assert fifth.status_code == 422
    assert "已失效" in fifth.get_json()["error"]["details"]["phone_code"][0]
    assert newest_row().attempts == 5
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0  # nothing filed meanwhile
    # Burnt: even the right code now files the case anonymous, and says why.
    answer = submit_api(client, phone_code=code)
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["real_name"] is False and "验证码错误次数过多，已失效" in body["real_name_note"]
    assert "本件已按匿名反映受理" in body["real_name_note"]
    assert_anonymous(stored(body["tracking_no"]))


def test_an_expired_code_files_the_case_anonymous(client, demo):
    code = code_by_api(client)
    with time_machine.travel(utcnow() + timedelta(minutes=5, seconds=1), tick=False):
        answer = submit_api(client, phone_code=code)
        assert sms_for(newest_row().id) is None  # and an SMS delivered this late sends nothing
    body = answer.get_json()
    assert answer.status_code == 201 and body["real_name"] is False
    assert "验证码已过期" in body["real_name_note"]
    assert_anonymous(stored(body["tracking_no"]))


def test_four_minutes_later_the_code_still_works(client, demo):
    code = code_by_api(client)
    with time_machine.travel(utcnow() + timedelta(minutes=4, seconds=50), tick=False):
        assert submit_api(client, phone_code=code).get_json()["real_name"] is True


def test_a_real_name_case_without_a_verified_phone_is_anonymous_everywhere(client, demo, auth):
    answer = submit_api(client, name=OTHER_NAME, phone=OTHER_PHONE)
    body = answer.get_json()
    assert answer.status_code == 201 and body["real_name"] is False
    assert "您没有填写短信验证码" in body["real_name_note"]
    case = stored(body["tracking_no"])
    assert_anonymous(case)
    # Not revealed anywhere: the staff API shows no reporter, the reveal has nothing to show, no
    # SMS is queued for the case.
    detail = client.get(f"/api/v1/cases/{case.tracking_no}", headers=auth("demo-intake"))
    assert detail.status_code == 200
    text = detail.get_data(as_text=True)
    assert OTHER_NAME not in text and OTHER_PHONE not in text and "138****" not in text
    assert detail.get_json().get("reporter") in (None, {})
    sms = db.session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.channel == "sms")
    )
    assert sms == 0
    # Never requested a code for this number, but typed one: anonymous too, and why.
    typed = submit_api(client, name=OTHER_NAME, phone=OTHER_PHONE, phone_code="123456", subject="又一件")
    assert "此手机号没有获取过验证码" in typed.get_json()["real_name_note"]


def test_a_malformed_code_is_a_field_error(client, demo):
    answer = submit_api(client, phone_code="12ab")
    assert answer.status_code == 422
    assert answer.get_json()["error"]["details"] == {"phone_code": ["验证码为 6 位数字"]}


def test_staff_registration_needs_no_code(app, demo):
    """Staff took the report in person: `verify_phone=False` (registration, imports)."""
    from supervise.cases.services import submit_case

    case, code = submit_case({**VALID_SUBMISSION, "name": NAME, "phone": PHONE}, verify_phone=False)
    ISSUED_ACCESS_CODES.append(code)
    assert case.real_name


# -- caps --------------------------------------------------------------------------------------


def test_resend_caps_per_number(client, demo):
    start = utcnow()
    assert request_code(client).status_code == 202
    again = request_code(client)
    assert again.status_code == 429
    error = again.get_json()["error"]
    assert 55 <= error["details"]["retry_after"] <= 60 and again.headers["Retry-After"]
    assert re.fullmatch(r"验证码发送过于频繁，请 \d+ 秒后再获取", error["message"])
    # Another number is not held up by this one.
    assert request_code(client, OTHER_PHONE).status_code == 202
    for n in range(1, 5):  # one a minute: the 2nd to 5th within the hour
        with time_machine.travel(start + timedelta(seconds=61 * n), tick=False):
            assert request_code(client).status_code == 202
    with time_machine.travel(start + timedelta(seconds=61 * 5), tick=False):
        sixth = request_code(client)
        assert sixth.status_code == 429
        assert "分钟后再获取" in sixth.get_json()["error"]["message"]
        assert sixth.get_json()["error"]["details"]["retry_after"] > 60
    with time_machine.travel(start + timedelta(hours=1, seconds=1), tick=False):
        assert request_code(client).status_code == 202


def test_caps_per_address(client, demo):
    phones = [f"1350000{n:04d}" for n in range(21)]
    for phone in phones[:20]:
        assert request_code(client, phone).status_code == 202
    over = request_code(client, phones[20])
    assert over.status_code == 429
    assert over.get_json()["error"]["message"].startswith("从您所在网络获取验证码的次数过多")
    assert over.get_json()["error"]["details"]["retry_after"] > 0
    # Another address still may.
    assert request_code(client, phones[20], {"REMOTE_ADDR": "10.30.0.2"}).status_code == 202


def test_bad_number_is_refused(client, demo):
    answer = request_code(client, "12345")
    assert answer.status_code == 422
    assert answer.get_json()["error"]["details"]["phone"] == ["请填写 11 位手机号码"]


def test_nothing_of_the_code_or_number_in_redis_or_the_log(client, demo, caplog):
    caplog.set_level("DEBUG")
    code = code_by_api(client)
    from supervise.queueing import redis_connection

    conn = redis_connection()
    dump = b"".join(conn.dump(k) or b"" for k in conn.keys("*"))
    assert PHONE.encode() not in dump and code.encode() not in dump
    assert code not in caplog.text and PHONE not in caplog.text


# -- the web form, without JavaScript ----------------------------------------------------------


def test_form_send_code_keeps_everything_typed(client, demo):
    typed = {**FORM, "name": NAME, "phone": PHONE, "location": "城关镇", "photos": "scene.jpg"}
    page = client.post("/report/phone-code", data=typed, environ_base=HERE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "验证码已发送至 138****5678，5 分钟内有效。" in html
    for value in (FORM["subject"], FORM["content"], NAME, PHONE, "城关镇"):
        assert value in html
    assert 'id="photos-again"' in html  # the photos must be chosen again, said beside them
    assert 'action="/report"' in html  # the form still submits the report, not the code
    code = sms_for(newest_row().id).params["code"]
    done = client.post(
        "/report",
        data={**FORM, "name": NAME, "phone": PHONE, "phone_code": code},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and "提交成功" in html and "filed-anonymous" not in html
    ISSUED_ACCESS_CODES.append(re.search(r'id="access-code">([^<]+)<', html).group(1))
    number = re.search(r'id="tracking-no">([^<]+)<', html).group(1)
    assert stored(number).real_name


def test_form_send_code_too_soon_says_how_long(client, demo):
    client.post("/report/phone-code", data={**FORM, "phone": PHONE}, environ_base=HERE)
    page = client.post("/report/phone-code", data={**FORM, "phone": PHONE}, environ_base=HERE)
    html = page.get_data(as_text=True)
    assert page.status_code == 429 and "秒后再获取" in html and FORM["content"] in html
    empty = client.post("/report/phone-code", data=FORM, environ_base=HERE)
    assert empty.status_code == 422 and "请先填写手机号码，再获取验证码" in empty.get_data(as_text=True)


def test_form_send_code_by_script_answers_json(client, demo):
    xhr = {"X-Requested-With": "XMLHttpRequest"}
    answer = client.post("/report/phone-code", data={"phone": PHONE}, headers=xhr, environ_base=HERE)
    assert answer.status_code == 200
    assert answer.get_json() == {"notice": "验证码已发送至 138****5678，5 分钟内有效。", "resend_after": 60}
    again = client.post("/report/phone-code", data={"phone": PHONE}, headers=xhr, environ_base=HERE)
    assert again.status_code == 429 and again.get_json()["field"] == "phone_code"
    assert again.get_json()["resend_after"] > 0


def test_form_wrong_code_keeps_the_form_with_the_error(client, demo):
    code = code_by_api(client)
    wrong = str((int(code) + 1) % 10**6).zfill(6)
    page = client.post(
        "/report",
        data={**FORM, "name": NAME, "phone": PHONE, "phone_code": wrong, "photos": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 422 and 'id="phone_code-error"' in html and "还可以再试 4 次" in html
    assert FORM["content"] in html and wrong in html
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0


def test_form_without_code_is_filed_anonymous_and_says_so(client, demo):
    done = client.post(
        "/report",
        data={**FORM, "name": NAME, "phone": PHONE},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and 'id="filed-anonymous"' in html
    assert "您的手机号未验证（您没有填写短信验证码），本件已按匿名反映受理" in html
    assert "请保存查询编号和查询码" in html
    ISSUED_ACCESS_CODES.append(re.search(r'id="access-code">([^<]+)<', html).group(1))
    assert_anonymous(stored(re.search(r'id="tracking-no">([^<]+)<', html).group(1)))
    # A reload shows no codes and no note again.
    assert "filed-anonymous" not in client.get("/report/submitted").get_data(as_text=True)


def test_point_form_has_its_own_send_code_action(client, demo):
    from tests.web.test_citizen import point

    p = point()
    page = client.get(f"/s/{p.token}")
    assert f'formaction="/s/{p.token}/phone-code"' in page.get_data(as_text=True)
    sent = client.post(f"/s/{p.token}/phone-code", data={**FORM, "phone": PHONE}, environ_base=HERE)
    html = sent.get_data(as_text=True)
    assert sent.status_code == 200 and "验证码已发送至" in html and p.name in html
    assert f'action="/s/{p.token}"' in html
    assert client.post("/s/no-such-token/phone-code", data={"phone": PHONE}).status_code == 404


def test_issue_phone_code_helper_goes_through_the_service(app, demo):
    code = issue_phone_code(PHONE)
    assert re.fullmatch(r"[0-9]{6}", code)
    assert newest_row().used_at is None
