"""The registration pages (/staff/register) and the receipt slip (/staff/receipt/<ref>).

Thin views: the form is parsed by RegisterSchema, one service call registers (or reissues the code),
and the answer is a redirect to the slip (post/redirect/get). The access code waits for that one
showing in the session, sealed with the identity key, as the citizen's does after submitting: a
reload, or opening the slip later, shows everything but the code.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from supervise.cases import services as case_services
from supervise.cases.labels import CHANNEL_LABELS
from supervise.cases.states import REGISTERED_CHANNELS
from supervise.cases.workflow import Actor, find_case
from supervise.errors import InvalidInput
from supervise.extensions import db
from supervise.intake.uploads import MAX_PHOTOS, load_with_photos
from supervise.registration import services
from supervise.registration.schemas import RegisterSchema
from supervise.staff import audit
from supervise.staff.auth import staff_required
from supervise.staff.models import Role

bp = Blueprint("registration", __name__, url_prefix="/staff")

FIELDS = tuple(RegisterSchema().fields)
SLIP_KEY = "staff_receipt"  # the session's one showing of a slip's access code


def _actor() -> Actor:
    return Actor.staff(current_user)


def _allowed() -> Actor:
    """The signed-in person, if they may register: a unit's account gets a 403 (audited)."""
    me = _actor()
    if not services.may_register(me):
        audit.record("access_denied", user=current_user, detail={"path": request.path})
        db.session.commit()
        abort(403)
    return me


def _messages(errors: dict[str, Any]) -> dict[str, list[str]]:
    """Field messages in the reader's language; the back-dating one with its limit filled in."""
    limit = errors.get("limit") or {}
    out: dict[str, list[str]] = {}
    for field, messages in errors.items():
        if isinstance(messages, list):
            out[field] = [_(m, **limit) if m == services.TOO_EARLY else _(m) for m in messages]
    return out


def _form(values: dict[str, Any] | None = None, errors: dict | None = None, status: int = 200):
    window = services.received_window(case_services.make_context().now)
    return (
        render_template(
            "staff/register.html",
            values=values or {},
            errors=errors or {},
            channels=[(c.value, CHANNEL_LABELS[c.value]) for c in REGISTERED_CHANNELS],
            categories=case_services.categories(),
            units=case_services.subject_units(),
            window=window,
            max_photos=MAX_PHOTOS,
            photos_dropped=bool(errors) and any(f.filename for f in request.files.getlist("photos")),
        ),
        status,
    )


@bp.route("/register", methods=["GET", "POST"])
@staff_required(Role.INTAKE, Role.SUPERVISOR)
def register() -> ResponseReturnValue:
    """登记来信来访: the form; on success, the slip (with the access code, once)."""
    me = _allowed()
    if request.method == "GET":
        return _form({"received_on": services.received_window(case_services.make_context().now).today})
    typed = {k: v for k, v in request.form.items() if k in FIELDS and v.strip() != ""}
    form = load_with_photos(RegisterSchema(), typed, request.files.getlist("photos"))
    if form.errors:
        return _form(typed, _messages(form.errors), 422)
    try:
        case, code = services.register_case(form.data, me, form.photos)
    except InvalidInput as exc:  # the received day, the unit, the category; 503 if photos can't be stored
        db.session.rollback()
        return _form(typed, _messages(exc.details or {"_": [exc.message]}), exc.status)
    _keep_slip(case.tracking_no, code)
    return redirect(url_for("registration.receipt", ref=case.tracking_no), 303)


def _keep_slip(tracking_no: str, code: str) -> None:
    session[SLIP_KEY] = {"no": tracking_no, "code": case_services.identity_box().seal(code).decode()}


def _take_slip(tracking_no: str) -> str | None:
    """The access code waiting for this slip's one showing, or None (gone after it is read)."""
    held = session.get(SLIP_KEY)
    if not isinstance(held, dict) or held.get("no") != tracking_no:
        return None
    session.pop(SLIP_KEY, None)
    try:
        return case_services.identity_box().open(str(held.get("code", "")).encode())
    except InvalidToken:  # sealed under a key since rotated: the slip is shown without it
        return None


@bp.get("/receipt/<ref>")
@staff_required(Role.INTAKE, Role.SUPERVISOR)
def receipt(ref: str) -> ResponseReturnValue:
    """回执: printable. Right after registering (or a reprint) with the access code; otherwise
    without it, and with the button that issues a new one."""
    me = _allowed()
    ref = ref.strip().upper()
    code = _take_slip(ref)
    if code is not None:
        # Just registered here: shown even when the case went to another body this person cannot open.
        case = find_case(db.session, ref)
        if case is None:
            abort(404)
    else:
        case = case_services.case_for_actor(ref, me)
    response = render_template(
        "staff/receipt.html",
        slip=services.receipt_view(case, code),
        may_reissue=code is None,
    )
    return response, 200, {"Cache-Control": "no-store"}


@bp.post("/receipt/<ref>")
@staff_required(Role.INTAKE, Role.SUPERVISOR)
def reissue(ref: str) -> ResponseReturnValue:
    """重新打印回执: a new access code (the old one stops working), then the slip that shows it."""
    case, code = services.reissue_access_code(ref, _allowed())
    _keep_slip(case.tracking_no, code)
    return redirect(url_for("registration.receipt", ref=case.tracking_no), 303)
