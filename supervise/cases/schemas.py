"""Marshmallow schemas: what the API accepts (validated, Chinese messages) and what it returns."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from supervise.cases.queries import QUEUES
from supervise.cases.states import STAFF_ACTIONS, CaseKind, Channel, Disposal, Rating, RejectReason
from supervise.i18n import N_

REQUIRED = {"required": N_("此项为必填项"), "null": N_("此项不能为空")}
# ASCII digits only: \d would also take full-width and Arabic-Indic digits no SMS gateway dials.
PHONE = validate.Regexp(r"^1[3-9][0-9]{9}$", error=N_("请填写 11 位手机号码"))
# marshmallow's English messages, as the citizens and staff who read them say it.
CHINESE_MESSAGES = {
    "Unknown field.": N_("不支持的字段"),
    "Not a valid integer.": N_("请填写整数"),
    "Not a valid string.": N_("请填写文字"),
    "Not a valid boolean.": N_("请填写是或否"),
    "Not a valid date.": N_("日期格式应为 YYYY-MM-DD"),
    "Not a valid datetime.": N_("时间格式不正确"),
    "Not a valid number.": N_("请填写数字"),
    "Field may not be null.": N_("此项不能为空"),
    "Missing data for required field.": N_("此项为必填项"),
    "Invalid input type.": N_("提交的数据格式不正确"),
    "Invalid value.": N_("无效的值"),
}


def _text(min_len: int, max_len: int, error: str, **kwargs) -> fields.String:
    return fields.String(
        validate=validate.Length(min=min_len, max=max_len, error=error),
        error_messages={**REQUIRED, "invalid": N_("请填写文字")},
        **kwargs,
    )


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE

    @pre_load
    def _trim(self, data, **kwargs):
        """Surrounding spaces are not content: "   " as a name is no name (so no 实名 case), and
        an optional field left blank is as if absent."""
        if not isinstance(data, dict):
            return data
        trimmed = {}
        for key, value in data.items():
            if isinstance(value, str):
                value = value.strip()
                if value == "":
                    continue
            trimmed[key] = value
        return trimmed

    def handle_error(self, error: ValidationError, data, **kwargs):
        raise ValidationError(_chinese(error.messages), data=error.data, valid_data=error.valid_data)


def _chinese(messages):
    """marshmallow's English messages in Chinese, wherever they sit in the message map."""
    if isinstance(messages, dict):
        return {key: _chinese(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return [_chinese(m) for m in messages]
    if isinstance(messages, str):
        if messages.startswith("Must be one of"):
            return N_("请选择有效的选项")
        return CHINESE_MESSAGES.get(messages, messages)
    return messages


# -- citizen ---------------------------------------------------------------------------------


class SubmitSchema(StrictSchema):
    category = fields.String(required=True, validate=validate.Length(max=64), error_messages=REQUIRED)
    subject = _text(
        1, 200, N_("反映对象须为 1–200 个字"), required=True, metadata={"description": "被反映的人或单位"}
    )
    content = _text(10, 5000, N_("问题描述须为 10–5000 个字"), required=True)
    point = fields.String(load_default=None, validate=validate.Length(max=64))
    subject_unit = fields.String(
        load_default=None,
        validate=validate.Length(max=64),
        metadata={"description": "被反映单位 (an org code, see GET /api/v1/units); ignored with a point"},
    )
    name = _text(1, 50, N_("姓名须为 1–50 个字"), load_default=None)
    phone = fields.String(load_default=None, validate=PHONE)
    phone_code = fields.String(
        load_default=None,
        validate=validate.Length(max=20, error=N_("验证码为 6 位数字")),
        metadata={
            "description": "短信验证码: the code POST /api/v1/phone-codes sent to `phone`. Without a valid "
            "one the case is filed anonymous (`real_name: false` in the answer, and why)"
        },
    )
    occurred_at = fields.Date(load_default=None, error_messages={"invalid": N_("日期格式应为 YYYY-MM-DD")})
    location = _text(1, 200, N_("地点须为 1–200 个字"), load_default=None)
    about_org_head = fields.Boolean(
        load_default=False, metadata={"description": "反映的是承办单位主要负责人"}
    )
    idempotency_key = fields.String(
        load_default=None,
        validate=validate.Length(min=8, max=64, error=N_("提交标识须为 8–64 个字符")),
        metadata={
            "description": "the form's one-time key: a replay of the same submission finds the first case"
        },
    )

    @validates_schema
    def _real_name_needs_both(self, data, **kwargs):
        if bool(data.get("name")) != bool(data.get("phone")):
            missing = "phone" if data.get("name") else "name"
            raise ValidationError({missing: [N_("实名反映请同时填写姓名和手机号码")]})


class SubmittedSchema(Schema):
    tracking_no = fields.String()
    access_code = fields.String(metadata={"description": "shown once; keep it to follow the case"})
    status = fields.String()
    response_due_at = fields.DateTime()
    response_due_date = fields.Date()
    due_provisional = fields.Boolean()
    real_name = fields.Boolean(metadata={"description": "filed as real-name (number verified by SMS code)"})
    real_name_note = fields.String(
        allow_none=True,
        metadata={"description": "why a submission with a name and phone was filed anonymous, else null"},
    )


class PhoneCodeSchema(StrictSchema):
    """获取验证码: a one-time code by SMS to the number of a real-name report."""

    phone = fields.String(required=True, validate=PHONE, error_messages=REQUIRED)


class PhoneCodeSentSchema(Schema):
    phone = fields.String(metadata={"description": "the number, masked (138****5678)"})
    valid_minutes = fields.Integer()
    resend_after = fields.Integer(metadata={"description": "seconds until this number may ask again"})


class TrackSchema(StrictSchema):
    tracking_no = fields.String(
        required=True, validate=validate.Length(min=1, max=20), error_messages=REQUIRED
    )
    access_code = fields.String(
        required=True, validate=validate.Length(min=1, max=40), error_messages=REQUIRED
    )


class RatingSchema(TrackSchema):
    rating = fields.String(
        required=True,
        validate=validate.OneOf([r.value for r in Rating], error=N_("请选择：满意、基本满意或不满意")),
        error_messages=REQUIRED,
    )
    comment = _text(1, 1000, N_("评价意见须为 1–1000 个字"), load_default=None)


class SupplementSchema(TrackSchema):
    text = _text(1, 5000, N_("补充内容须为 1–5000 个字"), required=True)


class PublicEventSchema(Schema):
    at = fields.DateTime()
    action = fields.String()
    note = fields.String(allow_none=True)


class PublicCaseSchema(Schema):
    tracking_no = fields.String()
    status = fields.String()
    category = fields.String()
    org = fields.String(metadata={"description": "the unit handling the case"})
    received_at = fields.DateTime()
    response_due_at = fields.DateTime()
    response_due_date = fields.Date()
    due_provisional = fields.Boolean()
    responded_at = fields.DateTime(allow_none=True)
    responded_on_time = fields.Boolean(allow_none=True)
    feedback = fields.String(allow_none=True)
    rating = fields.String(allow_none=True)
    can_rate = fields.Boolean()
    can_supplement = fields.Boolean()
    timeline = fields.List(fields.Nested(PublicEventSchema))
    merged_into = fields.Nested(
        "MergedIntoSchema",
        allow_none=True,
        metadata={"description": "重复件: the case this one joined, whose answer is this one's"},
    )


class MergedIntoSchema(Schema):
    tracking_no = fields.String()
    status = fields.String()
    responded_at = fields.DateTime(allow_none=True)
    feedback = fields.String(allow_none=True)
    timeline = fields.List(fields.Nested(PublicEventSchema))


class UnitSchema(Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.String(metadata={"description": "department | township | village"})


class CategorySchema(Schema):
    code = fields.String()
    name = fields.String()


# -- staff -----------------------------------------------------------------------------------


SANE_DATES = validate.Range(
    min=date(2000, 1, 1), max=date(2099, 12, 31), error=N_("日期须在 2000–2099 年之间")
)


class QueueArgsSchema(StrictSchema):
    queue = fields.String(load_default=None, validate=validate.OneOf(QUEUES))
    org = fields.String(load_default=None)
    status = fields.String(load_default=None)
    category = fields.String(load_default=None)
    point = fields.String(load_default=None)
    channel = fields.String(
        load_default=None,
        validate=validate.OneOf([c.value for c in Channel]),
        metadata={"description": "来源渠道: " + " | ".join(c.value for c in Channel)},
    )
    real_name = fields.Boolean(load_default=False)
    received_from = fields.Date(
        load_default=None, validate=SANE_DATES, metadata={"description": "a day in 2000-01-01 … 2099-12-31"}
    )
    received_to = fields.Date(
        load_default=None, validate=SANE_DATES, metadata={"description": "a day in 2000-01-01 … 2099-12-31"}
    )
    q = fields.String(load_default=None, validate=validate.Length(max=100))
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=None, validate=validate.Range(min=1, max=200))


class ActionSchema(StrictSchema):
    action = fields.String(
        required=True, validate=validate.OneOf([a.value for a in STAFF_ACTIONS]), error_messages=REQUIRED
    )
    version = fields.Integer(required=True, strict=True, error_messages=REQUIRED)
    reason = _text(1, 2000, N_("理由须为 1–2000 个字"), load_default=None)
    into = fields.String(load_default=None, validate=validate.Length(max=20))
    org = fields.String(load_default=None, validate=validate.Length(max=64))
    note = _text(1, 2000, N_("备注须为 1–2000 个字"), load_default=None)
    user = fields.String(load_default=None, validate=validate.Length(max=64))
    text = _text(1, 5000, N_("内容须为 1–5000 个字"), load_default=None)
    days = fields.Integer(load_default=None, strict=True)
    kind = fields.String(
        load_default=None,
        validate=validate.OneOf([k.value for k in CaseKind]),
        metadata={"description": "定性 (accept, classify): " + " | ".join(k.value for k in CaseKind)},
    )
    reason_code = fields.String(
        load_default=None,
        validate=validate.OneOf([r.value for r in RejectReason]),
        metadata={"description": "不予受理的理由 (reject)"},
    )
    disposal = fields.String(
        load_default=None,
        validate=validate.OneOf([d.value for d in Disposal]),
        metadata={"description": "处置方式 of a 检举控告 case (feedback, answer)"},
    )
    disposal_note = _text(1, 2000, N_("处置理由须为 1–2000 个字"), load_default=None)

    REQUIRES: ClassVar[dict[str, list[str]]] = {
        "reject": ["reason", "reason_code"],
        "reverse_rejection": ["reason"],
        "classify": ["kind"],
        "return": ["reason"],
        "answer": ["text"],
        "merge": ["into"],
        "transfer": ["org"],
        "assign": ["user"],
        "feedback": ["text"],
        "reopen": ["reason"],
        "extend": ["days", "reason"],
        "note": ["text"],
        "message": ["text"],
        "request_extension": ["days", "reason"],
    }

    @validates_schema
    def _fields_for_action(self, data, **kwargs):
        missing = {
            f: [N_("此操作需要填写此项")]
            for f in self.REQUIRES.get(data.get("action"), [])
            if data.get(f) is None
        }
        if missing:
            raise ValidationError(missing)


class StaffEventSchema(Schema):
    at = fields.DateTime()
    action = fields.String()
    action_label = fields.String(metadata={"description": "the action as a person reads it (受理, 转办 …)"})
    actor = fields.String(allow_none=True)
    actor_label = fields.String(
        metadata={"description": "who acted as a person reads it: 群众, 系统, or name（org）"}
    )
    public = fields.Boolean()
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    internal_note = fields.String(
        allow_none=True,
        metadata={"description": "a transfer's 转办说明, for the body and the org it was sent to"},
    )
    data = fields.Dict()


class ExtensionRequestSchema(Schema):
    days = fields.Integer(allow_none=True)
    reason = fields.String()
    by = fields.String()
    at = fields.DateTime()


class AttachmentSchema(Schema):
    url = fields.String(metadata={"description": "signed link, valid 15 minutes"})
    thumb_url = fields.String()
    content_type = fields.String()
    size = fields.Integer()


class ReporterSchema(Schema):
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    masked = fields.Boolean()


class CaseSummarySchema(Schema):
    tracking_no = fields.String(metadata={"description": "查询编号, random (the citizen's)"})
    register_no = fields.String(metadata={"description": "登记号, the staff-side running number"})
    status = fields.String()
    version = fields.Integer()
    category = fields.String()
    subject = fields.String()
    channel = fields.String(
        metadata={"description": "来源渠道: qr | web | phone | letter | visit | hotline | import"}
    )
    point = fields.String(allow_none=True)
    org = fields.String(metadata={"description": "where the case sits now (who acts next)"})
    owner = fields.String(allow_none=True, metadata={"description": "the discipline body that owns it"})
    subject_unit = fields.String(allow_none=True, metadata={"description": "被反映单位"})
    unit = fields.String(allow_none=True, metadata={"description": "the unit a service complaint went to"})
    kind = fields.String(allow_none=True, metadata={"description": "定性, set at acceptance"})
    assignee = fields.String(allow_none=True)
    real_name = fields.Boolean(metadata={"description": "always false for a unit's staff"})
    received_at = fields.DateTime()
    response_due_at = fields.DateTime()
    due_provisional = fields.Boolean()
    stage_due_at = fields.DateTime(allow_none=True)
    responded_at = fields.DateTime(allow_none=True)
    working_days_left = fields.Integer()
    overdue = fields.Boolean()
    due_soon = fields.Boolean()
    escalation_level = fields.Integer()
    rating = fields.String(allow_none=True)


class ClockSchema(Schema):
    kind = fields.String(metadata={"description": "response | reopened | extension | stage | ack | rating"})
    label = fields.String()
    started_at = fields.DateTime()
    due_at = fields.DateTime()
    due_date = fields.Date(metadata={"description": "the due day in Asia/Shanghai"})
    due_provisional = fields.Boolean()
    warned_at = fields.DateTime(allow_none=True)
    overdue_at = fields.DateTime(allow_none=True, metadata={"description": "also the level-1 escalation"})
    level2_at = fields.DateTime(allow_none=True)
    level = fields.Integer(metadata={"description": "escalation level reached: 0, 1 or 2"})
    met_at = fields.DateTime(allow_none=True)
    outcome = fields.String(allow_none=True, metadata={"description": "met | ended | extended"})
    late = fields.Boolean(allow_none=True, metadata={"description": "stopped after the due moment"})
    working_days_left = fields.Integer(allow_none=True, metadata={"description": "while running"})


class CaseDetailSchema(CaseSummarySchema):
    content = fields.String()
    occurred_at = fields.Date(allow_none=True)
    location = fields.String(allow_none=True)
    feedback_draft = fields.String(allow_none=True)
    feedback_text = fields.String(allow_none=True)
    rating_comment = fields.String(allow_none=True)
    merged_into = fields.String(allow_none=True)
    disposal = fields.String(allow_none=True, metadata={"description": "处置方式 of a 检举控告 case"})
    disposal_note = fields.String(allow_none=True)
    reject_reason = fields.String(allow_none=True)
    reporter = fields.Nested(ReporterSchema, allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentSchema))
    events = fields.List(fields.Nested(StaffEventSchema))
    clocks = fields.List(fields.Nested(ClockSchema), metadata={"description": "every deadline, oldest first"})
    allowed_actions = fields.List(fields.String())
    extension_request = fields.Nested(
        ExtensionRequestSchema,
        allow_none=True,
        metadata={"description": "a 申请延期 awaiting the supervisor"},
    )


class CasePageSchema(Schema):
    items = fields.List(fields.Nested(CaseSummarySchema))
    next_cursor = fields.String(allow_none=True)


# The queue row's fields, and those of them that are datetimes (dumped as ISO 8601 text).
_SUMMARY_FIELDS = tuple(CaseSummarySchema().dump_fields)
_SUMMARY_DATETIMES = frozenset(
    name for name, field in CaseSummarySchema().dump_fields.items() if isinstance(field, fields.DateTime)
)


def dump_case_page(page: dict[str, Any]) -> dict[str, Any]:
    """`CasePageSchema().dump(page)` without marshmallow's per-field machinery, which cost ~3 ms of
    CPU for a page of 50 rows × 25 fields: a tenth of the queue request (issue 15). The rows are
    `services.summary_view`'s, whose values already have their fields' types; only the datetimes
    need their text. The schema stays the API's documented answer, and the one definition of the
    fields: tests/web/test_queue_overhead.py holds the two dumps equal."""
    items = [
        {
            name: row[name].isoformat() if name in _SUMMARY_DATETIMES and row[name] is not None else row[name]
            for name in _SUMMARY_FIELDS
        }
        for row in page["items"]
    ]
    return {"items": items, "next_cursor": page["next_cursor"]}


class RevealSchema(StrictSchema):
    reason = _text(1, 500, N_("查看理由须为 1–500 个字"), required=True)


class IdentitySchema(Schema):
    name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
