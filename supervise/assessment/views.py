"""单位考核, /staff/assessment: the ranked scores of the units in the reader's scope, and the XLSX
for the organisation department.

Thin views: the query is parsed by AssessmentQuerySchema, the scores come from
assessment.services.for_reader (scoped to the reader: supervisors and admins of discipline bodies
only, DESIGN.md §2a), the XLSX from assessment.export. Nothing changes on GET.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError

from supervise.assessment import export, services
from supervise.assessment.schemas import AssessmentQuerySchema
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import local_date
from supervise.downloads import attachment
from supervise.errors import InvalidInput
from supervise.extensions import db
from supervise.staff.auth import staff_required
from supervise.staff.models import Role

bp = Blueprint("assessment", __name__, url_prefix="/staff/assessment")

READERS = (Role.SUPERVISOR, Role.ADMIN)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _result() -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        args = AssessmentQuerySchema().load({k: v for k, v in request.args.items() if v != ""})
    except ValidationError as exc:
        raise InvalidInput(_("考核期不正确"), exc.messages) from None
    result = services.for_reader(
        db.session,
        Actor.staff(current_user),
        current_app.config,
        args["period"],
        args["which"],
        local_date(utcnow()),
    )
    return args, result


def _title(result: dict[str, Any]) -> str:
    kind = _(services.PERIOD_KINDS[result["period"]["kind"]])
    return _("单位考核得分 · %(period)s%(kind)s", period=result["period"]["label"], kind=kind)


@bp.get("")
@staff_required(*READERS)
def index():
    args, result = _result()
    return render_template(
        "staff/assessment.html",
        result=result,
        args=args,
        title=_title(result),
        headers=export.headers(_),
        parts=services.PARTS,
        periods=services.PERIOD_KINDS,
        footnotes=services.footnotes(result, _),
        value_text=lambda key, part: export.value_text(key, part, _),
        points_text=export.points_text,
        kind_text=lambda kind: export.kind_text(kind, _),
    )


@bp.get("/export.xlsx")
@staff_required(*READERS)
def download_xlsx():
    _args, result = _result()
    title = _title(result)
    body = export.to_xlsx(result, title, _)
    label = result["period"]["label"]
    return attachment(body, f"单位考核-{label}.xlsx", f"assessment-{label}.xlsx", XLSX)
