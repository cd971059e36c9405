"""/public (公开: no login) and the staff side of published summaries (/staff/summaries and the
case page's 公开摘要 form). Thin views: parse, call one service, render or redirect."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from supervise.accountability import services
from supervise.cases import services as case_services
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import local_date
from supervise.errors import DomainError, InvalidInput
from supervise.extensions import db
from supervise.i18n import N_
from supervise.staff import audit
from supervise.staff.auth import staff_required

bp = Blueprint("accountability", __name__)

# A few minutes in any cache: the figures come from a summary refreshed every 10 minutes, and a
# withdrawn summary must not linger long. The language is chosen by a cookie (or ?lang=).
PUBLIC_MAX_AGE = 300


@bp.get("/public")
def public_page() -> ResponseReturnValue:
    data = services.public_page(db.session, local_date(utcnow()))
    response = render_template("public/accountability.html", **data)
    return response, 200, {"Cache-Control": f"public, max-age={PUBLIC_MAX_AGE}", "Vary": "Cookie"}


# -- staff --------------------------------------------------------------------------------------------


def _body_actor() -> Actor:
    """The signed-in person if they work at a discipline body; a unit's account gets a 403 (audited):
    units never publish and never see which cases were chosen."""
    me = Actor.staff(current_user)
    if not me.at_body:
        audit.record("access_denied", user=current_user, detail={"path": request.path})
        db.session.commit()
        abort(403)
    return me


@bp.get("/staff/summaries")
@staff_required()
def summaries() -> ResponseReturnValue:
    me = _body_actor()
    return render_template("staff/summaries.html", groups=services.staff_list(db.session, me), me=me)


def _failed(error: DomainError, ref: str) -> ResponseReturnValue:
    """The case page again with the message beside the summary field and the typed text kept."""
    from supervise.staff.views import _case_page

    db.session.rollback()
    g.summary_form = {"text": request.form.get("text", ""), "errors": [_(m) for m in _field_messages(error)]}
    return _case_page(ref, status=422 if isinstance(error, InvalidInput) else 409)


def _field_messages(error: DomainError) -> list[str]:
    texts = error.details.get("text")
    return list(texts) if texts else [error.message]


@bp.post("/staff/cases/<ref>/summary")
@staff_required()
def write(ref: str) -> ResponseReturnValue:
    me = _body_actor()
    case = case_services.case_for_actor(ref, me)
    try:
        services.write(db.session, case, me, request.form.get("text"))
    except DomainError as error:
        if error.status == 403:
            raise
        return _failed(error, ref)
    db.session.commit()
    flash(_("公开摘要已提交，待另一位审核人批准后公开"))
    return redirect(url_for("staff.case", ref=case.tracking_no) + "#publish-summary")


def _decide(summary_id: int, decide, done: str) -> ResponseReturnValue:
    me = _body_actor()
    summary = services.summary_for(db.session, summary_id, me)
    ref = summary.case.tracking_no
    try:
        decide(db.session, summary, me)
    except DomainError as error:
        if error.status == 403:
            raise  # the error page, and the refusal audited (api/base.py)
        return _failed(error, ref)
    db.session.commit()
    flash(_(done))
    if request.form.get("back") == "list":
        return redirect(url_for("accountability.summaries"))
    return redirect(url_for("staff.case", ref=ref) + "#publish-summary")


@bp.post("/staff/summaries/<int:summary_id>/approve")
@staff_required()
def approve(summary_id: int) -> ResponseReturnValue:
    return _decide(summary_id, services.approve, N_("摘要已批准，已在公开页面显示"))


@bp.post("/staff/summaries/<int:summary_id>/withdraw")
@staff_required()
def withdraw(summary_id: int) -> ResponseReturnValue:
    return _decide(summary_id, services.withdraw, N_("摘要已撤回，不再公开"))
