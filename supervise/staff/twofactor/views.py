"""账号安全 (/staff/2fa): turn two-factor sign-in on, move it to a new phone, renew the recovery
codes; and the second step of signing in (/staff/login/code).

Routes of the staff blueprint, kept here with the feature. Pages that show a secret or recovery
codes are never cached (Cache-Control: no-store): the codes exist on screen once, nowhere else.
"""

from __future__ import annotations

from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from supervise.errors import TooManyAttempts
from supervise.extensions import db
from supervise.i18n import N_
from supervise.staff import audit
from supervise.staff.auth import (
    attempt_code,
    authenticate,
    pending_second_step,
    remember_device,
    sign_in,
    staff_required,
)
from supervise.staff.models import User
from supervise.staff.twofactor import services as twofactor
from supervise.staff.views import _safe_next, bp


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the second step of signing in ----------------------------------------------------------------


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> ResponseReturnValue:
    pending = pending_second_step()
    if pending is None:
        flash(_("验证已超时，请重新输入用户名和密码"), "error")
        return redirect(url_for("staff.login"))
    user, next_url = pending
    if request.method == "GET":
        return _no_store(make_response(render_template("staff/login_code.html")))
    try:
        how = attempt_code(user, request.form.get("code", ""))
    except TooManyAttempts as exc:
        audit.record("login_throttled", user=user, detail={"via": "2fa"})
        db.session.commit()
        return render_template("staff/login_code.html", error=exc.message), 429
    if how is None:
        audit.record("login_failed", user=user, detail={"via": "2fa"})
        db.session.commit()
        wrong = N_("验证码不正确或已经用过，请输入手机上的新验证码")
        return render_template("staff/login_code.html", error=wrong), 401
    sign_in(user)  # commits the spent code with the session
    if how == "recovery":
        flash(
            _(
                "您用了一个恢复码，还剩 %(n)s 个。"
                "如果手机丢失，请在“账号安全”中绑定新手机，或请管理员重置两步验证。",
                n=twofactor.recovery_codes_left(user),
            )
        )
    response = redirect(_safe_next(next_url))
    remember_device(response, user.username)
    return response


# -- 账号安全 ---------------------------------------------------------------------------------------


def _me() -> User:
    return db.session.get(User, current_user.id)


def _page(error: str | None = None, status: int = 200, **context: Any) -> ResponseReturnValue:
    user = _me()
    secret = twofactor.pending_secret(user)
    qr = twofactor.qr_data_uri(twofactor.provisioning_uri(user, secret)) if secret else None
    page = render_template(
        "staff/two_factor.html",
        enabled=twofactor.is_enabled(user),
        must_enrol=twofactor.must_enrol(user),
        required=twofactor.is_required(user),
        secret=twofactor.grouped(secret) if secret else None,
        qr=qr,
        codes_left=twofactor.recovery_codes_left(user) if twofactor.is_enabled(user) else 0,
        error=error,
        **context,
    )
    return _no_store(make_response(page, status))


def _codes_page(codes: list[str]) -> ResponseReturnValue:
    return _no_store(make_response(render_template("staff/recovery_codes.html", codes=codes)))


def _password_ok() -> bool:
    """Changing a second factor that is on asks for the password again: a browser left signed in
    must not be enough to move it to someone else's phone."""
    return authenticate(current_user.username, request.form.get("password", "")) is not None


@bp.get("/2fa")
@staff_required()
def two_factor() -> ResponseReturnValue:
    return _page()


@bp.post("/2fa/start")
@staff_required()
def two_factor_start() -> ResponseReturnValue:
    user = _me()
    if twofactor.is_enabled(user) and not _password_ok():
        return _page(N_("密码不正确"), 422, form_error="start")
    twofactor.begin_enrolment(user)
    db.session.commit()
    return redirect(url_for("staff.two_factor") + "#setup")


@bp.post("/2fa/confirm")
@staff_required()
def two_factor_confirm() -> ResponseReturnValue:
    user = _me()
    if twofactor.pending_secret(user) is None:
        return redirect(url_for("staff.two_factor"))
    codes = twofactor.confirm_enrolment(user, request.form.get("code", ""))
    if codes is None:
        wrong = N_("验证码不正确：请输入验证器应用中当前显示的 6 位数字")
        return _page(wrong, 422, code=request.form.get("code", ""))
    db.session.commit()
    return _codes_page(codes)


@bp.post("/2fa/recovery-codes")
@staff_required()
def two_factor_codes() -> ResponseReturnValue:
    user = _me()
    if not twofactor.is_enabled(user):
        return redirect(url_for("staff.two_factor"))
    if not _password_ok():
        return _page(N_("密码不正确"), 422, form_error="codes")
    codes = twofactor.regenerate_recovery_codes(user)
    db.session.commit()
    return _codes_page(codes)
