"""Orgs of the admin's subtree: create, rename, activate and deactivate."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from supervise.extensions import db
from supervise.orgs.models import Org
from supervise.orgs.services import create_org
from supervise.staff.admin.common import (
    CODE_RE,
    ORG_KIND_LABELS,
    Form,
    bp,
    form_page,
    org_or_404,
    refused,
    saved,
    subtree_orgs,
    toggle_active,
)
from supervise.staff.auth import staff_required
from supervise.staff.models import Role


@bp.get("/orgs")
@staff_required(Role.ADMIN)
def orgs(errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    return form_page("staff/admin/orgs.html", errors, status, orgs=subtree_orgs())


@bp.post("/orgs")
@staff_required(Role.ADMIN)
def org_create() -> ResponseReturnValue:
    form = Form()
    code = form.identifier("code", "单位代码", CODE_RE, "单位代码只能包含字母、数字、- 和 _", Org.code)
    name = form.text("name", "单位名称", 200)
    kind = form.choice("kind", ORG_KIND_LABELS, "请选择单位类型")
    parent = org_or_404(request.form.get("parent"))
    if form.errors:
        return orgs(form.errors, 422)
    created = create_org(db.session, code, name, kind, parent)
    return saved(
        "org.create",
        f"已创建单位 {name}（{code}）",
        "admin.orgs",
        org=code,
        org_id=created.id,
        name=name,
        kind=kind,
        parent=parent.code,
    )


@bp.post("/orgs/<int:org_id>/rename")
@staff_required(Role.ADMIN)
def org_rename(org_id: int) -> ResponseReturnValue:
    org = org_or_404(org_id)
    form = Form()
    name = form.text("name", "单位名称", 200)
    if form.errors:
        return refused("admin.orgs", *form.errors.values())
    if name == org.name:
        return redirect(url_for("admin.orgs"))
    old, org.name = org.name, name
    return saved(
        "org.rename", f"已将 {org.code} 更名为 {name}", "admin.orgs", org=org.code, old=old, new=name
    )


@bp.post("/orgs/<int:org_id>/active")
@staff_required(Role.ADMIN)
def org_active(org_id: int) -> ResponseReturnValue:
    org = org_or_404(org_id)
    return toggle_active(
        org,
        "admin.orgs",
        org.name,
        "org",
        refuse_disable="不能停用自己所在的单位" if org.id == current_user.org_id else None,
        org=org.code,
    )
