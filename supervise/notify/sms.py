"""SMS to citizens: what each message kind says, and the gateways that send it.

`SMS_GATEWAY=log` (development) writes a masked line; `aliyun` and `tencent` send through Alibaba
Cloud SMS and Tencent Cloud SMS with their official SDKs. Chinese providers send only a registered
signature (签名) and pre-approved templates with parameters, never free text: each message kind
maps to a template id and an ORDERED list of parameter names (`SmsTemplate`), from SMS_TEMPLATES
(env) overridden per kind by 系统设置 → 短信模板.

The one-time case link: both providers refuse a link as a template variable, and a whole URL would
not fit a variable anyway (Aliyun: 35 characters). So the approved template holds the fixed address
and the variable holds only the token: "…查看：https://jd.example.gov.cn/t/${token}" — `token` is
32 characters (24 random bytes, 192 bits). The log gateway keeps rendering the whole text.

Delivery through the outbox (notify/outbox.py): the row is claimed before the provider is called;
an error the provider documents as permanent (bad number, template or signature not approved,
blacklist, no balance, bad keys), a parameter that cannot fit, or the daily cap per number raise
`PermanentFailure` (dead at once, with the reason); throttling, a connection that never opened or
a provider's internal error raise plainly (retried with backoff); a timeout after the request went
out raises `OutcomeUnknown` (never re-sent by itself: an admin decides). The provider's message id
is recorded on the row, and the receipt job (`collect_receipts`, on the cron) records the 回执.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from supervise.dbtypes import utcnow
from supervise.i18n import N_
from supervise.notify.models import OutboxMessage
from supervise.notify.outbox import OutcomeUnknown, PermanentFailure

log = logging.getLogger(__name__)
# Tencent's SDK logs every request and answer whole at DEBUG (the number, the link's token): never
# let it, whatever LOG_LEVEL says. (urllib3, which would log Aliyun's URL and so its query string
# with the number, is held at INFO by supervise/logs.py QUIET_LOGGERS.)
logging.getLogger("tencentcloud_sdk_common").setLevel(logging.WARNING)

SMS_TEXTS = {
    # No case content in an SMS: only that there is news, and a one-time link to look (LINK below).
    "citizen_message": "【码上监督】您反映的问题（{tracking_no}）有新的留言。{link}",
    "case_accepted": "【码上监督】您反映的问题（{tracking_no}）已受理，我们将在规定期限内答复。{link}",
    "case_rejected": "【码上监督】您反映的问题（{tracking_no}）经审查不予受理，理由请查看。{link}",
    "feedback_published": "【码上监督】您反映的问题（{tracking_no}）已有答复，请查看并评价。{link}",
    # The one-time code of a real-name report (supervise/intake/verification.py).
    "phone_code": "【码上监督】您的验证码为{code}，{minutes}分钟内有效。如非本人操作，请忽略本短信。",
}
# The link opens the case without retyping both codes (supervise/intake/links.py): single use,
# expiring; the access code itself is never in it.
LINK = "查看：{url} （{days}天内有效，仅可使用一次；也可凭查询编号和查询码查询）"
# Random bytes of an SMS link's token: 32 characters, within Aliyun's 35 (module docstring).
LINK_TOKEN_BYTES = 24

CASE_PARAMS = ("tracking_no", "token", "days", "link")
# What each kind offers a template (`link` is the whole rendered line: the log gateway's only).
KIND_PARAMS: dict[str, tuple[str, ...]] = {
    "case_accepted": CASE_PARAMS,
    "case_rejected": CASE_PARAMS,
    "feedback_published": CASE_PARAMS,
    "citizen_message": CASE_PARAMS,
    "phone_code": ("code", "minutes"),
}
KIND_LABELS = {
    "case_accepted": N_("受理告知"),
    "case_rejected": N_("不予受理告知"),
    "feedback_published": N_("答复发布告知"),
    "citizen_message": N_("新留言提醒"),
    "phone_code": N_("手机验证码"),
}
# Verification-code variables: the providers' code templates take digits only, and few of them.
CODE_PARAMS = frozenset({"code"})


@dataclass(frozen=True)
class SmsContent:
    """One SMS to send: the number (decrypted at sending time only) and the message kind's
    parameters. Chinese providers send pre-approved templates with parameters, never free text:
    a gateway maps `kind` to its template and passes `params`; the log gateway renders
    SMS_TEXTS[kind] with them."""

    phone: str
    kind: str
    params: dict[str, str]

    @property
    def text(self) -> str:
        return SMS_TEXTS[self.kind].format(**self.params)


# kind → function(session, message) -> SmsContent | None (None: nothing to send). The case kinds
# are built in; other modules register theirs (`sms_source`), e.g. the phone verification code.
SmsSource = Callable[[Session, OutboxMessage], "SmsContent | None"]
SMS_SOURCES: dict[str, SmsSource] = {}


def sms_source(kind: str) -> Callable[[SmsSource], SmsSource]:
    def register(function: SmsSource) -> SmsSource:
        SMS_SOURCES[kind] = function
        return function

    return register


# -- templates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsTemplate:
    """A provider's approved template: its id and the parameter names in the template's order
    (Tencent fills {1}, {2}… by position; Aliyun's ${name} by name)."""

    template_id: str
    params: tuple[str, ...]

    def spec(self) -> str:
        return f"{self.template_id}:{','.join(self.params)}"


# The providers' documented limits on one variable's value (characters):
# - Aliyun, 模板变量规范 (help.aliyun.com/zh/sms/user-guide/template-variable-specifications; the
#   TemplateRule examples at help.aliyun.com/en/sms/templaterule-template-variable-parameter-filling-example):
#   a verification code 4–6 characters; any other variable at most 35 characters.
# - Tencent, 正文模板审核标准 / 实名认证 (cloud.tencent.com/document/product/382/40653, 382/13301):
#   a verification code at most 6 digits; other variables: no limit for an organisation's account
#   (企业认证, as a government's is; a personal account cannot send in mainland China at all), the
#   whole message at most 500 characters including the signature.
PARAM_LIMITS: dict[str, tuple[int, int]] = {"aliyun": (6, 35), "tencent": (6, 500)}
# Upper bounds of what each parameter can hold, for the check at settings save.
PARAM_MAX = {"tracking_no": 14, "token": 32, "days": 3, "code": 6, "minutes": 2}
_TEMPLATE_ID = {"aliyun": re.compile(r"SMS_\d{1,20}"), "tencent": re.compile(r"\d{1,20}")}
_PARAM_NAME = re.compile(r"[a-z_]{1,25}")


def parse_template(kind: str, spec: str, gateway: str) -> SmsTemplate:
    """`SMS_123456:tracking_no,token` → its template; ValueError (Chinese, for the page and the
    start-up line) when the id is not the provider's form, a name is not this kind's, or a
    parameter cannot fit the provider's variable limit."""
    template_id, _sep, names = spec.strip().partition(":")
    template_id = template_id.strip()
    params = tuple(n.strip() for n in names.split(",") if n.strip())
    pattern = _TEMPLATE_ID.get(gateway)
    if not template_id or (pattern and not pattern.fullmatch(template_id)):
        form = {"aliyun": "SMS_123456789", "tencent": "1234567"}.get(gateway, "SMS_123456789")
        raise ValueError(f"模板编号「{template_id}」格式不对，应如 {form}")
    offered = KIND_PARAMS[kind]
    for name in params:
        if not _PARAM_NAME.fullmatch(name) or name not in offered or name == "link":
            allowed = "、".join(n for n in offered if n != "link")
            raise ValueError(f"参数「{name}」不可用，可用参数：{allowed}")
    if len(set(params)) != len(params):
        raise ValueError("参数不能重复")
    for name in params:
        problem = value_problem(gateway, name, "x" * PARAM_MAX.get(name, 0))
        if problem:
            raise ValueError(problem)
    return SmsTemplate(template_id, params)


def parse_templates(text: str, gateway: str) -> dict[str, SmsTemplate]:
    """SMS_TEMPLATES: `kind=ID:p1,p2;kind=ID:p1` (also one a line)."""
    templates: dict[str, SmsTemplate] = {}
    for entry in re.split(r"[;\n]", text or ""):
        if not entry.strip():
            continue
        kind, sep, spec = entry.partition("=")
        kind = kind.strip()
        if not sep or kind not in KIND_PARAMS:
            raise ValueError(
                f"「{entry.strip()}」应为 类型=模板编号:参数,…，类型为 {'、'.join(KIND_PARAMS)} 之一"
            )
        templates[kind] = parse_template(kind, spec, gateway)
    return templates


def value_problem(gateway: str, name: str, value: str) -> str | None:
    """Why `value` cannot be sent as variable `name` by `gateway`, or None."""
    if gateway not in PARAM_LIMITS:
        return None
    code_limit, other_limit = PARAM_LIMITS[gateway]
    label = {"aliyun": "阿里云", "tencent": "腾讯云"}[gateway]
    if name in CODE_PARAMS:
        if len(value) > code_limit:
            return f"参数 {name} 长 {len(value)} 个字符，超过{label}验证码变量上限 {code_limit}"
        return None
    if len(value) > other_limit:
        return f"参数 {name} 长 {len(value)} 个字符，超过{label}变量上限 {other_limit}"
    return None


SETTING_PREFIX = "SMS_TEMPLATE_"


def setting_key(kind: str) -> str:
    return f"{SETTING_PREFIX}{kind.upper()}"


def templates_for(config: Mapping[str, Any]) -> dict[str, SmsTemplate]:
    """Each kind's template: the admin's setting (系统设置 → 短信模板) over SMS_TEMPLATES. A stored
    setting that no longer parses (the gateway changed) is skipped with a warning: the env's
    template, checked at start-up, still goes."""
    from supervise.settings import stored

    gateway = config.get("SMS_GATEWAY", "log")
    templates = parse_templates(config.get("SMS_TEMPLATES", ""), gateway)
    rows = stored()
    for kind in KIND_PARAMS:
        spec = rows.get(setting_key(kind), "").strip()
        if not spec:
            continue
        try:
            templates[kind] = parse_template(kind, spec, gateway)
        except ValueError as exc:
            log.warning("SMS template setting for %s ignored: %s", kind, exc)
    return templates


# -- caps per number -------------------------------------------------------------------------------


def phone_key(secret: str, phone: str) -> str:
    """The Redis key part for a number: an HMAC under the server's key, never the number."""
    return hmac.new(secret.encode(), f"sms-phone:{phone}".encode(), hashlib.sha256).hexdigest()[:32]


class RateLimited(Exception):
    """Over the per-minute cap for this number: retried later (RQ's backoff)."""


def reserve_caps(secret: str, phone: str) -> Callable[[], None]:
    """Count one SMS to `phone` in its minute and day windows (SMS_PHONE_MINUTE_LIMIT,
    SMS_PHONE_DAY_LIMIT); returns the refund for a send that did not happen. Over the minute →
    RateLimited (retried); over the day → PermanentFailure 已达每日上限."""
    from supervise.throttle import Budget

    who = phone_key(secret, phone)
    minute, day = Budget("sms-minute", "SMS_PHONE_MINUTE_LIMIT"), Budget("sms-day", "SMS_PHONE_DAY_LIMIT")
    if not minute.reserve(who):
        raise RateLimited("同一号码发送过于频繁，稍后重试")
    if not day.reserve(who):
        minute.refund(who)
        raise PermanentFailure("已达每日上限：同一号码当日短信数已达 SMS_PHONE_DAY_LIMIT")

    def refund() -> None:
        minute.refund(who)
        day.refund(who)

    return refund


# -- gateways --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    provider_id: str
    status: str  # delivered | failed
    code: str
    at: datetime | None


class ProviderError(Exception):
    """The provider answered with an error code (the request reached it and was refused)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}"[:500])
        self.code = code


class TemplateGateway(Protocol):
    name: str

    def send_template(self, phone: str, template: SmsTemplate, values: list[str], out_id: str) -> str: ...


# Connection errors that prove the request never left: safe to send again.
_NOT_SENT = re.compile(
    r"ConnectTimeout|Connection refused|NewConnectionError|Failed to establish|Name or service not known|"
    r"NameResolutionError|Temporary failure in name resolution|No route to host",
    re.I,
)


def network_failure(exc: BaseException) -> Exception:
    """A network error from either SDK: retry when it provably never went out, else unknown."""
    text = " ".join(str(e) for e in _chain(exc))
    if _NOT_SENT.search(text):
        return RuntimeError(f"连接短信服务商失败（未发出，将重试）：{text[:300]}")
    return OutcomeUnknown(f"请求已发出但未收到应答，无法确定是否送达：{text[:300]}")


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _endpoint(config: Mapping[str, Any], default: str) -> tuple[str, str]:
    """SMS_ENDPOINT (`host[:port]` for https, or a URL with its scheme) → (host[:port], scheme)."""
    raw = (config.get("SMS_ENDPOINT") or "").strip()
    if not raw:
        return default, "https"
    if "://" in raw:
        parts = urlsplit(raw)
        return parts.netloc, parts.scheme
    return raw, "https"


# Aliyun's documented SendSms error codes (help.aliyun.com/zh/sms/developer-reference/api-error-codes):
# those no retry can fix. Anything else from the provider (isp.SYSTEM_ERROR, isv.BUSINESS_LIMIT_CONTROL:
# its own per-number flow control, Throttling.*) is retried.
ALIYUN_PERMANENT = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.INVALID_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.DAY_LIMIT_CONTROL",
        "isv.DENY_IP_RANGE",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.PRODUCT_UNSUBSCRIBE",
        "isv.SMS_TEST_NUMBER_LIMIT",
        "isp.RAM_PERMISSION_DENY",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureDoesNotMatch",
        "Forbidden.RAM",
        "MissingPhoneNumbers",
        "MissingSignName",
        "MissingTemplateCode",
    }
)


class AliyunSmsGateway:
    """Alibaba Cloud SMS (dysmsapi 2017-05-25): SendSms, QuerySendDetails for the receipts."""

    name = "aliyun"

    def __init__(self, config: Mapping[str, Any]):
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi import models as open_api_models

        endpoint, scheme = _endpoint(config, "dysmsapi.aliyuncs.com")
        self.sign_name = config["SMS_SIGN_NAME"]
        self.timeouts = _timeouts(config)
        self.client = Client(
            open_api_models.Config(
                access_key_id=config["SMS_ACCESS_KEY_ID"],
                access_key_secret=config["SMS_ACCESS_KEY_SECRET"],
                endpoint=endpoint,
                protocol=scheme,
            )
        )

    def _runtime(self):
        from alibabacloud_tea_util.models import RuntimeOptions

        connect, read = self.timeouts
        # autoretry off: a second try after a read timeout could send the SMS twice.
        return RuntimeOptions(connect_timeout=connect * 1000, read_timeout=read * 1000, autoretry=False)

    def _call(self, method, request):
        try:
            return method(request, self._runtime()).body
        except Exception as exc:
            code = getattr(exc, "code", None)
            if code and getattr(exc, "status_code", None) is not None:
                raise ProviderError(str(code), str(getattr(exc, "message", "") or "")) from exc
            raise network_failure(exc) from exc

    def send_template(self, phone: str, template: SmsTemplate, values: list[str], out_id: str) -> str:
        from alibabacloud_dysmsapi20170525 import models

        request = models.SendSmsRequest(
            phone_numbers=phone,
            sign_name=self.sign_name,
            template_code=template.template_id,
            template_param=json.dumps(dict(zip(template.params, values, strict=True)), ensure_ascii=False),
            out_id=out_id,
        )
        body = self._call(self.client.send_sms_with_options, request)
        if body.code != "OK":
            raise ProviderError(body.code or "?", body.message or "")
        return body.biz_id

    def receipt(self, phone: str, provider_id: str, sent_at: datetime) -> Receipt | None:
        """The receipt of one message, or None while the operator has not reported yet."""
        from alibabacloud_dysmsapi20170525 import models

        request = models.QuerySendDetailsRequest(
            phone_number=phone,
            biz_id=provider_id,
            send_date=sent_at.astimezone(CHINA).strftime("%Y%m%d"),
            page_size=10,
            current_page=1,
        )
        body = self._call(self.client.query_send_details_with_options, request)
        if body.code != "OK":
            raise ProviderError(body.code or "?", body.message or "")
        for detail in (body.sms_send_detail_dtos and body.sms_send_detail_dtos.sms_send_detail_dto) or []:
            # SendStatus: 1 waiting for the operator's receipt, 2 failed, 3 delivered.
            if detail.send_status in (2, 3):
                return Receipt(
                    provider_id,
                    "delivered" if detail.send_status == 3 else "failed",
                    detail.err_code or "",
                    _china_time(detail.receive_date),
                )
        return None

    def is_permanent(self, code: str) -> bool:
        return code in ALIYUN_PERMANENT


# Tencent's documented SendSms error codes (cloud.tencent.com/document/product/382/55981 and the
# SendStatus codes of 382/52075) that no retry can fix. LimitExceeded.PhoneNumber{ThirtySecond,
# OneHour}Limit, RequestLimitExceeded and InternalError.* are retried; the daily ones are not.
TENCENT_PERMANENT_PREFIXES = ("AuthFailure", "UnauthorizedOperation", "InvalidParameter", "MissingParameter")
TENCENT_PERMANENT = frozenset(
    {
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
        "FailedOperation.TemplateUnapprovedOrNotExist",
        "FailedOperation.ContainSensitiveWord",
        "FailedOperation.MarketingSendTimeConstraint",
        "FailedOperation.PhoneNumberParseFail",
        "FailedOperation.FailResolvePacket",
        "FailedOperation.JsonParseFail",
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.DailyLimit",
        "LimitExceeded.AppDailyLimit",
        "LimitExceeded.AppGlobalDailyLimit",
        "LimitExceeded.AppMainlandChinaDailyLimit",
        "LimitExceeded.PhoneNumberCountLimit",
        "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
        "UnsupportedOperation.UnsupportedRegion",
    }
)


class TencentSmsGateway:
    """Tencent Cloud SMS (API 2021-01-11): SendSms, PullSmsSendStatus for the receipts."""

    name = "tencent"

    def __init__(self, config: Mapping[str, Any]):
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        endpoint, scheme = _endpoint(config, "sms.tencentcloudapi.com")
        _connect, read = _timeouts(config)
        self.app_id = config["SMS_SDK_APP_ID"]
        self.sign_name = config["SMS_SIGN_NAME"]
        profile = ClientProfile(
            httpProfile=HttpProfile(protocol=scheme, endpoint=endpoint, reqTimeout=read)  # one value for both
        )
        cred = credential.Credential(config["SMS_SECRET_ID"], config["SMS_SECRET_KEY"])
        self.client = sms_client.SmsClient(cred, config.get("SMS_REGION") or "ap-guangzhou", profile)

    def _call(self, method, request):
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        try:
            return method(request)
        except TencentCloudSDKException as exc:
            if exc.get_code() == "ClientNetworkError":
                raise network_failure(exc) from exc
            raise ProviderError(exc.get_code() or "?", exc.get_message() or "") from exc
        except Exception as exc:
            raise network_failure(exc) from exc

    def send_template(self, phone: str, template: SmsTemplate, values: list[str], out_id: str) -> str:
        from tencentcloud.sms.v20210111 import models

        request = models.SendSmsRequest()
        request.SmsSdkAppId = self.app_id
        request.SignName = self.sign_name
        request.TemplateId = template.template_id
        request.TemplateParamSet = list(values)  # {1}, {2}… in the template's order
        request.PhoneNumberSet = [phone if phone.startswith("+") else f"+86{phone}"]
        request.SessionContext = out_id
        response = self._call(self.client.SendSms, request)
        status = (response.SendStatusSet or [None])[0]
        if status is None:
            raise ProviderError("EmptySendStatusSet", "no status in the answer")
        if status.Code != "Ok":
            raise ProviderError(status.Code, status.Message or "")
        return status.SerialNo

    def pull_receipts(self, limit: int = 100) -> list[Receipt]:
        """One page of receipts from Tencent's queue (each receipt is handed out once)."""
        from tencentcloud.sms.v20210111 import models

        request = models.PullSmsSendStatusRequest()
        request.Limit = limit
        request.SmsSdkAppId = self.app_id
        response = self._call(self.client.PullSmsSendStatus, request)
        return [
            Receipt(
                item.SerialNo,
                "delivered" if item.ReportStatus == "SUCCESS" else "failed",
                item.Description or "",
                datetime.fromtimestamp(int(item.UserReceiveTime), UTC) if item.UserReceiveTime else None,
            )
            for item in response.PullSmsSendStatusSet or []
        ]

    def is_permanent(self, code: str) -> bool:
        return code in TENCENT_PERMANENT or code.startswith(TENCENT_PERMANENT_PREFIXES)


CHINA = ZoneInfo("Asia/Shanghai")


def _china_time(text: str | None) -> datetime | None:
    """Aliyun's "2026-12-01 22:40:05" (Beijing time) as UTC."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA).astimezone(UTC)
    except ValueError:
        return None


def _timeouts(config: Mapping[str, Any]) -> tuple[int, int]:
    return int(config.get("SMS_CONNECT_TIMEOUT") or 5), int(config.get("SMS_READ_TIMEOUT") or 10)


class LoggingSmsGateway:
    """The development SMS driver: logs a masked number instead of sending.

    A phone code is shown only in development (`show_codes`), where reading it from the log is how
    a developer or a demo gets through real-name reporting; a county running `log` in production
    before its SMS contract must not have live codes in its logs.
    """

    name = "log"

    def __init__(self, show_codes: bool = False):
        self.show_codes = show_codes

    def send(self, phone: str, text: str) -> None:
        from supervise.cases.identity import mask_phone

        # A live link opens the case: like the access code, it stays out of logs.
        text = re.sub(r"/t/[\w-]+", "/t/…", text)
        if not self.show_codes:
            text = re.sub(r"验证码为\d+", "验证码为******", text)
        log.info("SMS to %s: %s", mask_phone(phone), text)

    def send_once(self, phone: str, text: str, out_id: str) -> None:
        """`send` with the provider's idempotency key (阿里云 OutId, 腾讯云 SessionContext…): a
        real gateway passes it so the provider drops a second request with the same id."""
        log.info("SMS out-id %s", out_id)
        self.send(phone, text)


SMS_GATEWAYS: dict[str, type] = {
    "log": LoggingSmsGateway,
    "aliyun": AliyunSmsGateway,
    "tencent": TencentSmsGateway,
}


class SmsChannel:
    """SMS to a citizen. The number is decrypted only here, at sending time: never in Redis."""

    def __init__(self, gateway, identity_box, config: Mapping[str, Any] | None = None):
        self.gateway, self.box, self.config = gateway, identity_box, config or {}

    def send(self, session: Session, message: OutboxMessage) -> None:
        source = SMS_SOURCES.get(message.kind, self.case_content)
        content = source(session, message)
        if content is None:
            return
        out_id = f"outbox-{message.id}"  # whatever retries, the provider sees one message per row
        if hasattr(self.gateway, "send_template"):
            self._send_template(message, content, out_id)
            return
        send_once = getattr(self.gateway, "send_once", None)
        if send_once is None:
            self.gateway.send(content.phone, content.text)
        else:
            send_once(content.phone, content.text, out_id=out_id)

    def _send_template(self, message: OutboxMessage, content: SmsContent, out_id: str) -> None:
        gateway = self.gateway
        template = templates_for(self.config).get(content.kind)
        if template is None:
            raise PermanentFailure(
                f"短信类型 {content.kind} 未配置模板（SMS_TEMPLATES 或 系统设置 → 短信模板）"
            )
        values = []
        for name in template.params:
            if name not in content.params:
                raise PermanentFailure(f"模板 {template.template_id} 的参数 {name} 在 {content.kind} 中没有")
            value = str(content.params[name])
            problem = value_problem(gateway.name, name, value)
            if problem:
                raise PermanentFailure(problem)
            values.append(value)
        refund = reserve_caps(self.config.get("SECRET_KEY", ""), content.phone)
        try:
            provider_id = gateway.send_template(content.phone, template, values, out_id)
        except ProviderError as exc:
            refund()  # refused: nothing was sent
            if gateway.is_permanent(exc.code):
                raise PermanentFailure(f"短信服务商拒绝（不再重试）：{exc}") from exc
            raise
        except OutcomeUnknown:
            raise  # it may have gone: the caps keep counting it
        except Exception:
            refund()
            raise
        message.provider, message.provider_id = gateway.name, provider_id
        if gateway.name == "aliyun":  # its receipt query needs the number (cleared once answered)
            message.receipt_phone_enc = self.box.seal(content.phone)
        log.info("SMS outbox-%s sent by %s as %s", message.id, gateway.name, provider_id)

    def case_content(self, session: Session, message: OutboxMessage) -> SmsContent | None:
        """A case's news to its reporter, with a fresh one-time link (its row commits with the
        delivery)."""
        from flask import current_app

        from supervise.intake import links

        phone = self.box.open(message.case.reporter_phone_enc)
        if not phone:
            return None
        token = links.new_link(session, message.case, nbytes=LINK_TOKEN_BYTES)
        days = str(current_app.config.get("CASE_LINK_DAYS", links.LINK_DAYS))
        link = LINK.format(url=links.link_url(token), days=days)
        params = {"tracking_no": message.case.tracking_no, "token": token, "days": days, "link": link}
        return SmsContent(phone, message.kind, params)


class UnavailableChannel:
    """A channel whose settings name something that does not exist: its messages fail (and, after
    their retries, land on the dead-letter page) while every other channel keeps delivering.
    Start-up refuses such settings in production; this is the net under it."""

    def __init__(self, reason: str):
        self.reason = reason

    def send(self, session: Session, message: OutboxMessage) -> None:
        raise RuntimeError(self.reason)


def sms_channel(config, identity_box) -> SmsChannel | UnavailableChannel:
    name = config.get("SMS_GATEWAY", "log")
    gateway = SMS_GATEWAYS.get(name)
    if gateway is None:
        return UnavailableChannel(f"unknown SMS_GATEWAY {name!r}: one of {', '.join(sorted(SMS_GATEWAYS))}")
    if name == "log":
        show_codes = config.get("SUPERVISE_ENV", "development") == "development"
        return SmsChannel(gateway(show_codes=show_codes), identity_box, config)
    try:
        return SmsChannel(gateway(config), identity_box, config)
    except KeyError as exc:
        return UnavailableChannel(f"SMS_GATEWAY {name}: {exc.args[0]} is not set")


# -- start-up checks -------------------------------------------------------------------------------

REQUIRED_KEYS = {
    "aliyun": ("SMS_ACCESS_KEY_ID", "SMS_ACCESS_KEY_SECRET", "SMS_SIGN_NAME"),
    "tencent": ("SMS_SECRET_ID", "SMS_SECRET_KEY", "SMS_SDK_APP_ID", "SMS_SIGN_NAME"),
}


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """One line per problem with the SMS settings (validate_config refuses to start on any)."""
    from supervise.intake.limits import parse_limit

    name = config.get("SMS_GATEWAY", "log")
    if name not in SMS_GATEWAYS:
        return [f"SMS_GATEWAY must be one of {', '.join(sorted(SMS_GATEWAYS))}, not {name!r}"]
    problems = []
    for key in ("SMS_PHONE_MINUTE_LIMIT", "SMS_PHONE_DAY_LIMIT"):
        try:
            if len(parse_limit(str(config.get(key) or ""))) != 1:
                raise ValueError("one limit only")
        except ValueError as exc:
            problems.append(f"{key} is not a limit like 1/minute or 10/day: {exc}")
    if name == "log":
        return problems
    from supervise.config import is_placeholder

    for key in REQUIRED_KEYS[name]:
        value = str(config.get(key) or "").strip()
        if not value:
            problems.append(f"{key} is not set: required with SMS_GATEWAY={name}")
        elif is_placeholder(value):
            problems.append(f"{key} is a placeholder (like .env.example's CHANGE-ME)")
    try:
        templates = parse_templates(config.get("SMS_TEMPLATES", ""), name)
    except ValueError as exc:
        problems.append(f"SMS_TEMPLATES: {exc}")
    else:
        missing = [kind for kind in KIND_PARAMS if kind not in templates]
        if missing:
            problems.append(
                f"SMS_TEMPLATES has no template for {', '.join(missing)} (kind=TemplateId:param,…)"
            )
    return problems


# -- receipts (回执) ---------------------------------------------------------------------------------

# Receipts arrive within minutes; a row is asked about for this long after sending, then its
# sealed number (Aliyun) is cleared and it stays without a receipt.
RECEIPT_WINDOW = timedelta(days=2)
RECEIPT_BATCH = 200  # Aliyun: one query per row; at most this many a run
TENCENT_PAGES = 20  # Tencent: up to 100 receipts a page


def collect_receipts(
    session: Session, config: Mapping[str, Any], identity_box, now: datetime | None = None
) -> int:
    """Record the delivery receipts of sent SMS (idempotent: only rows without one are written);
    returns how many were recorded. Commits."""
    now = now or utcnow()
    name = config.get("SMS_GATEWAY", "log")
    recorded = 0
    if name == "aliyun":
        gateway = AliyunSmsGateway(config)
        rows = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.provider_id,
                OutboxMessage.delivered_at,
                OutboxMessage.receipt_phone_enc,
            )
            .where(
                OutboxMessage.provider == "aliyun",
                OutboxMessage.receipt_status.is_(None),
                OutboxMessage.receipt_phone_enc.is_not(None),
                OutboxMessage.delivered_at >= now - RECEIPT_WINDOW,
            )
            .order_by(OutboxMessage.id)
            .limit(RECEIPT_BATCH)
        ).all()
        for message_id, provider_id, sent_at, sealed in rows:
            try:
                receipt = gateway.receipt(identity_box.open(sealed), provider_id, sent_at)
            except Exception as exc:  # the next run asks again
                log.warning("SMS receipt query for outbox-%s failed: %s", message_id, type(exc).__name__)
                continue
            if receipt is not None:
                recorded += _record(session, message_id=message_id, receipt=receipt)
    elif name == "tencent":
        gateway = TencentSmsGateway(config)
        for _page in range(TENCENT_PAGES):
            receipts = gateway.pull_receipts()
            for receipt in receipts:
                recorded += _record(session, provider_id=receipt.provider_id, receipt=receipt)
            session.commit()  # pulled receipts are gone from Tencent's queue: keep each page
            if len(receipts) < 100:
                break
    # Past the window: no more asking, and the sealed number goes.
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.receipt_phone_enc.is_not(None), OutboxMessage.delivered_at < now - RECEIPT_WINDOW
        )
        .values(receipt_phone_enc=None)
    )
    session.commit()
    if recorded:
        log.info("SMS receipts recorded: %s", recorded)
    return recorded


def _record(
    session: Session, *, receipt: Receipt, message_id: int | None = None, provider_id: str | None = None
) -> int:
    where = [OutboxMessage.receipt_status.is_(None), OutboxMessage.channel == "sms"]
    where.append(
        OutboxMessage.id == message_id if message_id is not None else OutboxMessage.provider_id == provider_id
    )
    done = session.execute(
        update(OutboxMessage)
        .where(*where)
        .values(
            receipt_status=receipt.status,
            receipt_code=(receipt.code or "")[:64] or None,
            receipt_at=receipt.at or utcnow(),
            receipt_phone_enc=None,
        )
    )
    return done.rowcount
