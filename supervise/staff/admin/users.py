"""Staff accounts of the admin's subtree: create, edit (one or several roles each, DESIGN.md §2a),
enable and disable, reset a password."""

from __future__ import annotations

import re
import secrets

from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from supervise.errors import InvalidInput
from supervise.extensions import db
from supervise.i18n import N_
from supervise.orgs.models import Org
from supervise.staff.admin.common import (
    Form,
    bp,
    changes_between,
    commit_change,
    form_page,
    get_in_scope_or_404,
    intake_warnings,
    no_store,
    org_in_scope,
    org_or_404,
    refused,
    saved,
    subtree_orgs,
    toggle_active,
)
from supervise.staff.auth import end_sessions, staff_required
from supervise.staff.models import ROLE_ORDER, Role, User
from supervise.staff.services import (
    MIN_PASSWORD,
    ROLE_LABELS,
    active_tokens,
    check_password_policy,
    check_roles_fit,
    create_user,
    parse_roles,
    revoke_tokens,
)
from supervise.staff.twofactor import services as twofactor

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
ROLES = [r.value for r in ROLE_ORDER]


def role_names() -> dict[str, str]:
    """Each role's label in the request's language, for the admin pages."""
    return {role: _(label) for role, label in ROLE_LABELS.items()}


def _roles(form: Form, org: Org) -> list[str]:
    """The posted roles (one checkbox each, `role` repeated; a single `role`, or one with commas,
    from an older page works too), checked to exist and to fit the org (DESIGN.md §2a): intake and
    review at a discipline body, a leader at a unit."""
    posted = [part for value in request.form.getlist("role") for part in value.split(",") if part.strip()]
    unknown = [r.strip() for r in posted if r.strip() not in ROLES]
    if not posted:
        form.errors["role"] = _("请至少选择一个角色")
    elif unknown:
        form.errors["role"] = _("没有这个角色：%(roles)s", roles=_("、").join(unknown))
    else:
        try:
            roles = parse_roles(posted)
            check_roles_fit(org, roles)
            return roles
        except InvalidInput as exc:
            form.errors["role"] = _(exc.details["role"][0])
    return []


def _new_password() -> str:
    return secrets.token_urlsafe(12)


def _password_shown(user: User, password: str, created: bool) -> ResponseReturnValue:
    # Shown here once, never stored in clear: the page is not cached and there is no way back to it.
    return no_store(
        make_response(
            render_template(
                "staff/admin/password_shown.html",
                user=user,
                password=password,
                created=created,
                role_names=role_names(),
            )
        )
    )


@bp.get("/users")
@staff_required(Role.ADMIN)
def users(errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    rows = db.session.scalars(
        select(User).join(User.org).where(org_in_scope()).order_by(Org.path, User.username)
    ).all()
    return form_page(
        "staff/admin/users.html",
        errors,
        status,
        rows=rows,
        orgs=subtree_orgs(),
        roles=ROLES,
        role_names=role_names(),
        tokens={u.id: active_tokens(db.session, u) for u in rows},
        two_factor_on=twofactor.enabled_among([u.id for u in rows]),
        min_password=MIN_PASSWORD,
        warnings=intake_warnings(),
    )


@bp.post("/users")
@staff_required(Role.ADMIN)
def user_create() -> ResponseReturnValue:
    form = Form()
    username = form.identifier(
        "username",
        N_("用户名"),
        USERNAME_RE,
        N_("用户名为 3–64 位字母、数字、. _ -，以字母或数字开头"),
        User.username,
    )
    display_name = form.text("display_name", N_("姓名"), 100, required=False)
    email = form.email()
    org = org_or_404(request.form.get("org"))
    roles = _roles(form, org)
    password = request.form.get("password", "")
    if password:
        try:
            check_password_policy(password, username or "")
        except InvalidInput as exc:
            form.errors["password"] = _("%(problem)s；留空则自动生成", problem=_(exc.message))
    if form.errors:
        return users(form.errors, 422)
    user, password = create_user(
        db.session,
        username=username,
        org=org,
        role=roles,
        password=password or _new_password(),
        display_name=display_name,
        must_change=True,
    )
    user.email = email
    commit_change(
        "user.create",
        target=username,
        org=org.code,
        roles=roles,
        email=email,
        password="given" if request.form.get("password") else "generated",
    )
    return _password_shown(user, password, created=True)


@bp.post("/users/<int:user_id>/active")
@staff_required(Role.ADMIN)
def user_active(user_id: int) -> ResponseReturnValue:
    user = get_in_scope_or_404(User, user_id)
    return toggle_active(
        user,
        "admin.users",
        _("账号 %(username)s", username=user.username),
        "user",
        verbs=("enable", "disable"),
        refuse_disable=_("不能停用自己的账号") if user.id == current_user.id else None,
        # Signed-in browsers are out at their next request.
        on_disable=lambda: end_sessions(user),
        target=user.username,
    )


@bp.post("/users/<int:user_id>/password")
@staff_required(Role.ADMIN)
def user_password(user_id: int) -> ResponseReturnValue:
    user = get_in_scope_or_404(User, user_id)
    if user.id == current_user.id:
        return refused("admin.users", _("请通过“修改密码”修改自己的密码"))
    password = _new_password()
    user.password_hash = generate_password_hash(password, current_app.config["PASSWORD_HASH_METHOD"])
    user.password_must_change = True
    end_sessions(user)
    commit_change("user.reset_password", target=user.username)
    return _password_shown(user, password, created=False)


@bp.post("/users/<int:user_id>/two-factor/reset")
@staff_required(Role.ADMIN)
def user_two_factor_reset(user_id: int) -> ResponseReturnValue:
    """重置两步验证 (a lost or replaced phone): the secret and recovery codes are gone, and so is
    every session and API token of the account, since whoever holds the phone may hold them too.
    The person sets up a new phone at their next sign-in (forced if their role requires it)."""
    user = get_in_scope_or_404(User, user_id)
    if user.id == current_user.id:
        return refused("admin.users", _("请在“账号安全”中为自己绑定新手机"))
    if request.form.get("confirm") != "yes":
        return refused("admin.users", _("请勾选确认后再重置 %(username)s 的两步验证", username=user.username))
    if not twofactor.is_enabled(user) and user.two_factor is None:
        return refused("admin.users", _("%(username)s 没有开启两步验证", username=user.username))
    twofactor.reset(user)
    end_sessions(user)
    return saved(
        "user.reset_two_factor",
        _("已重置 %(username)s 的两步验证，其登录和 API 令牌已失效", username=user.username),
        "admin.users",
        target=user.username,
    )


@bp.post("/users/<int:user_id>/tokens/<int:token_id>/revoke")
@staff_required(Role.ADMIN)
def token_revoke(user_id: int, token_id: int) -> ResponseReturnValue:
    """吊销 one of a user's API tokens (a lost laptop, an integration retired)."""
    user = get_in_scope_or_404(User, user_id)
    if not revoke_tokens(db.session, user, token_id):
        return refused("admin.users", _("该令牌不存在或已失效"))
    return saved(
        "token.revoke",
        _("已吊销 %(username)s 的一个 API 令牌", username=user.username),
        "admin.users",
        target=user.username,
        token=token_id,
    )


@bp.post("/users/<int:user_id>")
@staff_required(Role.ADMIN)
def user_update(user_id: int) -> ResponseReturnValue:
    """Change a user's display name, e-mail address, roles and org."""
    user = get_in_scope_or_404(User, user_id)
    form = Form()
    display_name = form.text("display_name", N_("姓名"), 100, required=False) or user.display_name
    # An empty field clears the address; a form without the field (an older page) leaves it alone.
    email = form.email() if "email" in request.form else user.email
    org = org_or_404(request.form.get("org"))
    if user.id == current_user.id and org.id != user.org_id:
        form.errors["role"] = _("不能修改自己的角色或单位")
    roles = _roles(form, org) if "role" not in form.errors else []
    # Whoever edits themselves keeps exactly their roles: no admin locks themselves out.
    if user.id == current_user.id and "role" not in form.errors and set(roles) != user.roles:
        form.errors["role"] = _("不能修改自己的角色或单位")
    if form.errors:
        return refused("admin.users", *form.errors.values())
    changes = changes_between(
        {
            "display_name": user.display_name,
            "email": user.email,
            "roles": user.role_list,
            "org": user.org.code,
        },
        {"display_name": display_name, "email": email, "roles": roles, "org": org.code},
    )
    if changes:
        user.display_name, user.email, user.org = display_name, email, org
        user.set_roles(roles)
        commit_change("user.update", target=user.username, changes=changes)
    flash(_("账号 %(username)s 已保存", username=user.username))
    return redirect(url_for("admin.users"))
