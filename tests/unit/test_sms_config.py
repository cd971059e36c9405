"""Issue 18: start-up refuses SMS settings that cannot send, one line each (supervise/notify/sms.py)."""

from __future__ import annotations

import pytest

from supervise.config import ConfigError, load_config
from tests.jobs.test_sms_providers import ALIYUN_TEMPLATES, TENCENT_TEMPLATES


def problems(**overrides) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load_config(overrides)
    return refused.value.problems


def test_aliyun_without_keys_sign_or_templates_is_refused_one_line_each():
    lines = problems(SMS_GATEWAY="aliyun")
    for key in ("SMS_ACCESS_KEY_ID", "SMS_ACCESS_KEY_SECRET", "SMS_SIGN_NAME"):
        assert f"{key} is not set: required with SMS_GATEWAY=aliyun" in lines
    assert any(line.startswith("SMS_TEMPLATES has no template for case_accepted") for line in lines)


def test_tencent_without_keys_is_refused_one_line_each():
    lines = problems(SMS_GATEWAY="tencent", SMS_SIGN_NAME="码上监督", SMS_TEMPLATES=TENCENT_TEMPLATES)
    assert lines == [
        "SMS_SECRET_ID is not set: required with SMS_GATEWAY=tencent",
        "SMS_SECRET_KEY is not set: required with SMS_GATEWAY=tencent",
        "SMS_SDK_APP_ID is not set: required with SMS_GATEWAY=tencent",
    ]


def test_bad_templates_placeholders_and_caps_are_refused():
    lines = problems(
        SMS_GATEWAY="aliyun",
        SMS_ACCESS_KEY_ID="LTAI5tTestKeyId",
        SMS_ACCESS_KEY_SECRET="CHANGE-ME",
        SMS_SIGN_NAME="码上监督",
        SMS_TEMPLATES=ALIYUN_TEMPLATES.replace("SMS_100001:tracking_no,token", "200001:tracking_no"),
        SMS_PHONE_DAY_LIMIT="lots",
    )
    assert "SMS_ACCESS_KEY_SECRET is a placeholder (like .env.example's CHANGE-ME)" in lines
    assert any(line.startswith("SMS_TEMPLATES: 模板编号「200001」格式不对") for line in lines)
    assert any(line.startswith("SMS_PHONE_DAY_LIMIT is not a limit") for line in lines)


def test_a_complete_aliyun_setting_starts():
    config = load_config(
        {
            "SMS_GATEWAY": "aliyun",
            "SMS_ACCESS_KEY_ID": "LTAI5tTestKeyId",
            "SMS_ACCESS_KEY_SECRET": "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1",
            "SMS_SIGN_NAME": "码上监督",
            "SMS_TEMPLATES": ALIYUN_TEMPLATES,
        }
    )
    assert config["SMS_GATEWAY"] == "aliyun"


def test_the_log_gateway_shows_a_phone_code_only_in_development(caplog):
    from supervise.notify.sms import SMS_TEXTS, LoggingSmsGateway

    text = SMS_TEXTS["phone_code"].format(code="482913", minutes="5")
    caplog.set_level("INFO", logger="supervise.notify.sms")
    LoggingSmsGateway(show_codes=False).send("13812345678", text)
    assert "482913" not in caplog.text and "验证码为******" in caplog.text
    assert "13812345678" not in caplog.text
    caplog.clear()
    LoggingSmsGateway(show_codes=True).send("13812345678", text)
    assert "482913" in caplog.text
