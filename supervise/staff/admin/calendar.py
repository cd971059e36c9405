"""The holiday calendar (system-wide): working days are what every deadline counts in."""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import local_date, parse_calendar_csv, rule_based_holidays
from supervise.deadlines.models import CalendarDay, CalendarYear
from supervise.deadlines.services import import_calendar_year, recompute_year
from supervise.extensions import db
from supervise.staff.admin.common import bp, record_change, system_admin_required
from supervise.staff.auth import staff_required
from supervise.staff.models import Role

MAX_CALENDAR_CSV = 256 * 1024


def _year_arg() -> tuple[int, str | None]:
    this_year = local_date(utcnow()).year
    raw = request.args.get("year", "").strip()
    if not raw:
        return this_year, None
    try:
        year = int(raw)
        if 1950 <= year <= 2200:
            return year, None
    except ValueError:
        pass
    return this_year, _("年份须为 1950–2200 之间的整数")


def _mark_official(year: int) -> None:
    row = db.session.get(CalendarYear, year)
    if row is None:
        db.session.add(CalendarYear(year=year, source="admin"))
    else:
        row.source = "admin"
        row.loaded_at = utcnow()  # also tells every process's cached calendar to rebuild


@bp.get("/calendar")
@staff_required(Role.ADMIN)
@system_admin_required
def calendar(year: int | None = None, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    if year is None:
        year, error = _year_arg()
    official = db.session.get(CalendarYear, year)
    rows = db.session.scalars(
        select(CalendarDay)
        .where(CalendarDay.day.between(date(year, 1, 1), date(year, 12, 31)))
        .order_by(CalendarDay.day)
    ).all()
    return render_template(
        "staff/admin/calendar.html",
        year=year,
        official=official,
        rows=rows,
        rule_holidays=sorted(rule_based_holidays(year).items()) if official is None else [],
        error=error,
    ), status


@bp.post("/calendar/import")
@staff_required(Role.ADMIN)
@system_admin_required
def calendar_import() -> ResponseReturnValue:
    upload = request.files.get("file")
    year_hint = request.form.get("year", type=int)
    if upload is None or not upload.filename:
        return calendar(year_hint, _("请选择要导入的 CSV 文件"), 422)
    raw = upload.read(MAX_CALENDAR_CSV + 1)
    if len(raw) > MAX_CALENDAR_CSV:
        return calendar(year_hint, _("文件过大（不超过 256 KB）"), 422)
    try:
        days = parse_calendar_csv(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return calendar(year_hint, _("文件须为 UTF-8 编码的 CSV"), 422)
    except ValueError as exc:
        return calendar(year_hint, str(exc), 422)
    years = sorted({d.year for d in days})
    if len(years) != 1:
        found = _("、").join(map(str, years)) or _("没有日期")
        return calendar(year_hint, _("文件须恰好包含一个年份的日期（发现：%(found)s）", found=found), 422)
    (year,) = years
    record_change("calendar.import", year=year, dates=len(days), file=upload.filename[:100])
    # Replaces the year's rows, marks it official, recomputes the running deadlines; commits.
    moved = import_calendar_year(year, days, source="admin")
    flash(
        _(
            "%(year)s 年节假日安排已导入（%(n)s 个日期）；%(moved)s 个在办期限已重新计算",
            year=year,
            n=len(days),
            moved=moved,
        )
    )
    return redirect(url_for("admin.calendar", year=year))


@bp.post("/calendar/day")
@staff_required(Role.ADMIN)
@system_admin_required
def calendar_day() -> ResponseReturnValue:
    try:
        day = date.fromisoformat(request.form.get("day", "").strip())
    except ValueError:
        return calendar(None, _("请填写有效的日期（YYYY-MM-DD）"), 422)
    kind = request.form.get("kind", "")
    name = request.form.get("name", "").strip()
    if kind not in ("holiday", "workday", "remove"):
        return calendar(day.year, _("请选择：节假日、调休上班或删除例外"), 422)
    if len(name) > 100:
        return calendar(day.year, _("名称不能超过 100 个字"), 422)
    if not 1950 <= day.year <= 2200:
        return calendar(None, _("年份须为 1950–2200 之间"), 422)
    year = day.year
    materialised = 0
    if db.session.get(CalendarYear, year) is None:
        # The year was computed by rule; once official only its rows count, so keep the rule's
        # holidays as rows first — otherwise one edit would silently drop every other holiday.
        for d, holiday_name in rule_based_holidays(year).items():
            if d != day:
                db.session.add(CalendarDay(day=d, kind="holiday", name=holiday_name[:100]))
                materialised += 1
    row = db.session.get(CalendarDay, day)
    old = [row.kind, row.name] if row else None
    if kind == "remove":
        if row is not None:
            db.session.delete(row)
    elif row is None:
        db.session.add(CalendarDay(day=day, kind=kind, name=name))
    else:
        row.kind, row.name = kind, name
    _mark_official(year)
    record_change(
        "calendar.day",
        day=day.isoformat(),
        old=old,
        new=None if kind == "remove" else [kind, name],
        materialised=materialised,
    )
    recompute_year(year)  # commits
    if materialised:
        flash(
            _(
                "%(day)s 已保存；%(year)s 年原按规则推算的 %(n)s 个节假日已一并写入日历",
                day=day.isoformat(),
                year=year,
                n=materialised,
            )
        )
    else:
        flash(_("%(day)s 已保存", day=day.isoformat()))
    return redirect(url_for("admin.calendar", year=year))
