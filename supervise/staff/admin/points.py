"""Supervision points of the admin's subtree, their QR codes and printable posters; renaming or moving
a point to another org, and reissuing its QR code (the old sticker then says 此码已更换)."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta

from flask import current_app, flash, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from supervise.cases.models import Category
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import local_date
from supervise.extensions import db
from supervise.i18n import N_
from supervise.intake.models import Point, PointScan, RetiredPointToken
from supervise.intake.points import reissue_token
from supervise.intake.qr import point_url, qr_png, render_poster
from supervise.orgs.models import Org
from supervise.staff.admin.common import (
    Form,
    bp,
    changes_between,
    commit_change,
    form_page,
    get_in_scope_or_404,
    org_in_scope,
    org_or_404,
    saved,
    subtree_orgs,
    toggle_active,
)
from supervise.staff.auth import staff_required
from supervise.staff.models import Role, User

SCAN_DAYS = 30


@bp.get("/points")
@staff_required(Role.ADMIN)
def points(errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    subtree = subtree_orgs()
    rows = db.session.scalars(
        select(Point)
        .join(Point.org)
        .where(org_in_scope())
        # Points of one org together, in tree order.
        .order_by(Org.path, Point.id)
    ).all()
    since = local_date(utcnow()) - timedelta(days=SCAN_DAYS - 1)
    scans = dict(
        db.session.execute(
            select(PointScan.point_id, func.sum(PointScan.count))
            .where(PointScan.day >= since, PointScan.point_id.in_([p.id for p in rows]))
            .group_by(PointScan.point_id)
        ).all()
    )
    return form_page(
        "staff/admin/points.html",
        errors,
        status,
        rows=rows,
        scans={k: int(v or 0) for k, v in scans.items()},
        orgs=subtree,
        scan_days=SCAN_DAYS,
        base_url=current_app.config["BASE_URL"],
        point_url=point_url,
    )


@bp.post("/points")
@staff_required(Role.ADMIN)
def point_create() -> ResponseReturnValue:
    form = Form()
    org = org_or_404(request.form.get("org"))
    name = form.text("name", N_("监督点名称"), 200)
    if form.errors:
        return points(form.errors, 422)
    point = Point(org=org, name=name)
    db.session.add(point)
    db.session.flush()  # the audit row names the point by its id
    return saved(
        "point.create",
        _("已创建监督点 %(name)s", name=name),
        "admin.points",
        point=point.id,
        org=org.code,
        name=name,
    )


@bp.get("/points/<int:point_id>")
@staff_required(Role.ADMIN)
def point_page(point_id: int, errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    """One point: its name and org (rename, move), its current code, and reissuing the code."""
    point = get_in_scope_or_404(Point, point_id)
    retired = db.session.scalars(
        select(RetiredPointToken)
        .where(RetiredPointToken.point_id == point.id)
        .order_by(RetiredPointToken.retired_at.desc(), RetiredPointToken.id.desc())
    ).all()
    return form_page(
        "staff/admin/points.html",
        errors,
        status,
        point=point,
        retired=retired,
        orgs=subtree_orgs(),
        base_url=current_app.config["BASE_URL"],
        point_url=point_url,
    )


@bp.post("/points/<int:point_id>")
@staff_required(Role.ADMIN)
def point_update(point_id: int) -> ResponseReturnValue:
    """Rename a point or move it to another org of the admin's scope (a unit, or a discipline body
    for its own reception room: a point belongs to the org that answers for it, DESIGN.md §2a).

    Cases already received keep the subject unit and owner they were routed to; new submissions
    route by the point's new org from the next request on (the points table is reference data)."""
    point = get_in_scope_or_404(Point, point_id)
    form = Form()
    name = form.text("name", N_("监督点名称"), 200)
    org = org_or_404(request.form.get("org"))  # outside the scope, or walled off: 404
    if not org.active and org.id != point.org_id:
        form.errors["org"] = _("%(org)s 已停用，不能把监督点移到这里", org=org.name)
    if form.errors:
        return point_page(point.id, form.errors, 422)
    changes = changes_between({"name": point.name, "org": point.org.code}, {"name": name, "org": org.code})
    if changes:
        point.name, point.org = name, org
        commit_change("point.update", point=point.id, changes=changes)
        if "org" in changes:
            flash(
                _(
                    "监督点 %(name)s 已移至 %(org)s。已收到的反映仍按原单位办理，此后的反映按新单位受理。",
                    name=name,
                    org=org.name,
                )
            )
        else:
            flash(_("监督点 %(name)s 已保存", name=name))
    return redirect(url_for("admin.point_page", point_id=point.id))


@bp.post("/points/<int:point_id>/reissue")
@staff_required(Role.ADMIN)
def point_reissue(point_id: int) -> ResponseReturnValue:
    """A new random code for the point (a sticker lost, defaced or posted in the wrong place). The
    old code keeps naming the point but takes no complaint: it shows 此码已更换 and links here."""
    point = get_in_scope_or_404(Point, point_id)
    if request.form.get("confirm") != "yes":
        return point_page(point.id, {"confirm": _("请勾选确认：重新生成后，旧二维码将停止接收反映")}, 422)
    reissue_token(point, db.session.get(User, current_user.id))
    commit_change("point.reissue", point=point.id, name=point.name)
    flash(_("已为 %(name)s 重新生成二维码。请打印新的二维码替换旧码，旧码已停止接收反映。", name=point.name))
    return redirect(url_for("admin.point_page", point_id=point.id))


@bp.post("/points/<int:point_id>/active")
@staff_required(Role.ADMIN)
def point_active(point_id: int) -> ResponseReturnValue:
    point = get_in_scope_or_404(Point, point_id)
    return toggle_active(point, "admin.points", point.name, "point", point=point.id, name=point.name)


@bp.get("/points/<int:point_id>/qr.png")
@staff_required(Role.ADMIN)
def point_qr(point_id: int) -> ResponseReturnValue:
    point = get_in_scope_or_404(Point, point_id)
    response = make_response(qr_png(point_url(current_app.config["BASE_URL"], point)))
    response.mimetype = "image/png"
    return response  # no-store, as every staff response (security.py)


def _poster_csp(html: str) -> str:
    """The poster is a standalone page with its own <style>: allow exactly that block, nothing else."""
    none = "'none'"
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"
        for block in re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.DOTALL)
    )
    return (
        f"default-src 'none'; style-src {hashes or none}; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


@bp.get("/points/<int:point_id>/poster")
@staff_required(Role.ADMIN)
def point_poster(point_id: int) -> ResponseReturnValue:
    point = get_in_scope_or_404(Point, point_id)
    categories = list(
        db.session.scalars(
            select(Category.name).where(Category.active.is_(True)).order_by(Category.sort_order, Category.id)
        )
    )
    html = render_poster(point, point_url(current_app.config["BASE_URL"], point), categories)
    response = make_response(html)
    response.headers["Content-Security-Policy"] = _poster_csp(html)
    return response
