"""What /open311/v2 accepts: the GeoReport v2 parameters, checked with Chinese messages.

Unknown top-level parameters are ignored (clients send jurisdiction_id, device_id, account_id…,
which mean nothing here); unknown `attribute[...]` keys are refused, so nothing typed is dropped
silently. Attributes are the service definition's (views.ATTRIBUTES)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from supervise.cases.schemas import REQUIRED, _chinese
from supervise.deadlines.calendar import SHANGHAI
from supervise.i18n import N_

ATTRIBUTE_RE = re.compile(r"^attribute\[([A-Za-z0-9_]+)\]$")
MAX_IDS = 100  # service_request_id=a,b,c…: one page's worth


class _Open311Schema(Schema):
    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _trim(self, data, **kwargs):
        """Blank is absent (a form posts every field, empty ones too)."""
        return {k: v.strip() for k, v in data.items() if isinstance(v, str) and v.strip()}

    def handle_error(self, error: ValidationError, data, **kwargs):
        raise ValidationError(_chinese(error.messages), data=error.data, valid_data=error.valid_data)


def _text(max_len: int, error: str, min_len: int = 1, **kwargs) -> fields.String:
    return fields.String(
        validate=validate.Length(min=min_len, max=max_len, error=error),
        error_messages={**REQUIRED, "invalid": N_("请填写文字")},
        **kwargs,
    )


class RequestAttributes(_Open311Schema):
    """attribute[subject], attribute[subject_unit], attribute[work_order]."""

    class Meta:
        unknown = "raise"

    subject = _text(200, N_("反映对象须为 1–200 个字"), load_default=None)
    subject_unit = _text(64, N_("单位代码不能超过 64 个字符"), load_default=None)
    work_order = _text(64, N_("工单号不能超过 64 个字符"), load_default=None)


class PostRequestSchema(_Open311Schema):
    """POST requests.{format}, form-encoded as GeoReport v2 says."""

    service_code = fields.String(required=True, validate=validate.Length(max=64), error_messages=REQUIRED)
    description = _text(5000, N_("问题描述须为 10–5000 个字"), min_len=10, required=True)
    address_string = _text(200, N_("地址不能超过 200 个字"), load_default=None)
    lat = fields.Float(
        load_default=None,
        validate=validate.Range(-90, 90, error=N_("纬度须在 -90 到 90 之间")),
        error_messages={"invalid": N_("请填写数字")},
    )
    long = fields.Float(
        load_default=None,
        validate=validate.Range(-180, 180, error=N_("经度须在 -180 到 180 之间")),
        error_messages={"invalid": N_("请填写数字")},
    )
    first_name = _text(50, N_("姓名须为 1–50 个字"), load_default=None)
    last_name = _text(50, N_("姓名须为 1–50 个字"), load_default=None)
    phone = fields.String(load_default=None, validate=validate.Length(max=30))
    media_url = fields.Url(
        load_default=None,
        schemes={"http", "https"},
        validate=validate.Length(max=1000),
        error_messages={"invalid": N_("图片链接须为 http(s) 网址")},
    )

    @validates_schema
    def _both_coordinates(self, data, **kwargs):
        if (data.get("lat") is None) != (data.get("long") is None):
            raise ValidationError({"lat": [N_("经纬度须同时填写")]})


def parse_post(form: dict[str, str]) -> dict[str, Any]:
    """The POST's fields and its attributes (`attributes`); ValidationError with every problem."""
    plain = {k: v for k, v in form.items() if not k.startswith("attribute[")}
    raw_attributes = {}
    errors: dict[str, Any] = {}
    for key, value in form.items():
        if key.startswith("attribute["):
            match = ATTRIBUTE_RE.match(key)
            raw_attributes[match.group(1) if match else key] = value
    try:
        data = PostRequestSchema().load(plain)
    except ValidationError as exc:
        errors.update(exc.messages)
        data = {}
    try:
        attributes = RequestAttributes().load(raw_attributes)
    except ValidationError as exc:
        errors.update({f"attribute[{k}]": v for k, v in exc.messages.items()})
        attributes = {}
    if errors:
        raise ValidationError(errors)
    return {**data, "attributes": attributes}


def _moment(value: str) -> datetime:
    """A W3C datetime (2026-12-01T00:00:00Z, …+08:00); without an offset, Beijing time."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(N_("时间格式应为 ISO 8601，如 2026-12-01T00:00:00+08:00")) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


class _Moment(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        return _moment(str(value))


class _CommaList(fields.Field):
    """`a,b,c` (as the spec says lists are given) → ["a", "b", "c"]."""

    def _deserialize(self, value, attr, data, **kwargs):
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        if not items:
            raise ValidationError(N_("此项不能为空"))
        return items


class ListRequestsSchema(_Open311Schema):
    """GET requests.{format}: the filters GeoReport v2 names."""

    service_request_id = _CommaList(
        load_default=None, validate=validate.Length(max=MAX_IDS, error=N_("一次最多查询 100 件"))
    )
    service_code = _CommaList(load_default=None)
    start_date = _Moment(load_default=None)
    end_date = _Moment(load_default=None)
    status = _CommaList(
        load_default=None,
        validate=validate.ContainsOnly(["open", "closed"], error=N_("状态只能是 open 或 closed")),
    )
