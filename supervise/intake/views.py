"""The citizen's pages (码上监督): the form behind a QR code, the generic form, tracking.

No account and no JavaScript needed; every page works at 360 px inside WeChat's browser. Views
parse with the same marshmallow schemas as the API and call one service function each.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _
from marshmallow import ValidationError

from supervise.cases import services
from supervise.cases.schemas import RatingSchema, SubmitSchema, SupplementSchema, TrackSchema
from supervise.errors import DomainError, InvalidInput, NotFound
from supervise.extensions import db
from supervise.intake.files import signed_url
from supervise.intake.limits import limit_lookups, limit_submissions
from supervise.intake.points import count_scan, point_by_token
from supervise.intake.uploads import MAX_PHOTOS, read_photos

bp = Blueprint("citizen", __name__)

FORM_FIELDS = (
    "category",
    "subject",
    "subject_unit",
    "content",
    "occurred_at",
    "location",
    "name",
    "phone",
    "about_org_head",
)


def _form_page(point, values: dict[str, Any] | None = None, errors: dict | None = None, status: int = 200):
    values = values or {}
    values.setdefault("idempotency_key", uuid.uuid4().hex)
    return (
        render_template(
            "public/form.html",
            point=point,
            categories=services.categories(),
            units=services.subject_units() if point is None else [],
            values=values,
            errors=errors or {},
            max_photos=MAX_PHOTOS,
            # Browsers cannot refill a file input: say so when the citizen had chosen photos.
            photos_dropped=any(f.filename for f in request.files.getlist("photos")),
        ),
        status,
    )


def _submit(point):
    """Validate everything, keep what was typed on any error, create the case once."""
    raw = {k: v for k, v in request.form.items() if v.strip() != ""}
    errors: dict[str, list[str]] = {}
    if raw.pop("consent", None) != "yes":
        errors["consent"] = [_("请阅读并勾选承诺")]
    fields = {k: raw[k] for k in (*FORM_FIELDS, "idempotency_key") if k in raw}
    if point is not None:
        fields["point"] = point.token
    data: dict[str, Any] = {}
    try:
        data = SubmitSchema().load(fields)
    except ValidationError as exc:
        errors.update(exc.messages)
    try:
        photos = read_photos(request.files.getlist("photos"))
    except InvalidInput as exc:
        errors.update(exc.details)
        photos = []
    if errors:
        return _form_page(point, raw, errors, 422)
    try:
        case, code = services.submit_case(data, photos)
    except InvalidInput as exc:
        return _form_page(point, raw, exc.details, 422)
    return render_template("public/submitted.html", case=case, access_code=code)


@bp.route("/s/<token>", methods=["GET", "POST"])
@limit_submissions
def point_form(token: str):
    """The form behind a QR code: the point (and so the handling org) is already known."""
    point = point_by_token(token)
    if point is None:
        abort(404)
    if not point.active:
        return render_template("public/inactive_point.html", point=point), 410
    if request.method == "POST":
        return _submit(point)
    count_scan(point)
    return _form_page(point)


@bp.route("/report", methods=["GET", "POST"])
@limit_submissions
def report_form():
    """The same form without a point: the case goes to the commission's intake."""
    if request.method == "POST":
        return _submit(None)
    return _form_page(None)


def _case_page(case, message: str | None = None, errors: dict | None = None, status: int = 200):
    return (
        render_template(
            "public/track_result.html",
            view=services.public_view(case),
            case=case,
            access_code=request.form.get("access_code", ""),
            message=message,
            errors=errors or {},
            photos=[{"url": signed_url(a), "thumb_url": signed_url(a, thumb=True)} for a in case.attachments],
        ),
        status,
    )


def _lookup_form(values: dict, errors: dict, status: int):
    return render_template("public/track.html", values=values, errors=errors), status


@bp.get("/track")
def track_form():
    return _lookup_form({}, {}, 200)


@bp.post("/track")
@limit_lookups
def track():
    values = {k: request.form.get(k, "") for k in ("tracking_no", "access_code")}
    try:
        args = TrackSchema().load(values)
        case = services.find_for_citizen(args["tracking_no"], args["access_code"])
    except ValidationError as exc:
        return _lookup_form(values, exc.messages, 422)
    except NotFound as exc:
        return _lookup_form(values, {"_": [_(exc.message)]}, 404)
    return _case_page(case)


@bp.post("/track/rate")
@limit_lookups
def rate():
    values = request.form.to_dict()
    try:
        args = RatingSchema().load({k: v for k, v in values.items() if v.strip() != ""})
        case = services.rate_case(
            args["tracking_no"], args["access_code"], args["rating"], args.get("comment")
        )
    except ValidationError as exc:
        return _case_page(_case_from_form(), errors=exc.messages, status=422)
    except NotFound as exc:
        return _lookup_form(values, {"_": [_(exc.message)]}, 404)
    except DomainError as exc:
        return _case_page(_case_from_form(), errors={"_": [exc.message]}, status=exc.status)
    return _case_page(case, message=_("感谢您的评价"))


@bp.post("/track/supplement")
@limit_lookups
def supplement():
    values = request.form.to_dict()
    try:
        args = SupplementSchema().load({k: v for k, v in values.items() if v.strip() != ""})
        photos = read_photos(request.files.getlist("photos"))
        case = services.add_supplement(args["tracking_no"], args["access_code"], args["text"], photos)
    except ValidationError as exc:
        return _case_page(_case_from_form(), errors=exc.messages, status=422)
    except NotFound as exc:
        return _lookup_form(values, {"_": [_(exc.message)]}, 404)
    except DomainError as exc:
        return _case_page(_case_from_form(), errors=exc.details or {"_": [exc.message]}, status=exc.status)
    return _case_page(case, message=_("补充材料已提交"))


def _case_from_form():
    """The case the form's hidden credentials open (they were valid when the page was shown)."""
    db.session.rollback()
    return services.find_for_citizen(request.form.get("tracking_no", ""), request.form.get("access_code", ""))
