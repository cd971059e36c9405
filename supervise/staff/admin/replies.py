"""Reply templates (常用回复) of the admin's subtree: texts handlers reuse as a case's feedback."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from supervise.extensions import db
from supervise.i18n import N_
from supervise.orgs.models import Org
from supervise.staff.admin.common import (
    Form,
    bp,
    form_page,
    get_in_scope_or_404,
    org_in_scope,
    org_or_404,
    saved,
    subtree_orgs,
)
from supervise.staff.auth import staff_required
from supervise.staff.models import ReplyTemplate, Role


def _template_or_404(template_id: int) -> ReplyTemplate:
    # A template has no relationship to its org, only the id.
    return get_in_scope_or_404(ReplyTemplate, template_id, lambda row: db.session.get(Org, row.org_id))


def _saved(what: str, message: str, row: ReplyTemplate, org: Org, **detail: str) -> ResponseReturnValue:
    return saved(
        f"template.{what}",
        message,
        "admin.templates",
        template=row.id,
        org=org.code,
        **detail,
        title=row.title,
    )


def _template_fields(form: Form) -> tuple[Org, str, str]:
    org = org_or_404(request.form.get("org"))
    title = form.text("title", N_("标题"), 100)
    body = form.text("body", N_("回复内容"), 5000)
    return org, title, body


@bp.get("/templates")
@staff_required(Role.ADMIN)
def templates(errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    rows = db.session.execute(
        select(ReplyTemplate, Org)
        .join(Org, Org.id == ReplyTemplate.org_id)
        .where(org_in_scope())
        .order_by(Org.path, ReplyTemplate.title, ReplyTemplate.id)
    ).all()
    return form_page("staff/admin/templates.html", errors, status, rows=rows, orgs=subtree_orgs())


@bp.post("/templates")
@staff_required(Role.ADMIN)
def template_create() -> ResponseReturnValue:
    form = Form()
    org, title, body = _template_fields(form)
    if form.errors:
        return templates(form.errors, 422)
    row = ReplyTemplate(org_id=org.id, title=title, body=body)
    db.session.add(row)
    db.session.flush()  # the audit row names the template by its id
    return _saved("create", _("已添加常用回复“%(title)s”", title=title), row, org)


@bp.get("/templates/<int:template_id>")
@staff_required(Role.ADMIN)
def template_edit(
    template_id: int, errors: dict[str, str] | None = None, status: int = 200
) -> ResponseReturnValue:
    row = _template_or_404(template_id)
    return render_template(
        "staff/admin/template_edit.html",
        row=row,
        orgs=subtree_orgs(),
        errors=errors or {},
        # The stored text, unless a refused edit is shown again with what was typed.
        form=request.form if errors else None,
    ), status


@bp.post("/templates/<int:template_id>")
@staff_required(Role.ADMIN)
def template_update(template_id: int) -> ResponseReturnValue:
    row = _template_or_404(template_id)
    form = Form()
    org, title, body = _template_fields(form)
    if form.errors:
        return template_edit(template_id, form.errors, 422)
    old_org = db.session.get(Org, row.org_id)
    row.org_id, row.title, row.body = org.id, title, body
    return _saved("update", _("常用回复“%(title)s”已保存", title=title), row, org, old_org=old_org.code)


@bp.post("/templates/<int:template_id>/delete")
@staff_required(Role.ADMIN)
def template_delete(template_id: int) -> ResponseReturnValue:
    row = _template_or_404(template_id)
    org = db.session.get(Org, row.org_id)
    db.session.delete(row)
    return _saved("delete", _("常用回复“%(title)s”已删除", title=row.title), row, org)
