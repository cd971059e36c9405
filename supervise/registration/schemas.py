"""What the registration form (登记) accepts: the citizen's fields (SubmitSchema) plus the channel,
the day it was actually received and the other system's reference number."""

from __future__ import annotations

from marshmallow import RAISE, fields, validate

from supervise.cases.schemas import REQUIRED, SubmitSchema, _text
from supervise.cases.states import REGISTERED_CHANNELS
from supervise.i18n import N_


class RegisterSchema(SubmitSchema):
    """A registered complaint. No point (nobody scanned a code) and no idempotency key: the staff
    form is CSRF-protected and posted once, then redirected (post/redirect/get)."""

    class Meta:
        unknown = RAISE
        exclude = ("point", "idempotency_key")

    channel = fields.String(
        required=True,
        validate=validate.OneOf([c.value for c in REGISTERED_CHANNELS], error=N_("请选择来源渠道")),
        error_messages=REQUIRED,
    )
    received_on = fields.Date(
        load_default=None,
        error_messages={"invalid": N_("日期格式应为 YYYY-MM-DD")},
        metadata={"description": "收件日期 (Asia/Shanghai); default today, never in the future"},
    )
    reference = _text(
        1,
        64,
        N_("工单号或来文编号须为 1–64 个字"),
        load_default=None,
        metadata={"description": "12345 work order or the other system's number"},
    )
