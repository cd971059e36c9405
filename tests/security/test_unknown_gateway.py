"""Issue 12, item 10: an unknown SMS_GATEWAY no longer stops every delivery; SMS messages go to
the dead letters, in-app and e-mail keep going. (Start-up refuses the setting: test_secrets.)"""

from __future__ import annotations

from sqlalchemy import select

from supervise.extensions import db
from supervise.notify import outbox
from supervise.notify.channels import default_channels
from supervise.notify.models import OutboxMessage
from tests.conftest import ISSUED_ACCESS_CODES, VALID_SUBMISSION, verified


def test_an_unknown_gateway_fails_only_sms_and_dead_letters_it(app, client, demo):
    app.config["SMS_GATEWAY"] = "huawei"  # before this fix: KeyError for every channel
    body = client.post(
        "/api/v1/cases", json=verified({**VALID_SUBMISSION, "name": "张三", "phone": "13812345678"})
    ).get_json()
    ISSUED_ACCESS_CODES.append(body["access_code"])
    inapp = db.session.scalar(select(OutboxMessage).where(OutboxMessage.channel == "inapp"))
    assert outbox.deliver(db.session, inapp.id, default_channels()) == "delivered"
    sms = outbox.queue_message(db.session, kind="case_accepted", channel="sms", case=inapp.case)
    db.session.commit()
    results = []
    for _ in range(outbox.MAX_ATTEMPTS):
        try:
            results.append(outbox.deliver(db.session, sms.id, default_channels()))
        except RuntimeError as exc:  # a failed attempt raises so RQ retries it
            assert "unknown SMS_GATEWAY 'huawei'" in str(exc)
            results.append("failed")
    db.session.expire_all()
    assert results[-1] == "dead" and db.session.get(OutboxMessage, sms.id).status == "dead"


def test_start_up_refuses_an_unknown_gateway_in_one_line():
    import pytest

    from supervise.config import ConfigError, load_config, validate_config

    with pytest.raises(ConfigError) as refused:
        validate_config(load_config({"SMS_GATEWAY": "huawei"}))
    assert "SMS_GATEWAY must be one of aliyun, log, tencent, not 'huawei'" in str(refused.value)
