"""Supervision points of the admin's subtree, their QR codes and printable posters."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta

from flask import current_app, make_response, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import func, select

from supervise.cases.models import Category
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import local_date
from supervise.extensions import db
from supervise.i18n import N_
from supervise.intake.models import Point, PointScan
from supervise.intake.qr import point_url, qr_png, render_poster
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
    toggle_active,
)
from supervise.staff.auth import staff_required
from supervise.staff.models import Role

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
