"""统计分析, /staff/stats: the figures of the summary table for supervisors and admins.

Thin views: the filters are parsed by StatsQuerySchema, the figures come from
stats.services.for_reader (scoped to the reader, DESIGN.md §2a), the XLSX from stats.export.
Nothing changes on GET.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import select

from supervise.cases.labels import CHANNEL_LABELS, KIND_LABELS
from supervise.cases.models import Category
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import local_date
from supervise.downloads import ascii_part, attachment
from supervise.errors import InvalidInput
from supervise.extensions import db
from supervise.i18n import N_
from supervise.staff.auth import staff_required
from supervise.staff.models import Role
from supervise.stats import services
from supervise.stats.schemas import StatsQuerySchema

bp = Blueprint("stats", __name__, url_prefix="/staff/stats")

READERS = (Role.SUPERVISOR, Role.ADMIN)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GROUP_LABELS = {
    "child_org": N_("按单位（逐级）"),
    "subject_unit": N_("按被反映单位"),
    "category": N_("按问题类别"),
    "channel": N_("按来源渠道"),
    "kind": N_("按定性"),
}
PERIOD_LABELS = {"month": N_("月"), "quarter": N_("季度"), "year": N_("年")}


def parse_args(raw) -> dict[str, Any]:
    try:
        return StatsQuerySchema().load({k: v for k, v in raw.items() if v != ""})
    except ValidationError as exc:
        raise InvalidInput(_("统计条件不正确"), exc.messages) from None


def _figures() -> tuple[dict[str, Any], dict[str, Any]]:
    args = parse_args(request.args)
    view = services.for_reader(db.session, Actor.staff(current_user), args, local_date(utcnow()), translate=_)
    return args, view


def _labels() -> dict[str, str]:
    return {key: _(msgid) for key, msgid in services.LABELS.items()}


@bp.get("")
@staff_required(*READERS)
def index():
    args, view = _figures()
    chart = {
        "labels": _labels(),
        "rows": [
            {"label": r["label"], "received": r["received"], "on_time_rate": r["on_time_rate"]}
            for r in view["rows"][:20]
        ],
        "trend": [
            {
                "key": t["key"],
                "received": t["received"],
                "on_time_rate": t["on_time_rate"],
                "satisfaction_rate": t["satisfaction_rate"],
            }
            for t in view["trend"]
        ],
    }
    categories = db.session.execute(select(Category.code, Category.name).order_by(Category.sort_order)).all()
    query = {k: v for k, v in request.args.items() if v}
    return render_template(
        "staff/stats.html",
        view=view,
        args=args,
        query=query,
        chart=chart,
        labels=_labels(),
        columns=services.COLUMNS,
        rates=services.RATES,
        footnotes=[_(n) for n in services.FOOTNOTES],
        categories=categories,
        channels=CHANNEL_LABELS,
        kinds=KIND_LABELS,
        groups=GROUP_LABELS,
        periods=PERIOD_LABELS,
    )


@bp.get("/export.xlsx")
@staff_required(*READERS)
def download_xlsx():
    from supervise.stats.export import to_xlsx

    _args, view = _figures()
    title = _("统计分析 · %(org)s · %(period)s", org=view["org"]["name"], period=view["period"]["label"])
    headers = {
        "title": title,
        "subtitle": _("数据更新于 %(time)s（UTC）", time=view["refreshed_at"] or "—"),
        "group": _(GROUP_LABELS[view["group"]]),
        "total": _("合计"),
        "trend": _("趋势"),
        "trend_key": _("时间"),
        "hot_spots": _("热点单位（收件最多）"),
        "unit": _("单位"),
        "notes": _("说明"),
    }
    body = to_xlsx(view, _labels(), headers, [_(n) for n in services.FOOTNOTES])
    name = f"统计分析-{view['period']['label']}-{view['org']['name']}.xlsx"
    code = ascii_part(view["org"]["code"])
    return attachment(body, name, f"stats-{view['period']['label']}-{code}.xlsx", XLSX)
