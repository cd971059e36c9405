"""The citizen's pages (码上监督): the form behind a QR code, the generic form, tracking.

No account and no JavaScript needed; every page works at 360 px inside WeChat's browser. Views
parse with the same marshmallow schemas as the API and call one service function each.

Every POST that changes something answers with a redirect (post/redirect/get), so a reload never
submits twice: the codes of a new case wait in the session for the one showing of
`/report/submitted`, and a rated or supplemented case is shown again at `/track/case` through a
short grant in the session (supervise/intake/links.py). The access code never enters a URL.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    get_flashed_messages,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from marshmallow import ValidationError

from supervise.cases import services
from supervise.cases.schemas import PhoneCodeSchema, RatingSchema, SubmitSchema, SupplementSchema, TrackSchema
from supervise.cases.states import Status
from supervise.errors import Conflict, DomainError, InvalidInput, NotFound, TooManyAttempts
from supervise.extensions import db, limiter
from supervise.i18n import N_
from supervise.intake import links, verification
from supervise.intake.files import signed_url
from supervise.intake.limits import (
    challenge_errors,
    form_challenge,
    limit_form_submissions,
    limit_lookup_rate,
    limit_lookups,
)
from supervise.intake.points import count_scan, point_by_token, replaced_point
from supervise.intake.uploads import MAX_PHOTOS, load_with_photos, read_photos
from supervise.intake.verification import UNVERIFIED_NOTES, PhoneCheck

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
    "phone_code",
    "about_org_head",
)

# What each status means, in a sentence a citizen understands (shown under the status).
STATUS_HELP = {
    "received": N_("您的反映已收到，正等待纪检监察机关审查是否受理。"),
    "accepted": N_("纪检监察机关已决定受理，正在安排办理。"),
    "rejected": N_("经审查，此件不在受理范围或无法核实，理由见下方办理记录。"),
    "merged": N_("已有人反映过同一问题，您的反映与之一并办理，答复相同。"),
    "assigned": N_("已交给具体单位或工作人员负责办理。"),
    "processing": N_("工作人员正在调查核实、处理您反映的问题。"),
    "feedback_pending_review": N_("办理结果已经写好，正在由纪检监察机关审核，审核后即答复您。"),
    "responded": N_("已经答复您，请查看答复内容并评价。"),
    "reopened": N_("您对答复不满意，此件正在重新办理。"),
    "closed": N_("此件已办理完毕。"),
}

# The timeline in words for citizens; staff words (交办, 转办, 留言) explained.
CITIZEN_ACTION_LABELS = {
    "submit": N_("您提交了反映"),
    "accept": N_("已受理"),
    "reject": N_("不予受理"),
    "merge": N_("与相同问题合并办理"),
    "transfer": N_("转交有关单位办理（转办）"),
    "return": N_("退回纪检监察机关重新安排"),
    "answer": N_("答复"),
    "reverse_rejection": N_("撤销不予受理，重新审查"),
    "assign": N_("交给具体人员办理（交办）"),
    "start": N_("开始办理"),
    "publish": N_("答复"),
    "reopen": N_("重新办理"),
    "extend": N_("延长办理期限"),
    "message": N_("工作人员给您留言"),
    "rate": N_("您作出评价"),
    "supplement": N_("您补充了材料"),
    "auto_close": N_("评价期满，自动办结"),
    "deadline_changed": N_("因节假日安排调整答复期限"),
}

RATING_LABELS = {
    "satisfied": N_("满意"),
    "basically_satisfied": N_("基本满意"),
    "unsatisfied": N_("不满意"),
}

LARGE_TEXT_COOKIE = "text"
EXPIRED_GRANT = N_("为保护您的信息，页面已超时，请重新输入查询编号和查询码。")
ALREADY_RATED = N_("您已评价过此件，不能重复评价。")
CANNOT_SUPPLEMENT = N_("此件已办结，不能再补充材料。如有新的情况，请重新反映。")
NOT_NOW = N_("此件当前不能补充材料。如有新的情况，请重新反映。")
CANNOT_RATE_NOW = N_("此件还没有答复，答复后才能评价。")


# -- the form ----------------------------------------------------------------------------------


def _form_page(
    point,
    values: dict[str, Any] | None = None,
    errors: dict | None = None,
    status: int = 200,
    *,
    code_notice: str | None = None,
    photos_dropped: bool | None = None,
):
    values = values or {}
    values.setdefault("idempotency_key", uuid.uuid4().hex)
    if photos_dropped is None:
        photos_dropped = bool(errors) and any(f.filename for f in request.files.getlist("photos"))
    form_url = url_for("citizen.point_form", token=point.token) if point else url_for("citizen.report_form")
    return (
        render_template(
            "public/form.html",
            point=point,
            # Explicit: the page may be the answer of the send-code action, a URL of its own.
            form_url=form_url,
            code_url=url_for("citizen.point_phone_code", token=point.token)
            if point
            else url_for("citizen.report_phone_code"),
            code_notice=code_notice,
            categories=services.categories(),
            units=services.subject_units() if point is None else [],
            values=values,
            errors=errors or {},
            max_photos=MAX_PHOTOS,
            # Browsers cannot refill a file input: say so beside it when photos had been chosen.
            photos_dropped=photos_dropped,
            # Above the forms' per-IP limit (a township behind one address): a question to answer.
            challenge=form_challenge(),
        ),
        status,
    )


def _wants_json() -> bool:
    """citizen.js uploads with XMLHttpRequest (for the progress bar) and follows the redirect itself."""
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


def _submit(point):
    """Validate everything, keep what was typed on any error, create the case once."""
    raw = {k: v for k, v in request.form.items() if v.strip() != ""}
    errors: dict[str, list[str]] = {}
    if raw.get("consent") != "yes":
        errors["consent"] = [_("请阅读并勾选承诺")]
    errors.update(challenge_errors(request.form))
    fields = {k: raw[k] for k in (*FORM_FIELDS, "idempotency_key") if k in raw}
    if point is not None:
        fields["point"] = point.token
    form = load_with_photos(SubmitSchema(), fields, request.files.getlist("photos"))
    errors.update(form.errors)
    if errors:
        return _form_page(point, raw, errors, 422)
    try:
        submitted = services.submit_checked(form.data, form.photos)
    except InvalidInput as exc:  # 503 when the photo store is down (UploadsUnavailable), else 422
        return _form_page(point, raw, exc.details, exc.status)
    links.keep_receipt(submitted.case, submitted.access_code)
    # Why a real-name report was filed anonymous, for the submitted page's one showing.
    if submitted.phone.note:
        session[UNVERIFIED_KEY] = submitted.phone.reason
    else:
        session.pop(UNVERIFIED_KEY, None)
    target = url_for("citizen.submitted")
    if _wants_json():
        return jsonify({"redirect": target})
    return redirect(target, 303)


@bp.route("/s/<token>", methods=["GET", "POST"])
@limit_form_submissions
def point_form(token: str):
    """The form behind a QR code: the point (and so the handling org) is already known."""
    point = point_by_token(token)
    if point is None:
        point = replaced_point(token)
        if point is None:
            abort(404)
        if point.active:
            return _replaced_code(point)
    if not point.active:
        return render_template("public/inactive_point.html", point=point), 410
    if request.method == "POST":
        return _submit(point)
    count_scan(point)
    return _form_page(point)


def _replaced_code(point):
    """An old sticker of a point whose code was reissued (此码已更换).

    A scan shows the place and a link to its current form, and is not counted: following the link
    counts it once, on the point. A form still open from before the reissue creates no case: it is
    sent to the current form with nothing kept, so the citizen checks the place and files there."""
    if request.method == "POST":
        target = url_for("citizen.point_form", token=point.token, replaced=1)
        if _wants_json():
            return jsonify({"redirect": target})
        return redirect(target, 303)
    return render_template("public/point_replaced.html", point=point), 410


@bp.route("/report", methods=["GET", "POST"])
@limit_form_submissions
def report_form():
    """The same form without a point: the case goes to the commission's intake."""
    if request.method == "POST":
        return _submit(None)
    return _form_page(None)


@bp.get("/report/submitted")
def submitted():
    """Shows the codes of the case just submitted exactly once; a reload shows where to track it."""
    case, code = links.take_receipt()
    reason = session.pop(UNVERIFIED_KEY, None)
    note = PhoneCheck(asked=True, reason=reason).note if reason in UNVERIFIED_NOTES and case else None
    return render_template("public/submitted.html", case=case, access_code=code, unverified_note=note)


# -- 获取验证码: a one-time code for a real-name report ---------------------------------------------

UNVERIFIED_KEY = "unverified_phone"
CODE_SENT = N_("验证码已发送至 %(phone)s，%(minutes)s 分钟内有效。")
PHONE_FIRST = N_("请先填写手机号码，再获取验证码")


def _send_code(point):
    """The 获取验证码 button. Without JavaScript it submits the whole form here (urlencoded: the
    photos' bytes are not sent, only their names): the form comes back with everything typed and
    a notice (photos must be chosen again, as after any error). phone-code.js posts the same with
    X-Requested-With and gets JSON, so nothing reloads."""
    raw = {k: v for k, v in request.form.items() if v.strip() != "" and k not in ("photos", "send_code")}
    files = request.files.getlist("photos")
    dropped = bool(request.form.get("photos", "").strip()) or any(f.filename for f in files)
    phone = request.form.get("phone", "").strip()
    field, status, notice, resend_after = "phone", 422, None, 0
    try:
        if not phone:
            raise InvalidInput(_(PHONE_FIRST), {"phone": [_(PHONE_FIRST)]})
        args = PhoneCodeSchema().load({"phone": phone})
        issued = verification.request_code(args["phone"], get_remote_address())
    except ValidationError as exc:
        message = exc.messages["phone"][0]
    except InvalidInput as exc:
        message = exc.message
    except TooManyAttempts as exc:
        field, status, message = "phone_code", exc.status, exc.message
        resend_after = exc.details.get("retry_after", 0)
    else:
        message, status, resend_after = None, 200, issued.resend_after
        notice = _(CODE_SENT, phone=issued.masked_phone, minutes=verification.VALID_MINUTES)
    if _wants_json():
        body = {"notice": notice, "resend_after": resend_after}
        if message:
            body.update(error=message, field=field)
        return jsonify(body), status
    errors = {field: [message]} if message else None
    return _form_page(point, raw, errors, status, code_notice=notice, photos_dropped=dropped)


@bp.post("/report/phone-code")
def report_phone_code():
    return _send_code(None)


@bp.post("/s/<token>/phone-code")
def point_phone_code(token: str):
    point = point_by_token(token)
    if point is None or not point.active:
        abort(404)
    return _send_code(point)


# -- tracking ----------------------------------------------------------------------------------


def _case_page(case, errors: dict | None = None, status: int = 200, values: dict | None = None):
    view = services.public_view(case)
    return (
        render_template(
            "public/track_result.html",
            view=view,
            case=case,
            # Known only when the page answers the lookup form; otherwise the session's grant.
            access_code=request.form.get("access_code", "") if request.method == "POST" else "",
            messages=get_flashed_messages(),
            errors=errors or {},
            values=values or {},
            status_help=STATUS_HELP,
            citizen_action_labels=CITIZEN_ACTION_LABELS,
            rating_labels=RATING_LABELS,
            timeline=_timeline(case, view),
            photos=_photos(a for a in case.attachments if a.event is None or a.event.action == "submit"),
        ),
        status,
    )


def _photos(attachments) -> list[dict[str, str]]:
    return [{"url": signed_url(a), "thumb_url": signed_url(a, thumb=True)} for a in attachments]


def _timeline(case, view: dict[str, Any]) -> list[dict[str, Any]]:
    """The public entries, each with the photos it brought (a supplement's), and without the
    answer's text and the rating's comment, which the page shows once in their own sections."""
    by_event: dict[int, list] = {}
    for a in case.attachments:
        if a.event_id is not None:
            by_event.setdefault(a.event_id, []).append(a)
    entries = []
    for e in case.events:
        if not e.public:
            continue
        answer = (
            e.action in ("publish", "answer") and (e.note or "").strip() == (view["feedback"] or "").strip()
        )
        answer = answer or (e.action == "rate" and e.note == case.rating_comment)  # under 您的评价
        photos = _photos(by_event.get(e.id, [])) if e.action == "supplement" else []
        entries.append({"at": e.at, "action": e.action, "note": None if answer else e.note, "photos": photos})
    return entries


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
    # Shown at once (this works without cookies); the grant lets the rating come back here.
    links.grant(case)
    return _case_page(case)


@bp.get("/track/case")
def case_page():
    """The case this browser holds a grant for: after a rating, a supplement or an SMS link."""
    case = links.granted_case()
    if case is None:
        return _lookup_form({}, {"_": [_(EXPIRED_GRANT)]}, 200)
    return _case_page(case)


def _case_from_form():
    """The case the form opens: by its access code, or by this browser's grant (SMS link)."""
    number, code = request.form.get("tracking_no", ""), request.form.get("access_code", "")
    if code.strip():
        return services.find_for_citizen(number, code)
    case = links.granted_case(number)
    if case is None:
        raise NotFound(EXPIRED_GRANT)
    return case


def _done(case, message: str):
    links.grant(case)
    flash(message)
    return redirect(url_for("citizen.case_page"), 303)


@bp.post("/track/rate")
@limit_lookups
def rate():
    values = {k: v for k, v in request.form.to_dict().items() if v.strip() != ""}
    try:
        case = _case_from_form()
    except NotFound as exc:
        return _lookup_form(values, {"_": [_(exc.message)]}, 404)
    if case.rated_at is not None and not services.public_view(case)["can_rate"]:
        return _case_page(case, {"_": [_(ALREADY_RATED)]}, 409)
    try:
        args = RatingSchema().load(values, partial=("access_code",))
        links.rate(case, args["rating"], args.get("comment"))
    except ValidationError as exc:
        return _case_page(case, exc.messages, 422, values)
    except DomainError as exc:
        db.session.rollback()
        case = _case_from_form()
        message = CANNOT_RATE_NOW if isinstance(exc, Conflict) else exc.message
        return _case_page(case, {"_": [_(message)]}, exc.status, values)
    return _done(case, _("感谢您的评价"))


@bp.post("/track/supplement")
@limit_lookups
def supplement():
    values = {k: v for k, v in request.form.to_dict().items() if v.strip() != ""}
    try:
        case = _case_from_form()
    except NotFound as exc:
        return _lookup_form(values, {"_": [_(exc.message)]}, 404)
    try:
        args = SupplementSchema().load(values, partial=("access_code",))
        photos = read_photos(request.files.getlist("photos"))
        links.supplement(case, args["text"], photos)
    except ValidationError as exc:
        return _case_page(case, exc.messages, 422, values)
    except DomainError as exc:
        db.session.rollback()
        case = _case_from_form()
        if isinstance(exc, Conflict):
            # The case closed while the citizen was typing: say so, keep what they wrote.
            message = CANNOT_SUPPLEMENT if case.status in (Status.CLOSED, Status.REJECTED) else NOT_NOW
            return _case_page(case, {"_": [_(message)]}, exc.status, values)
        return _case_page(case, exc.details or {"_": [_(exc.message)]}, exc.status, values)
    return _done(case, _("补充材料已提交"))


# -- SMS links ---------------------------------------------------------------------------------


def _link_page(token: str, live: bool):
    html = render_template("public/link.html", token=token, live=live)
    return html, 200 if live else 410, {"Cache-Control": "no-store"}


@bp.get("/t/<token>")
@limit_lookup_rate
def open_link(token: str):
    """What the SMS link opens: a button, because link previews fetch (GET) without a person."""
    return _link_page(token, links.link_is_live(token))


@bp.post("/t/<token>")
@limit_lookup_rate
def redeem_link(token: str):
    case = links.redeem(token)
    if case is None:
        return _link_page(token, False)
    links.grant(case)
    return redirect(url_for("citizen.case_page"), 303)


# -- large text, error pages -------------------------------------------------------------------


def _safe_next(target: str) -> str:
    parts = urlsplit(target)
    unsafe = any(ord(ch) < 32 or ch == "\\" for ch in target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or unsafe:
        return "/"  # only our own pages: no open redirect
    return target


@bp.get("/text/<size>")
def text_size(size: str):
    """大字版: a plain link sets a cookie, so it works without JavaScript."""
    response = redirect(_safe_next(request.args.get("next", "/")))
    if size == "large":
        response.set_cookie(
            LARGE_TEXT_COOKIE, "large", max_age=365 * 24 * 3600, samesite="Lax", httponly=True
        )
    else:
        response.delete_cookie(LARGE_TEXT_COOKIE)
    return response


def back_path() -> str:
    """Where "返回上一页" leads: the form the failed request came from, never the Referer (pages
    send none, and it could point anywhere)."""
    path = request.path
    if request.method == "POST" and path.startswith("/s/") and path.count("/") == 2:
        return path
    routes = (("/report", "/report"), ("/track/", "/track/case"), ("/track", "/track"), ("/t/", "/track"))
    for prefix, target in routes:
        if path.startswith(prefix):
            return target
    if path.startswith("/staff"):
        return "/staff/"
    return "/"


def retry_after_seconds(details: dict | None = None) -> int | None:
    """How long a 429 asks to wait: a failure budget says it; otherwise the breached rate limit."""
    seconds = (details or {}).get("retry_after")
    if not isinstance(seconds, int):
        current = limiter.current_limit
        seconds = int(current.reset_at - time.time()) if current is not None and current.breached else None
    if seconds is not None:
        g.retry_after = max(1, seconds)
        return g.retry_after
    return None


def wait_words(seconds: int) -> str:
    if seconds < 60:
        return _("%(n)s 秒", n=seconds)
    return _("%(n)s 分钟", n=math.ceil(seconds / 60))


@bp.app_context_processor
def _citizen_helpers() -> dict[str, Any]:
    if not has_request_context():  # a report rendered by a job
        return {}
    return {
        "large_text": request.cookies.get(LARGE_TEXT_COOKIE) == "large",
        "back_path": back_path,
        "retry_after_seconds": retry_after_seconds,
        "wait_words": wait_words,
    }


@bp.after_app_request
def _retry_after_header(response):
    # The page says how long to wait; the header says the same to the browser.
    seconds = g.get("retry_after")
    if response.status_code == 429 and seconds:
        response.headers["Retry-After"] = str(seconds)
    return response
