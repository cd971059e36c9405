"""The admin overview: links to the sections, a warning while deadlines are provisional, and one
for each discipline body nobody can receive at."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from supervise.deadlines.services import provisional_deadlines
from supervise.extensions import db
from supervise.staff.admin.common import bp, intake_warnings
from supervise.staff.auth import is_system_admin, staff_required
from supervise.staff.models import Role


@bp.get("/")
@staff_required(Role.ADMIN)
def index() -> ResponseReturnValue:
    system_admin = is_system_admin(current_user)
    provisional = provisional_deadlines(db.session) if system_admin else (0, [])
    return render_template(
        "staff/admin/index.html",
        system_admin=system_admin,
        provisional=provisional,
        warnings=intake_warnings(),
    )
