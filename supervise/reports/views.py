"""Staff pages of the weekly overdue-case report (每周超期件通报), /staff/reports.

Supervisors and admins read the stored reports of their subtree (or of an org below it, ?org=),
any stored version (?version=), as a page with charts or as XLSX / CSV. Only an admin of the top
org rebuilds a week: a new version, the old ones stay, audited in the same transaction.

Thin views: the figures come from the stored snapshot (reports.weekly.view_for), downloads from
reports.export; nothing changes on GET and every POST is CSRF-protected (Flask-WTF).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from supervise.cases.workflow import Actor
from supervise.downloads import ascii_part, attachment
from supervise.errors import InvalidInput, NotFound
from supervise.extensions import db
from supervise.reports import services, weekly
from supervise.reports.models import WeeklyReport
from supervise.reports.weekly import Week
from supervise.staff import audit
from supervise.staff.auth import is_system_admin, staff_required
from supervise.staff.models import Role, User

bp = Blueprint("reports", __name__, url_prefix="/staff/reports")

READERS = (Role.SUPERVISOR, Role.ADMIN)
MAX_REASON = 200  # weekly_reports.reason
MAX_DEPTH_CLASS = 5  # .depth-0 … .depth-5 in staff.css
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The per-org table and the headline: counts as stored, the two rates as percentages.
RATES = ("on_time_rate", "satisfaction_rate")
TABLE_COLUMNS = (
    "received",
    "accepted",
    "responded_on_time",
    "responded_late",
    "on_time_rate",
    "open_overdue",
    "overdue_working_days",
    "due_soon",
    "escalated_level1",
    "escalated_level2",
    "reopened",
    "satisfaction_rate",
)
# The headline: every figure, each rate next to the counts it comes from.
HEADLINE = (*TABLE_COLUMNS[:-1], "rated", "satisfied", "satisfaction_rate")


def _actor() -> Actor:
    return Actor.staff(current_user)


# -- loading -------------------------------------------------------------------------------------------


def _week_or_404(text: str) -> Week:
    try:
        return Week.parse(text)
    except ValueError:
        abort(404)


def _stored_or_404(week: Week) -> WeeklyReport:
    """The requested version (?version=N) of the week's report, or the latest one."""
    raw = request.args.get("version", "").strip()
    if raw and not raw.isdigit():
        raise NotFound(_("%(week)s 的通报没有该版本", week=week.label))
    return services.stored(week, int(raw) if raw else None)


def _labels() -> dict[str, str]:
    """The figures' names in the reader's language."""
    return {key: _(msgid) for key, msgid in weekly.LABELS.items()}


def _footnotes(view: dict[str, Any]) -> list[str]:
    """The stored footnotes in the reader's language while they are in the current wording; a version
    stored with other wording is shown as it was recorded."""
    thresholds = view["thresholds"]
    if view["footnotes"] != weekly.footnotes(thresholds):
        return view["footnotes"]
    return weekly.footnotes(thresholds, [_(note) for note in weekly.FOOTNOTES])


def _view(report: WeeklyReport) -> dict[str, Any]:
    return services.scoped_view(report, _actor(), request.args.get("org", "").strip() or None)


def _version_rows(week: Week) -> list[Any]:
    """Every version of a week, newest first, without the (large) figures."""
    return list(
        db.session.execute(
            select(
                WeeklyReport.version,
                WeeklyReport.built_at,
                WeeklyReport.reason,
                User.display_name.label("built_by"),
            )
            .outerjoin(User, User.id == WeeklyReport.built_by_id)
            .where(WeeklyReport.week == week.label)
            .order_by(WeeklyReport.version.desc())
        )
    )


# -- pages ---------------------------------------------------------------------------------------------


@bp.get("/")
@staff_required(*READERS)
def index():
    """Every week with a stored report, newest first, each with its versions."""
    rows = db.session.execute(
        select(
            WeeklyReport.week,
            WeeklyReport.version,
            WeeklyReport.built_at,
            WeeklyReport.reason,
            User.display_name.label("built_by"),
        )
        .outerjoin(User, User.id == WeeklyReport.built_by_id)
        .order_by(WeeklyReport.week.desc(), WeeklyReport.version.desc())
    )
    weeks: list[dict[str, Any]] = []
    for row in rows:
        if not weeks or weeks[-1]["label"] != row.week:
            week = Week.parse(row.week)
            weeks.append({"label": week.label, "monday": week.monday, "sunday": week.sunday, "versions": []})
        weeks[-1]["versions"].append(row)
    return render_template("staff/reports.html", weeks=weeks)


@bp.get("/<week>")
@staff_required(*READERS)
def report(week: str):
    return _report_page(_week_or_404(week))


def _report_page(week: Week, errors: dict[str, str] | None = None, status: int = 200):
    stored = _stored_or_404(week)
    view = _view(stored)
    versions = _version_rows(week)
    by_id = {o["id"]: o for o in stored.data["orgs"]}
    top = by_id[view["org"]["id"]]
    chain, cursor = [], top
    while cursor is not None and cursor["id"] != current_user.org_id:  # up to the user's own org
        cursor = by_id.get(cursor["parent_id"])
        if cursor is not None:
            chain.insert(0, cursor)
    breadcrumb = chain if cursor is not None else []
    explicit_version = stored.version if request.args.get("version") else None
    return render_template(
        "staff/reports_week.html",
        week=week,
        view=view,
        stored=stored,
        versions=versions,
        latest_version=versions[0].version,
        explicit_version=explicit_version,
        breadcrumb=breadcrumb,
        org_rows=[{**o, "indent": min(o["depth"] - top["depth"], MAX_DEPTH_CLASS)} for o in view["orgs"]],
        flagged=[o for o in view["orgs"] if o["flags"]],
        chart=_chart_data(view, top),
        labels=_labels(),
        footnotes=_footnotes(view),
        headline=HEADLINE,
        columns=TABLE_COLUMNS,
        rates=RATES,
        builder=next((v.built_by for v in versions if v.version == stored.version), None),
        system_admin=is_system_admin(current_user),
        errors=errors or {},
        max_reason=MAX_REASON,
    ), status


def _chart_data(view: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """What static/js/report-charts.js draws, embedded as JSON (the CSP allows no inline script)."""
    bars = []
    if top["own"]["responded_on_time"] or top["own"]["responded_late"]:
        bars.append({"name": _("%(org)s（本级）", org=top["name"]), "figures": top["own"]})
    bars += [{"name": o["name"], "figures": o["total"]} for o in view["orgs"] if o["parent_id"] == top["id"]]
    labels = _labels()
    return {
        "labels": {
            k: labels[k] for k in ("open_overdue", "on_time_rate", "responded_on_time", "responded_late")
        },
        "target": view["thresholds"]["on_time_rate"],
        "trend": view["trend"],
        "children": [
            {
                "name": b["name"],
                "on_time": b["figures"]["responded_on_time"],
                "late": b["figures"]["responded_late"],
            }
            for b in bars
        ],
        "has_children": any(o["parent_id"] == top["id"] for o in view["orgs"]),
    }


# -- downloads -----------------------------------------------------------------------------------------


@bp.get("/<week>.xlsx")
@staff_required(*READERS)
def download_xlsx(week: str):
    from supervise.reports import export

    view = _view(_stored_or_404(_week_or_404(week)))
    return _download(export.to_xlsx(view), view, "xlsx", XLSX)


@bp.get("/<week>.csv")
@staff_required(*READERS)
def download_csv(week: str):
    from supervise.reports import export

    view = _view(_stored_or_404(_week_or_404(week)))
    return _download(export.to_csv(view), view, "csv", "text/csv; charset=utf-8")


def _download(body: bytes, view: dict[str, Any], ext: str, mimetype: str):
    """An attachment named 每周超期件通报-2026-W47-城关镇-v1.xlsx (RFC 6266 filename*, ASCII fallback)."""
    name = f"每周超期件通报-{view['week']}-{view['org']['name']}-v{view['version']}.{ext}"
    code = ascii_part(view["org"]["code"])
    return attachment(body, name, f"weekly-report-{view['week']}-{code}-v{view['version']}.{ext}", mimetype)


# -- rebuilding ----------------------------------------------------------------------------------------


@bp.post("/<week>/rebuild")
@staff_required(Role.ADMIN)
def rebuild(week: str):
    """A new version of the week's report from the cases as they are now; the old versions stay."""
    if not is_system_admin(current_user):
        audit.record("access_denied", user=current_user, detail={"path": request.path})
        db.session.commit()
        abort(403)
    parsed = _week_or_404(week)
    reason = request.form.get("reason", "").strip()
    if not reason or len(reason) > MAX_REASON:
        message = _("请填写重新生成的理由（%(n)s 字以内）", n=MAX_REASON)
        if services.latest(parsed) is None:
            raise InvalidInput(message, {"reason": [message]})
        return _report_page(parsed, errors={"reason": message}, status=422)
    try:
        # Stores the version and its audit row in one commit.
        built = services.build(parsed, by=db.session.get(User, current_user.id), reason=reason)
    except InvalidInput as exc:  # the week has not ended
        db.session.rollback()
        flash(_(exc.message), "error")
        return redirect(url_for("reports.index"))
    except IntegrityError:  # another admin rebuilt the same week at the same moment
        db.session.rollback()
        flash(_("另一位管理员刚刚重新生成了该周通报，请查看最新版本后再决定"), "error")
        return redirect(url_for("reports.report", week=parsed.label))
    flash(
        _(
            "已重新生成 %(week)s 通报第 %(version)s 版，原有版本保留",
            week=parsed.label,
            version=built.version,
        )
    )
    return redirect(url_for("reports.report", week=parsed.label, version=built.version))
