"""Orgs of the admin's subtree: create, rename, activate and deactivate; who supervises a unit, and
whether a small discipline body may publish what its one person drafted (DESIGN.md §2a)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from supervise.cases.labels import ORG_KIND_LABELS
from supervise.extensions import db
from supervise.i18n import N_
from supervise.orgs.models import BODY_KINDS, Org
from supervise.orgs.routing import OrgTree
from supervise.orgs.services import create_org
from supervise.robots import views as _robot_views  # noqa: F401  (an org's 群机器人 section: its routes)
from supervise.staff.admin.common import (
    CODE_RE,
    Form,
    admin_at_body,
    bp,
    form_page,
    intake_warnings,
    org_or_404,
    refused,
    saved,
    subtree_orgs,
    toggle_active,
)
from supervise.staff.auth import staff_required
from supervise.staff.models import Role

DEFAULT_SUPERVISOR_LABEL = N_("按层级（最近的上级纪检监察机构）")


def _creatable_kinds() -> dict[str, str]:
    """The kinds this admin may create: all of them at a body; at a unit only units, since a body
    below a unit is beyond its admin's reach (DESIGN.md §2a)."""
    if admin_at_body():
        return dict(ORG_KIND_LABELS)
    return {kind: label for kind, label in ORG_KIND_LABELS.items() if kind not in BODY_KINDS}


@bp.get("/orgs")
@staff_required(Role.ADMIN)
def orgs(errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    rows = subtree_orgs()
    set_supervisors = admin_at_body()
    tree = OrgTree.load(db.session)
    # Who supervises each unit now, whether chosen or by the tree (shown to body admins only).
    effective = {o.id: tree.supervising_body(o.id) for o in rows if not o.is_body} if set_supervisors else {}
    shown = set(effective.values())
    names = dict(db.session.execute(select(Org.id, Org.name).where(Org.id.in_(shown))).all())
    return form_page(
        "staff/admin/orgs.html",
        errors,
        status,
        orgs=rows,
        kinds=_creatable_kinds(),
        set_supervisors=set_supervisors,
        bodies=[o for o in rows if o.is_body and o.active],
        effective=effective,
        effective_names=names,
        default_supervisor_label=_(DEFAULT_SUPERVISOR_LABEL),
        warnings=intake_warnings(),
    )


@bp.post("/orgs")
@staff_required(Role.ADMIN)
def org_create() -> ResponseReturnValue:
    form = Form()
    code = form.identifier(
        "code", N_("单位代码"), CODE_RE, N_("单位代码只能包含字母、数字、- 和 _"), Org.code
    )
    name = form.text("name", N_("单位名称"), 200)
    kind = form.choice("kind", _creatable_kinds(), N_("请选择单位类型"))
    parent = org_or_404(request.form.get("parent"))
    if form.errors:
        return orgs(form.errors, 422)
    created = create_org(db.session, code, name, kind, parent)
    return saved(
        "org.create",
        _("已创建单位 %(name)s（%(code)s）", name=name, code=code),
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
    name = form.text("name", N_("单位名称"), 200)
    if form.errors:
        return refused("admin.orgs", *form.errors.values())
    if name == org.name:
        return redirect(url_for("admin.orgs"))
    old, org.name = org.name, name
    return saved(
        "org.rename",
        _("已将 %(code)s 更名为 %(name)s", code=org.code, name=name),
        "admin.orgs",
        org=org.code,
        old=old,
        new=name,
    )


MAX_POPULATION = 100_000_000


@bp.post("/orgs/<int:org_id>/population")
@staff_required(Role.ADMIN)
def org_population(org_id: int) -> ResponseReturnValue:
    """人口 of a unit, for the assessment's complaints per 1,000 residents; empty: not set."""
    org = org_or_404(org_id)
    raw = request.form.get("population", "").strip().replace(",", "")
    if raw and (not raw.isdigit() or int(raw) > MAX_POPULATION):
        return refused("admin.orgs", _("人口须为 0 到 %(n)s 之间的整数，或留空", n=MAX_POPULATION))
    population = int(raw) if raw else None
    if population == org.population:
        return redirect(url_for("admin.orgs"))
    old, org.population = org.population, population
    return saved(
        "org.population",
        _("%(org)s 的人口已设为 %(n)s", org=org.name, n=population if population is not None else _("未填")),
        "admin.orgs",
        org=org.code,
        old=old,
        new=population,
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
        refuse_disable=_("不能停用自己所在的单位") if org.id == current_user.org_id else None,
        org=org.code,
    )


@bp.post("/orgs/<int:org_id>/supervisor")
@staff_required(Role.ADMIN)
def org_supervisor(org_id: int) -> ResponseReturnValue:
    """Which discipline body supervises a unit: one chosen (a 派驻组), or none for the tree's own
    (the nearest body at or above it). A unit's admin may not choose who supervises it."""
    org = org_or_404(org_id)
    if not admin_at_body():
        return refused("admin.orgs", _("只有纪检监察机构的管理员可以设置监督机构"))
    if org.is_body:
        return refused("admin.orgs", _("%(org)s 是纪检监察机构，不设监督机构", org=org.name))
    raw = request.form.get("supervising_body", "").strip()
    body = org_or_404(raw) if raw else None  # out of the admin's scope: as if absent
    if body is not None and body.id != org.supervising_body_id:
        if not body.is_body:
            return refused("admin.orgs", _("%(org)s 不是纪检监察机构，不能作为监督机构", org=body.name))
        if not body.active:
            return refused("admin.orgs", _("%(org)s 已停用，不能作为监督机构", org=body.name))
    new_id = body.id if body is not None else None
    if new_id == org.supervising_body_id:
        return redirect(url_for("admin.orgs"))
    old = org.supervising_body
    org.supervising_body = body
    return saved(
        "org.supervisor",
        _(
            "%(org)s 的监督机构已设为 %(body)s",
            org=org.name,
            body=body.name if body else _(DEFAULT_SUPERVISOR_LABEL),
        ),
        "admin.orgs",
        org=org.code,
        old=old.code if old else None,
        new=body.code if body else None,
    )


@bp.post("/orgs/<int:org_id>/self-publish")
@staff_required(Role.ADMIN)
def org_self_publish(org_id: int) -> ResponseReturnValue:
    """四眼原则's exception for a one-person office: whoever drafts an answer may publish it too."""
    org = org_or_404(org_id)
    if not org.is_body:
        return refused("admin.orgs", _("%(org)s 不是纪检监察机构，不发布答复", org=org.name))
    allowed = request.form.get("allowed") == "1"
    if org.self_publish_allowed != allowed:
        org.self_publish_allowed = allowed
        return saved(
            "org.self_publish",
            _("%(org)s：已允许一人拟稿并发布", org=org.name)
            if allowed
            else _("%(org)s：已取消一人拟稿并发布", org=org.name),
            "admin.orgs",
            org=org.code,
            allowed=allowed,
        )
    flash(
        _("%(org)s：已允许一人拟稿并发布", org=org.name)
        if allowed
        else _("%(org)s：未允许一人拟稿并发布", org=org.name)
    )
    return redirect(url_for("admin.orgs"))
