"""Citizen endpoints: submit, track, rate, supplement. Secrets travel in POST bodies only."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from supervise.api.base import PUBLIC_SECURITY, documented
from supervise.cases import services
from supervise.cases.schemas import (
    CategorySchema,
    PhoneCodeSchema,
    PhoneCodeSentSchema,
    PublicCaseSchema,
    RatingSchema,
    SubmitSchema,
    SubmittedSchema,
    SupplementSchema,
    TrackSchema,
    UnitSchema,
)
from supervise.deadlines.calendar import local_date
from supervise.intake import verification
from supervise.intake.limits import limit_api_submissions, limit_lookups
from supervise.intake.uploads import MAX_PHOTOS, read_photos

blp = Blueprint("public", __name__, url_prefix="/api/v1", description="Citizen side (no account)")


# One instance for every request: a marshmallow schema keeps no state between loads, and making one
# (its fields deep-copied) cost 4 % of a submission's CPU (issue 15).
SUBMIT_SCHEMA = SubmitSchema()


def _submission_body() -> dict[str, Any]:
    """JSON, or a form post (multipart for photos); blank form fields mean "not given"."""
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return {k: v for k, v in request.form.items() if v.strip() != ""}
    body = request.get_json()  # malformed JSON → 400 in the error shape
    if not isinstance(body, dict):
        from supervise.errors import DomainError

        raise DomainError("请求体须为 JSON 对象", {"_schema": ["请求体须为 JSON 对象"]})
    return body


class SubmitFormSchema(SubmitSchema):
    """The multipart form of a submission, for the document only (the view reads the photos
    from request.files and the other fields with SubmitSchema)."""

    photos = fields.List(
        Upload(),
        validate=validate.Length(max=MAX_PHOTOS),
        metadata={
            "description": f"up to {MAX_PHOTOS} photos (JPG, PNG or WebP, 10 MB each), one part each; "
            "re-encoded, so only their pixels are kept"
        },
    )


SUBMIT_EXAMPLE = {
    "category": "petty_corruption",
    "subject": "某窗口工作人员",
    "content": "办理业务时被要求先请吃饭才给盖章，已经第三次了。",
}
LOOKUP = {
    "e404": "no case with this tracking number and access code (the same answer for either)",
    "e429": "too many lookups, or too many failed ones, from this address or for this tracking number "
    "(the right code still opens)",
}


@blp.route("/categories")
class Categories(MethodView):
    @blp.response(200, CategorySchema(many=True))
    @documented(blp, 400, security=PUBLIC_SECURITY)
    def get(self):
        """The categories a citizen can choose from."""
        return [{"code": c.code, "name": c.name} for c in services.categories()]


@blp.route("/units")
class Units(MethodView):
    @blp.response(200, UnitSchema(many=True))
    @documented(blp, 400, security=PUBLIC_SECURITY)
    def get(self):
        """The units a complaint can be about (被反映单位), for `subject_unit` on submission."""
        return [{"code": o.code, "name": o.name, "kind": o.kind} for o in services.subject_units()]


@blp.route("/cases")
class Submit(MethodView):
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": "Submit", "example": SUBMIT_EXAMPLE},
                "multipart/form-data": {
                    "schema": SubmitFormSchema,
                    "encoding": {"photos": {"contentType": "image/jpeg, image/png, image/webp"}},
                },
                "application/x-www-form-urlencoded": {"schema": "Submit"},
            },
        }
    )
    @blp.response(201, SubmittedSchema)
    @limit_api_submissions
    @documented(
        blp,
        400,
        413,
        415,
        422,
        429,
        503,
        security=PUBLIC_SECURITY,
        e422=f"field errors (`details` per field; `photos` for a refused photo or more than {MAX_PHOTOS})",
        e429="too many submissions from this address (the API's own per-IP limit, apart from the web "
        "forms'): wait `retry_after` seconds (also the Retry-After header)",
        e503="no photo could be decoded in time (`code` busy): send it again in a moment",
    )
    def post(self):
        """Submit a case (JSON or multipart). The access code in the answer is shown once."""
        data = SUBMIT_SCHEMA.load(_submission_body())
        submitted = services.submit_checked(data, read_photos(request.files.getlist("photos")))
        case = submitted.case
        return {
            "tracking_no": case.tracking_no,
            "access_code": submitted.access_code,
            "status": case.status,
            "response_due_at": case.response_due_at,
            "response_due_date": local_date(case.response_due_at),
            "due_provisional": case.due_provisional,
            "real_name": case.real_name,
            "real_name_note": submitted.phone.note,
        }


@blp.route("/phone-codes")
class PhoneCodes(MethodView):
    @blp.arguments(PhoneCodeSchema)
    @blp.response(202, PhoneCodeSentSchema)
    @documented(
        blp,
        400,
        422,
        429,
        security=PUBLIC_SECURITY,
        e422="`phone` is not an 11-digit mainland mobile number",
        e429="too many codes for this number (one a minute, five an hour by default) or from this "
        "address: wait `retry_after` seconds (also the Retry-After header)",
    )
    def post(self, args):
        """Send a one-time code (短信验证码) by SMS to a real-name reporter's number: give it as
        `phone_code` with `name` and `phone` on POST /cases, within 5 minutes (5 tries)."""
        issued = verification.request_code(args["phone"], get_remote_address())
        return {
            "phone": issued.masked_phone,
            "valid_minutes": verification.VALID_MINUTES,
            "resend_after": issued.resend_after,
        }


@blp.route("/track")
class Track(MethodView):
    @blp.arguments(TrackSchema)
    @limit_lookups  # above the response: it must see the answer as sent, dumped by the schema
    @blp.response(200, PublicCaseSchema)
    @documented(blp, 400, 404, 422, 429, security=PUBLIC_SECURITY, **LOOKUP)
    def post(self, args):
        """The citizen's view of their case: timeline, feedback, whether the deadline was met."""
        return services.public_view(services.find_for_citizen(args["tracking_no"], args["access_code"]))


@blp.route("/track/rating")
class Rate(MethodView):
    @blp.arguments(RatingSchema)
    @limit_lookups  # above the response: it must see the answer as sent, dumped by the schema
    @blp.response(200, PublicCaseSchema)
    @documented(
        blp,
        400,
        404,
        409,
        422,
        429,
        security=PUBLIC_SECURITY,
        e409="the case cannot be rated now (no published answer yet, already rated, or changed meanwhile)",
        **LOOKUP,
    )
    def post(self, args):
        """Rate published feedback; "unsatisfied" reopens the case with a fresh deadline."""
        case = services.rate_case(
            args["tracking_no"], args["access_code"], args["rating"], args.get("comment")
        )
        return services.public_view(case)


@blp.route("/track/supplement")
class Supplement(MethodView):
    @blp.arguments(SupplementSchema)
    @limit_lookups  # above the response: it must see the answer as sent, dumped by the schema
    @blp.response(200, PublicCaseSchema)
    @documented(
        blp,
        400,
        404,
        409,
        422,
        429,
        security=PUBLIC_SECURITY,
        e409="the case takes no supplement now (e.g. closed), or changed meanwhile",
        **LOOKUP,
    )
    def post(self, args):
        """Add information to an open case."""
        case = services.add_supplement(args["tracking_no"], args["access_code"], args["text"])
        return services.public_view(case)
