"""系统管理 → Open311 接入: the clients allowed to call /open311/v2, each with its api_key.

System admins only (a key files cases into any body's queue of its org's subtree). The key is shown
once, on the page right after creating it, and never again (only its SHA-256 is kept); revoking
stops it at once. Every change commits with its `admin_change` audit row; forms carry CSRF tokens.
"""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from supervise.cases.labels import CHANNEL_LABELS
from supervise.extensions import db
from supervise.i18n import N_
from supervise.open311 import services
from supervise.open311.models import CLIENT_CHANNELS, Open311Client
from supervise.staff.admin.common import (
    Form,
    commit_change,
    form_page,
    no_store,
    org_or_404,
    subtree_orgs,
    system_admin_required,
)
from supervise.staff.auth import staff_required
from supervise.staff.models import Role

bp = Blueprint("open311_admin", __name__, url_prefix="/staff/admin/open311")


def _page(errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    return form_page(
        "staff/admin/open311.html",
        errors,
        status,
        clients=services.clients(),
        orgs=subtree_orgs(),
        channels=[(c.value, CHANNEL_LABELS[c.value]) for c in CLIENT_CHANNELS],
    )


@bp.get("/")
@staff_required(Role.ADMIN)
@system_admin_required
def clients() -> ResponseReturnValue:
    return _page()


@bp.post("/")
@staff_required(Role.ADMIN)
@system_admin_required
def create() -> ResponseReturnValue:
    form = Form()
    name = form.text("name", N_("接入方名称"), 100)
    channel = form.choice("channel", [c.value for c in CLIENT_CHANNELS], N_("请选择来源渠道"))
    org = org_or_404(request.form.get("org"))
    if form.errors:
        return _page(form.errors, 422)
    verified = request.form.get("verified_callers") == "1"
    client, key = services.create_client(
        name=name, org_id=org.id, channel=channel, verified_callers=verified, created_by_id=current_user.id
    )
    # The key itself never reaches the audit log: its prefix tells it apart.
    commit_change(
        "open311.create",
        client=client.id,
        name=name,
        org=org.code,
        channel=channel,
        verified_callers=verified,
        key_prefix=client.key_prefix,
    )
    return no_store(make_response(render_template("staff/admin/open311_key.html", client=client, key=key)))


@bp.post("/<int:client_id>/revoke")
@staff_required(Role.ADMIN)
@system_admin_required
def revoke(client_id: int) -> ResponseReturnValue:
    client = db.get_or_404(Open311Client, client_id)
    if services.revoke_client(client):
        commit_change("open311.revoke", client=client.id, name=client.name, key_prefix=client.key_prefix)
    flash(_("“%(name)s”的 api_key 已停用", name=client.name))
    return redirect(url_for("open311_admin.clients"))
