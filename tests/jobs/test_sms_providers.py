"""Issue 18, part 1: SMS through Alibaba Cloud and Tencent Cloud, end to end through the outbox to
a local stand-in for each provider that checks the request signature (tests/sms_standins.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from supervise.cases import services, workflow
from supervise.cases.models import Case
from supervise.cases.services import identity_box
from supervise.cases.workflow import Actor
from supervise.extensions import db
from supervise.notify import outbox, sms
from supervise.notify.channels import default_channels
from supervise.notify.models import OutboxMessage
from supervise.settings import set_value
from supervise.staff.models import User
from tests.sms_standins import AliyunStandIn, TencentStandIn

PHONE = "13812345678"  # one of tests/conftest.py REPORTER_PHONES: the log check proves it never leaks
ALIYUN_TEMPLATES = (
    "case_accepted=SMS_100001:tracking_no,token;case_rejected=SMS_100002:tracking_no,token;"
    "feedback_published=SMS_100003:tracking_no,token;citizen_message=SMS_100004:tracking_no,token;"
    "phone_code=SMS_100005:code,minutes"
)
TENCENT_TEMPLATES = (
    "case_accepted=200001:tracking_no,days,token;case_rejected=200002:tracking_no,token;"
    "feedback_published=200003:tracking_no,token;citizen_message=200004:tracking_no,token;"
    "phone_code=200005:code,minutes"
)


@pytest.fixture(params=["aliyun", "tencent"])
def provider(request, app, demo):
    """The app configured for one provider, with its stand-in running."""
    standin = AliyunStandIn() if request.param == "aliyun" else TencentStandIn()
    with standin:
        app.config.update(SMS_GATEWAY=request.param, SMS_SIGN_NAME="码上监督", SMS_ENDPOINT=standin.endpoint)
        app.config.update(SMS_READ_TIMEOUT="1", SMS_PHONE_MINUTE_LIMIT="100/minute")
        if request.param == "aliyun":
            app.config.update(
                SMS_ACCESS_KEY_ID=standin.KEY_ID,
                SMS_ACCESS_KEY_SECRET=standin.SECRET,
                SMS_TEMPLATES=ALIYUN_TEMPLATES,
            )
        else:
            app.config.update(
                SMS_SECRET_ID=standin.SECRET_ID,
                SMS_SECRET_KEY=standin.SECRET_KEY,
                SMS_SDK_APP_ID="1400000001",
                SMS_TEMPLATES=TENCENT_TEMPLATES,
            )
        assert sms.config_problems(app.config) == []
        yield request.param, standin
        assert standin.rejected_signatures == 0


def accepted_case(submit) -> tuple[Case, OutboxMessage]:
    """A complaint with a mobile number, accepted by the county's intake: its 受理告知 SMS row."""
    tracking_no = submit()["tracking_no"]
    case = db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))
    case.reporter_phone_enc = identity_box().seal(PHONE)
    db.session.commit()
    intake = db.session.scalar(select(User).where(User.username == "demo-intake"))
    workflow.accept(services.make_context(), case, Actor.staff(intake), version=case.version)
    db.session.commit()
    row = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.case_id == case.id, OutboxMessage.channel == "sms")
    )
    assert row.kind == "case_accepted" and row.status == "pending"
    return case, row


def deliver(row_id: int) -> str:
    try:
        return outbox.deliver(db.session, row_id, default_channels(), worker="w")
    except Exception as exc:  # a failed attempt raises so RQ's Retry backs off
        return f"failed: {exc}"


def fresh(row_id: int) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, row_id)


def test_a_case_accepted_reaches_the_provider_signed_with_its_template_and_receipt(provider, submit):
    name, standin = provider
    case, row = accepted_case(submit)
    assert deliver(row.id) == "delivered"
    [sent] = standin.sent
    if name == "aliyun":
        assert (sent["PhoneNumbers"], sent["SignName"], sent["TemplateCode"]) == (
            PHONE,
            "码上监督",
            "SMS_100001",
        )
        assert sent["TemplateParam"]["tracking_no"] == case.tracking_no
        token = sent["TemplateParam"]["token"]
        assert sent["OutId"] == f"outbox-{row.id}"
        provider_id = sent["BizId"]
    else:
        assert sent["PhoneNumberSet"] == [f"+86{PHONE}"]
        assert (sent["SignName"], sent["TemplateId"], sent["SmsSdkAppId"]) == (
            "码上监督",
            "200001",
            "1400000001",
        )
        tracking_no, days, token = sent["TemplateParamSet"]  # in the template's order
        assert (tracking_no, days) == (case.tracking_no, "7")
        assert sent["SessionContext"] == f"outbox-{row.id}"
        provider_id = sent["SerialNo"]
    assert len(token) == 32  # the template holds the address; the token fits Aliyun's 35
    from supervise.intake import links

    assert links.link_is_live(token)
    row = fresh(row.id)
    assert (row.status, row.provider, row.provider_id) == ("delivered", name, provider_id)
    assert (row.receipt_phone_enc is not None) == (name == "aliyun")  # Aliyun's query needs the number

    from workers.jobs import collect_sms_receipts

    assert collect_sms_receipts() == 1
    row = fresh(row.id)
    assert (row.receipt_status, row.receipt_phone_enc) == ("delivered", None)
    assert row.receipt_code in ("DELIVERED", "用户短信送达成功") and row.receipt_at is not None
    assert collect_sms_receipts() == 0  # idempotent: nothing recorded twice

    # The admin's outbox page shows the provider id and the receipt.
    page = admin_page()
    assert provider_id in page and "已送达" in page


def admin_page() -> str:
    from flask import current_app

    from tests.web.test_admin import login

    client = current_app.test_client()
    login(client, "demo-admin")
    response = client.get("/staff/admin/outbox")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_settings_page_checks_templates_as_the_provider_will_send_them(provider, client):
    from tests.web.test_admin import login

    name, _standin = provider
    token = login(client, "demo-admin")
    key = sms.setting_key("phone_code")
    page = client.get("/staff/admin/settings").get_data(as_text=True)
    assert "短信模板" in page and key in page
    good = "SMS_100077:code,minutes" if name == "aliyun" else "200077:code,minutes"
    bad = "SMS_100077:code,link" if name == "aliyun" else "SMS_1:code"
    refused = client.post("/staff/admin/settings/sms", data={"csrf_token": token, key: bad})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert ("不可用" if name == "aliyun" else "格式不对") in html and bad in html  # what was typed stays
    saved = client.post("/staff/admin/settings/sms", data={"csrf_token": token, key: good})
    assert saved.status_code == 302
    from flask import current_app

    assert sms.templates_for(current_app.config)["phone_code"].spec() == good


def test_a_throttled_send_retries_then_succeeds(provider, submit):
    name, standin = provider
    _case, row = accepted_case(submit)
    standin.script.append("throttle")
    assert deliver(row.id).startswith("failed")
    row = fresh(row.id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert ("BUSINESS_LIMIT_CONTROL" if name == "aliyun" else "ThirtySecondLimit") in row.last_error
    assert deliver(row.id) == "delivered"
    assert len(standin.sent) == 1 and fresh(row.id).provider_id


def test_a_permanent_error_dead_letters_at_once(provider, submit):
    name, standin = provider
    _case, row = accepted_case(submit)
    standin.script.append("permanent")
    assert deliver(row.id) == "dead"
    row = fresh(row.id)
    assert (row.status, row.attempts) == ("dead", 1)
    assert ("MOBILE_NUMBER_ILLEGAL" if name == "aliyun" else "PhoneNumberInBlacklist") in row.last_error
    assert standin.sent == []


def test_a_timeout_after_sending_is_not_resent(provider, submit):
    """At most once: the request went out and no answer came in time: `unknown`, for an admin."""
    _name, standin = provider
    _case, row = accepted_case(submit)
    standin.script.append("hang")
    assert deliver(row.id) == "unknown"
    assert fresh(row.id).status == "unknown"
    assert deliver(row.id) == "skipped"  # a job running again sends nothing


def test_caps_per_number(provider, submit, app):
    _name, standin = provider
    app.config.update(SMS_PHONE_MINUTE_LIMIT="1/minute", SMS_PHONE_DAY_LIMIT="2/day")
    _case, first = accepted_case(submit)
    assert deliver(first.id) == "delivered"
    _case, second = accepted_case(submit)
    assert deliver(second.id).startswith("failed")  # over the minute: retried later
    assert fresh(second.id).status == "pending"
    from supervise.queueing import redis_connection

    keys = [k.decode() for k in redis_connection().keys("supervise:budget:sms-*")]
    assert keys and not any(PHONE in k for k in keys)  # a keyed hash, never the number
    for key in redis_connection().keys("supervise:budget:sms-minute:*"):
        redis_connection().delete(key)  # the minute has passed
    assert deliver(second.id) == "delivered"
    for key in redis_connection().keys("supervise:budget:sms-minute:*"):
        redis_connection().delete(key)
    _case, third = accepted_case(submit)
    assert deliver(third.id) == "dead"
    assert "已达每日上限" in fresh(third.id).last_error
    assert len(standin.sent) == 2


def test_a_parameter_that_cannot_fit_dead_letters_with_the_reason(provider, submit):
    name, standin = provider
    _case, row = accepted_case(submit)
    kind_key = sms.setting_key("case_accepted")
    # A template naming a parameter absent from its kind is refused at save; one that names the
    # kind's parameters but is missing from the env entirely dead-letters clearly.
    templates = ALIYUN_TEMPLATES if name == "aliyun" else TENCENT_TEMPLATES
    from flask import current_app

    current_app.config["SMS_TEMPLATES"] = ";".join(
        t for t in templates.split(";") if not t.startswith("case_accepted=")
    )
    assert deliver(row.id) == "dead"
    assert "未配置模板" in fresh(row.id).last_error
    assert standin.sent == []
    # The admin's setting (系统设置 → 短信模板) overrides the env per kind.
    set_value(kind_key, "SMS_100009:tracking_no" if name == "aliyun" else "200009:tracking_no")
    db.session.commit()
    assert sms.templates_for(current_app.config)["case_accepted"].params == ("tracking_no",)


def test_provider_variable_limits():
    assert sms.value_problem("aliyun", "token", "x" * 32) is None
    assert "35" in sms.value_problem("aliyun", "token", "x" * 43)
    assert "6" in sms.value_problem("tencent", "code", "1234567")
    with pytest.raises(ValueError, match="不可用"):
        sms.parse_template("case_accepted", "SMS_1:link", "aliyun")  # a link is never a variable
    with pytest.raises(ValueError, match="格式不对"):
        sms.parse_template("case_accepted", "SMS_1:tracking_no", "tencent")  # Tencent ids are numbers
