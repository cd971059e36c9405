"""Case categories (system-wide): what a citizen picks, and the 定性 intake starts from when accepting
a case of it (DESIGN.md §2a)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from supervise.cases.labels import KIND_LABELS
from supervise.cases.models import Category
from supervise.extensions import db
from supervise.i18n import N_
from supervise.staff.admin.common import (
    CODE_RE,
    Form,
    bp,
    changes_between,
    commit_change,
    form_page,
    refused,
    saved,
    system_admin_required,
    toggle_active,
)
from supervise.staff.auth import staff_required
from supervise.staff.models import Role


def _category_fields(form: Form) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": form.text("name", N_("类别名称"), 100),
        "name_en": form.text("name_en", N_("英文名称"), 100, required=False),
    }
    kind = form.choice("default_kind", KIND_LABELS, N_("请选择默认定性"), required=False)
    fields["default_kind"] = kind or None
    raw = request.form.get("sort_order", "").strip() or "0"
    try:
        fields["sort_order"] = int(raw)
        if not -1000 <= fields["sort_order"] <= 1000:
            raise ValueError
    except ValueError:
        form.errors["sort_order"] = _("排序须为 -1000 到 1000 之间的整数")
    return fields


@bp.get("/categories")
@staff_required(Role.ADMIN)
@system_admin_required
def categories(errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    rows = db.session.scalars(select(Category).order_by(Category.sort_order, Category.id)).all()
    return form_page("staff/admin/categories.html", errors, status, rows=rows)


@bp.post("/categories")
@staff_required(Role.ADMIN)
@system_admin_required
def category_create() -> ResponseReturnValue:
    form = Form()
    code = form.identifier(
        "code", N_("类别代码"), CODE_RE, N_("类别代码只能包含字母、数字、- 和 _"), Category.code
    )
    fields = _category_fields(form)
    if form.errors:
        return categories(form.errors, 422)
    db.session.add(Category(code=code, **fields))
    return saved(
        "category.create",
        _("已创建类别 %(name)s", name=fields["name"]),
        "admin.categories",
        category=code,
        **fields,
    )


@bp.post("/categories/<int:category_id>")
@staff_required(Role.ADMIN)
@system_admin_required
def category_update(category_id: int) -> ResponseReturnValue:
    category = db.session.get(Category, category_id) or abort(404)
    form = Form()
    fields = _category_fields(form)
    if form.errors:
        return refused("admin.categories", *form.errors.values())
    changes = changes_between({key: getattr(category, key) for key in fields}, fields)
    if changes:
        for key, (_old, new) in changes.items():
            setattr(category, key, new)
        commit_change("category.update", category=category.code, changes=changes)
    flash(_("类别 %(name)s 已保存", name=category.name))
    return redirect(url_for("admin.categories"))


@bp.post("/categories/<int:category_id>/active")
@staff_required(Role.ADMIN)
@system_admin_required
def category_active(category_id: int) -> ResponseReturnValue:
    category = db.session.get(Category, category_id) or abort(404)
    return toggle_active(
        category,
        "admin.categories",
        _("类别 %(name)s", name=category.name),
        "category",
        category=category.code,
    )
