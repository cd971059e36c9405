"""Admin pages (/staff/admin): orgs, points, categories, users, the holiday calendar, settings, replies,
and the outbox's dead letters.

Every view is for admins only. An admin sees and edits the subtree of their own org (anything else
is 404, as if it did not exist); the system-wide sections (categories, the calendar, settings, dead
letters) are for admins of a top-level org. Every POST is a CSRF-protected form, nothing changes on
GET, and every change is one transaction together with its `admin_change` audit row.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import UTC, date, timedelta
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select, update
from werkzeug.security import generate_password_hash

from supervise.cases.models import Case, Category
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import local_date, parse_calendar_csv, rule_based_holidays
from supervise.deadlines.models import CalendarDay, CalendarYear
from supervise.deadlines.services import import_calendar_year, provisional_deadlines, recompute_year
from supervise.extensions import db
from supervise.intake.models import Point, PointScan
from supervise.intake.qr import point_url, qr_png, render_poster
from supervise.notify.models import OutboxMessage
from supervise.orgs.models import Org, OrgKind
from supervise.orgs.services import create_org
from supervise.queueing import QUEUE_NAMES, enqueue_outbox, redis_connection
from supervise.settings import DEADLINE_SETTINGS, Setting, deadline_settings, set_value
from supervise.staff import audit
from supervise.staff.auth import end_sessions, is_system_admin, staff_required
from supervise.staff.models import ReplyTemplate, Role, User
from supervise.staff.services import create_user

__all__ = ["Setting", "bp"]  # Setting: importing this module registers the model

bp = Blueprint("admin", __name__, url_prefix="/staff/admin")

ORG_KIND_LABELS = {
    OrgKind.COMMISSION.value: "纪委监委",
    OrgKind.DEPARTMENT.value: "部门",
    OrgKind.TOWNSHIP.value: "乡镇/街道",
    OrgKind.VILLAGE.value: "村/社区",
}
CALENDAR_KIND_LABELS = {"holiday": "节假日（放假）", "workday": "调休上班"}
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
# A shape check only (one @, a dot in the domain, no spaces): the mail server is the real judge.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254  # RFC 5321's limit for a path, and the column's length
MIN_PASSWORD = 10
SCAN_DAYS = 30
DEAD_LETTERS_SHOWN = 200
# The drain re-enqueues pending rows every minute: one still pending after this is stuck somewhere.
STALE_PENDING = timedelta(minutes=10)
MAX_CALENDAR_CSV = 256 * 1024


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"org_kind_labels": ORG_KIND_LABELS, "calendar_kind_labels": CALENDAR_KIND_LABELS}


# -- helpers ----------------------------------------------------------------------------------------


def _me() -> User:
    return db.session.get(User, current_user.id)


def _scope_path() -> str:
    return current_user.org.path


def _in_scope(org: Org | None) -> bool:
    return org is not None and org.path.startswith(_scope_path())


def _subtree_orgs() -> list[Org]:
    return list(
        db.session.scalars(
            select(Org).where(Org.path.startswith(_scope_path(), autoescape=True)).order_by(Org.path)
        )
    )


def _org_or_404(org_id: Any) -> Org:
    try:
        org = db.session.get(Org, int(org_id))
    except (TypeError, ValueError):
        org = None
    if not _in_scope(org):
        abort(404)
    return org


def _point_or_404(point_id: int) -> Point:
    point = db.session.get(Point, point_id)
    if point is None or not _in_scope(point.org):
        abort(404)
    return point


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or not _in_scope(user.org):
        abort(404)
    return user


def _template_or_404(template_id: int) -> ReplyTemplate:
    row = db.session.get(ReplyTemplate, template_id)
    if row is None or not _in_scope(db.session.get(Org, row.org_id)):
        abort(404)
    return row


def _changed(what: str, **detail: Any) -> None:
    """The audit row of an admin change, in the change's own transaction."""
    audit.record("admin_change", user=_me(), detail={"what": what, **detail})


def _text(errors: dict[str, str], name: str, label: str, max_len: int, required: bool = True) -> str:
    value = request.form.get(name, "").strip()
    if required and not value:
        errors[name] = f"请填写{label}"
    elif len(value) > max_len:
        errors[name] = f"{label}不能超过 {max_len} 个字"
    return value


def _flag() -> bool:
    """The `active` field of an activate/deactivate form."""
    return request.form.get("active") == "1"


def system_admin_required(view):
    """For system-wide sections: only admins of a top-level org (others: 403, audited)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not is_system_admin(current_user):
            audit.record(
                "access_denied", user=current_user, detail={"path": request.path, "why": "not system admin"}
            )
            db.session.commit()
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


# -- index ------------------------------------------------------------------------------------------


@bp.get("/")
@staff_required(Role.ADMIN)
def index():
    system_admin = is_system_admin(current_user)
    provisional = provisional_deadlines(db.session) if system_admin else (0, [])
    return render_template("staff/admin/index.html", system_admin=system_admin, provisional=provisional)


# -- orgs -------------------------------------------------------------------------------------------


@bp.get("/orgs")
@staff_required(Role.ADMIN)
def orgs(errors: dict[str, str] | None = None, status: int = 200):
    return render_template(
        "staff/admin/orgs.html", orgs=_subtree_orgs(), errors=errors or {}, form=request.form
    ), status


@bp.post("/orgs")
@staff_required(Role.ADMIN)
def org_create():
    errors: dict[str, str] = {}
    code = _text(errors, "code", "单位代码", 64)
    if code and "code" not in errors:
        if not CODE_RE.match(code):
            errors["code"] = "单位代码只能包含字母、数字、- 和 _"
        elif db.session.scalar(select(Org.id).where(Org.code == code)):
            errors["code"] = "该单位代码已被使用"
    name = _text(errors, "name", "单位名称", 200)
    kind = request.form.get("kind", "")
    if kind not in ORG_KIND_LABELS:
        errors["kind"] = "请选择单位类型"
    parent = _org_or_404(request.form.get("parent"))
    if errors:
        return orgs(errors, 422)
    created = create_org(db.session, code, name, kind, parent)
    _changed("org.create", org=code, org_id=created.id, name=name, kind=kind, parent=parent.code)
    db.session.commit()
    flash(f"已创建单位 {name}（{code}）")
    return redirect(url_for("admin.orgs"))


@bp.post("/orgs/<int:org_id>/rename")
@staff_required(Role.ADMIN)
def org_rename(org_id: int):
    org = _org_or_404(org_id)
    errors: dict[str, str] = {}
    name = _text(errors, "name", "单位名称", 200)
    if errors:
        flash(errors["name"], "error")
        return redirect(url_for("admin.orgs"))
    if name != org.name:
        _changed("org.rename", org=org.code, old=org.name, new=name)
        org.name = name
        db.session.commit()
        flash(f"已将 {org.code} 更名为 {name}")
    return redirect(url_for("admin.orgs"))


@bp.post("/orgs/<int:org_id>/active")
@staff_required(Role.ADMIN)
def org_active(org_id: int):
    org = _org_or_404(org_id)
    active = _flag()
    if not active and org.id == current_user.org_id:
        flash("不能停用自己所在的单位", "error")
        return redirect(url_for("admin.orgs"))
    if org.active != active:
        org.active = active
        _changed("org.activate" if active else "org.deactivate", org=org.code)
        db.session.commit()
    flash(f"{org.name} 已{'启用' if active else '停用'}")
    return redirect(url_for("admin.orgs"))


# -- points -----------------------------------------------------------------------------------------


@bp.get("/points")
@staff_required(Role.ADMIN)
def points(errors: dict[str, str] | None = None, status: int = 200):
    subtree = _subtree_orgs()
    rows = db.session.scalars(
        select(Point)
        .join(Point.org)
        .where(Org.path.startswith(_scope_path(), autoescape=True))
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
    return render_template(
        "staff/admin/points.html",
        rows=rows,
        scans={k: int(v or 0) for k, v in scans.items()},
        orgs=subtree,
        scan_days=SCAN_DAYS,
        base_url=current_app.config["BASE_URL"],
        point_url=point_url,
        errors=errors or {},
        form=request.form,
    ), status


@bp.post("/points")
@staff_required(Role.ADMIN)
def point_create():
    errors: dict[str, str] = {}
    org = _org_or_404(request.form.get("org"))
    name = _text(errors, "name", "监督点名称", 200)
    if errors:
        return points(errors, 422)
    point = Point(org=org, name=name)
    db.session.add(point)
    db.session.flush()
    _changed("point.create", point=point.id, org=org.code, name=name)
    db.session.commit()
    flash(f"已创建监督点 {name}")
    return redirect(url_for("admin.points"))


@bp.post("/points/<int:point_id>/active")
@staff_required(Role.ADMIN)
def point_active(point_id: int):
    point = _point_or_404(point_id)
    active = _flag()
    if point.active != active:
        point.active = active
        _changed("point.activate" if active else "point.deactivate", point=point.id, name=point.name)
        db.session.commit()
    flash(f"{point.name} 已{'启用' if active else '停用'}")
    return redirect(url_for("admin.points"))


@bp.get("/points/<int:point_id>/qr.png")
@staff_required(Role.ADMIN)
def point_qr(point_id: int):
    point = _point_or_404(point_id)
    response = make_response(qr_png(point_url(current_app.config["BASE_URL"], point)))
    response.mimetype = "image/png"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


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
def point_poster(point_id: int):
    point = _point_or_404(point_id)
    categories = list(
        db.session.scalars(
            select(Category.name).where(Category.active.is_(True)).order_by(Category.sort_order, Category.id)
        )
    )
    html = render_poster(point, point_url(current_app.config["BASE_URL"], point), categories)
    response = make_response(html)
    response.headers["Content-Security-Policy"] = _poster_csp(html)
    return response


# -- categories (system-wide) ---------------------------------------------------------------------


def _category_fields(errors: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": _text(errors, "name", "类别名称", 100),
        "name_en": _text(errors, "name_en", "英文名称", 100, required=False),
    }
    kind = request.form.get("default_org_kind", "")
    if kind and kind not in ORG_KIND_LABELS:
        errors["default_org_kind"] = "请选择默认承办单位类型"
    fields["default_org_kind"] = kind or None
    raw = request.form.get("sort_order", "").strip() or "0"
    try:
        fields["sort_order"] = int(raw)
        if not -1000 <= fields["sort_order"] <= 1000:
            raise ValueError
    except ValueError:
        errors["sort_order"] = "排序须为 -1000 到 1000 之间的整数"
    return fields


@bp.get("/categories")
@staff_required(Role.ADMIN)
@system_admin_required
def categories(errors: dict[str, str] | None = None, status: int = 200):
    rows = db.session.scalars(select(Category).order_by(Category.sort_order, Category.id)).all()
    return render_template(
        "staff/admin/categories.html", rows=rows, errors=errors or {}, form=request.form
    ), status


@bp.post("/categories")
@staff_required(Role.ADMIN)
@system_admin_required
def category_create():
    errors: dict[str, str] = {}
    code = _text(errors, "code", "类别代码", 64)
    if code and "code" not in errors:
        if not CODE_RE.match(code):
            errors["code"] = "类别代码只能包含字母、数字、- 和 _"
        elif db.session.scalar(select(Category.id).where(Category.code == code)):
            errors["code"] = "该类别代码已被使用"
    fields = _category_fields(errors)
    if errors:
        return categories(errors, 422)
    db.session.add(Category(code=code, **fields))
    _changed("category.create", category=code, **fields)
    db.session.commit()
    flash(f"已创建类别 {fields['name']}")
    return redirect(url_for("admin.categories"))


@bp.post("/categories/<int:category_id>")
@staff_required(Role.ADMIN)
@system_admin_required
def category_update(category_id: int):
    category = db.session.get(Category, category_id) or abort(404)
    errors: dict[str, str] = {}
    fields = _category_fields(errors)
    if errors:
        flash("；".join(errors.values()), "error")
        return redirect(url_for("admin.categories"))
    changes = {k: [getattr(category, k), v] for k, v in fields.items() if getattr(category, k) != v}
    if changes:
        for key, (_, new) in changes.items():
            setattr(category, key, new)
        _changed("category.update", category=category.code, changes=changes)
        db.session.commit()
    flash(f"类别 {category.name} 已保存")
    return redirect(url_for("admin.categories"))


@bp.post("/categories/<int:category_id>/active")
@staff_required(Role.ADMIN)
@system_admin_required
def category_active(category_id: int):
    category = db.session.get(Category, category_id) or abort(404)
    active = _flag()
    if category.active != active:
        category.active = active
        _changed("category.activate" if active else "category.deactivate", category=category.code)
        db.session.commit()
    flash(f"类别 {category.name} 已{'启用' if active else '停用'}")
    return redirect(url_for("admin.categories"))


# -- users ------------------------------------------------------------------------------------------


def _new_password() -> str:
    return secrets.token_urlsafe(12)


def _email(errors: dict[str, str]) -> str | None:
    """The optional e-mail address (escalations and reports go there); None when left empty."""
    value = request.form.get("email", "").strip()
    if not value:
        return None
    if len(value) > MAX_EMAIL:
        errors["email"] = f"电子邮箱不能超过 {MAX_EMAIL} 个字符"
    elif not EMAIL_RE.match(value):
        errors["email"] = "请填写有效的电子邮箱，如 name@example.org"
    return value


@bp.get("/users")
@staff_required(Role.ADMIN)
def users(errors: dict[str, str] | None = None, status: int = 200):
    rows = db.session.scalars(
        select(User)
        .join(User.org)
        .where(Org.path.startswith(_scope_path(), autoescape=True))
        .order_by(Org.path, User.username)
    ).all()
    return render_template(
        "staff/admin/users.html",
        rows=rows,
        orgs=_subtree_orgs(),
        roles=[r.value for r in Role],
        errors=errors or {},
        form=request.form,
        min_password=MIN_PASSWORD,
    ), status


@bp.post("/users")
@staff_required(Role.ADMIN)
def user_create():
    errors: dict[str, str] = {}
    username = _text(errors, "username", "用户名", 64)
    if username and "username" not in errors:
        if not USERNAME_RE.match(username):
            errors["username"] = "用户名为 3–64 位字母、数字、. _ -，以字母或数字开头"
        elif db.session.scalar(select(User.id).where(User.username == username)):
            errors["username"] = "该用户名已被使用"
    display_name = _text(errors, "display_name", "姓名", 100, required=False)
    email = _email(errors)
    role = request.form.get("role", "")
    if role not in {r.value for r in Role}:
        errors["role"] = "请选择角色"
    org = _org_or_404(request.form.get("org"))
    password = request.form.get("password", "")
    if password and len(password) < MIN_PASSWORD:
        errors["password"] = f"密码至少 {MIN_PASSWORD} 位；留空则自动生成"
    if errors:
        return users(errors, 422)
    user, password = create_user(
        db.session,
        username=username,
        org=org,
        role=role,
        password=password or _new_password(),
        display_name=display_name,
    )
    user.email = email
    _changed(
        "user.create",
        target=username,
        org=org.code,
        role=role,
        email=email,
        password="given" if request.form.get("password") else "generated",
    )
    db.session.commit()
    # Shown here once, never stored in clear: the page is not cached and there is no way back to it.
    return _no_store(
        make_response(
            render_template("staff/admin/password_shown.html", user=user, password=password, created=True)
        )
    )


@bp.post("/users/<int:user_id>/active")
@staff_required(Role.ADMIN)
def user_active(user_id: int):
    user = _user_or_404(user_id)
    active = _flag()
    if not active and user.id == current_user.id:
        flash("不能停用自己的账号", "error")
        return redirect(url_for("admin.users"))
    if user.active != active:
        user.active = active
        if not active:
            end_sessions(user)  # signed-in browsers are out at their next request
        _changed("user.enable" if active else "user.disable", target=user.username)
        db.session.commit()
    flash(f"账号 {user.username} 已{'启用' if active else '停用'}")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/password")
@staff_required(Role.ADMIN)
def user_password(user_id: int):
    user = _user_or_404(user_id)
    if user.id == current_user.id:
        flash("请通过“修改密码”修改自己的密码", "error")
        return redirect(url_for("admin.users"))
    password = _new_password()
    user.password_hash = generate_password_hash(password, current_app.config["PASSWORD_HASH_METHOD"])
    end_sessions(user)
    _changed("user.reset_password", target=user.username)
    db.session.commit()
    return _no_store(
        make_response(
            render_template("staff/admin/password_shown.html", user=user, password=password, created=False)
        )
    )


@bp.post("/users/<int:user_id>")
@staff_required(Role.ADMIN)
def user_update(user_id: int):
    """Change a user's display name, e-mail address, role and org."""
    user = _user_or_404(user_id)
    errors: dict[str, str] = {}
    display_name = _text(errors, "display_name", "姓名", 100, required=False) or user.display_name
    # An empty field clears the address; a form without the field (an older page) leaves it alone.
    email = _email(errors) if "email" in request.form else user.email
    role = request.form.get("role", "")
    if role not in {r.value for r in Role}:
        errors["role"] = "请选择角色"
    org = _org_or_404(request.form.get("org"))
    if user.id == current_user.id and (role != user.role or org.id != user.org_id):
        errors["role"] = "不能修改自己的角色或单位"
    if errors:
        flash("；".join(errors.values()), "error")
        return redirect(url_for("admin.users"))
    changes = {}
    if display_name != user.display_name:
        changes["display_name"] = [user.display_name, display_name]
    if email != user.email:
        changes["email"] = [user.email, email]
    if role != user.role:
        changes["role"] = [user.role, role]
    if org.id != user.org_id:
        changes["org"] = [user.org.code, org.code]
    if changes:
        user.display_name, user.email, user.role, user.org = display_name, email, role, org
        _changed("user.update", target=user.username, changes=changes)
        db.session.commit()
    flash(f"账号 {user.username} 已保存")
    return redirect(url_for("admin.users"))


# -- the holiday calendar (system-wide) -------------------------------------------------------------


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
    return this_year, "年份须为 1950–2200 之间的整数"


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
def calendar(year: int | None = None, error: str | None = None, status: int = 200):
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
def calendar_import():
    upload = request.files.get("file")
    year_hint = request.form.get("year", type=int)
    if upload is None or not upload.filename:
        return calendar(year_hint, "请选择要导入的 CSV 文件", 422)
    raw = upload.read(MAX_CALENDAR_CSV + 1)
    if len(raw) > MAX_CALENDAR_CSV:
        return calendar(year_hint, "文件过大（不超过 256 KB）", 422)
    try:
        days = parse_calendar_csv(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return calendar(year_hint, "文件须为 UTF-8 编码的 CSV", 422)
    except ValueError as exc:
        return calendar(year_hint, str(exc), 422)
    years = sorted({d.year for d in days})
    if len(years) != 1:
        found = "、".join(map(str, years)) or "没有日期"
        return calendar(year_hint, f"文件须恰好包含一个年份的日期（发现：{found}）", 422)
    (year,) = years
    _changed("calendar.import", year=year, dates=len(days), file=upload.filename[:100])
    # Replaces the year's rows, marks it official, recomputes the running deadlines; commits.
    moved = import_calendar_year(year, days, source="admin")
    flash(f"{year} 年节假日安排已导入（{len(days)} 个日期）；{moved} 个在办期限已重新计算")
    return redirect(url_for("admin.calendar", year=year))


@bp.post("/calendar/day")
@staff_required(Role.ADMIN)
@system_admin_required
def calendar_day():
    try:
        day = date.fromisoformat(request.form.get("day", "").strip())
    except ValueError:
        return calendar(None, "请填写有效的日期（YYYY-MM-DD）", 422)
    kind = request.form.get("kind", "")
    name = request.form.get("name", "").strip()
    if kind not in ("holiday", "workday", "remove"):
        return calendar(day.year, "请选择：节假日、调休上班或删除例外", 422)
    if len(name) > 100:
        return calendar(day.year, "名称不能超过 100 个字", 422)
    if not 1950 <= day.year <= 2200:
        return calendar(None, "年份须为 1950–2200 之间", 422)
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
    _changed(
        "calendar.day",
        day=day.isoformat(),
        old=old,
        new=None if kind == "remove" else [kind, name],
        materialised=materialised,
    )
    recompute_year(year)  # commits
    flash(
        f"{day.isoformat()} 已保存"
        + (f"；{year} 年原按规则推算的 {materialised} 个节假日已一并写入日历" if materialised else "")
    )
    return redirect(url_for("admin.calendar", year=year))


# -- settings (system-wide) -------------------------------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@staff_required(Role.ADMIN)
@system_admin_required
def settings():
    current = deadline_settings(current_app.config)
    if request.method == "GET":
        return render_template(
            "staff/admin/settings.html", fields=DEADLINE_SETTINGS, values=current, errors={}
        )
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, (label, low, high) in DEADLINE_SETTINGS.items():
        raw = request.form.get(key, "").strip()
        values[key] = raw
        try:
            number = int(raw)
        except ValueError:
            errors[key] = f"{label}须为整数"
            continue
        if not low <= number <= high:
            errors[key] = f"{label}须在 {low} 到 {high} 之间"
            continue
        values[key] = number
    if errors:
        return render_template(
            "staff/admin/settings.html", fields=DEADLINE_SETTINGS, values=values, errors=errors
        ), 422
    changes = {k: [current[k], v] for k, v in values.items() if current[k] != v}
    if changes:
        for key, (_, new) in changes.items():
            set_value(key, new)
        _changed("settings.update", changes=changes)
        db.session.commit()
        flash("设置已保存")
    else:
        flash("设置没有变化")
    return redirect(url_for("admin.settings"))


# -- dead letters of the outbox (system-wide) -------------------------------------------------------


@bp.get("/outbox")
@staff_required(Role.ADMIN)
@system_admin_required
def outbox():
    """Outbox rows that failed MAX_ATTEMPTS times: nobody is told unless an admin looks here.

    System-wide because a row is not an org's (a case's notice may go to several orgs' staff)."""
    rows = db.session.execute(
        select(OutboxMessage, Case.tracking_no)
        .outerjoin(Case, Case.id == OutboxMessage.case_id)
        .where(OutboxMessage.status == "dead")
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(DEAD_LETTERS_SHOWN)
    ).all()
    dead_total = db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "dead"))
    stale_pending = db.session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.status == "pending", OutboxMessage.created_at < utcnow() - STALE_PENDING
        )
    )
    return render_template(
        "staff/admin/outbox.html",
        rows=rows,
        dead_total=dead_total,
        shown_limit=DEAD_LETTERS_SHOWN,
        stale_pending=stale_pending,
        stale_minutes=int(STALE_PENDING.total_seconds() // 60),
    )


@bp.post("/outbox/<int:message_id>/retry")
@staff_required(Role.ADMIN)
@system_admin_required
def outbox_retry(message_id: int):
    message = db.session.get(OutboxMessage, message_id) or abort(404)
    kind, channel, attempts, last_error = message.kind, message.channel, message.attempts, message.last_error
    # Conditional, so two admins pressing "retry" at once (or a row retried meanwhile) reset it once.
    reset = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "dead")
        .values(status="pending", attempts=0)
    )
    if reset.rowcount != 1:
        db.session.rollback()
        flash(f"消息 {message_id} 已不在投递失败列表中", "error")
        return redirect(url_for("admin.outbox"))
    _changed(
        "outbox.retry",
        message=message_id,
        kind=kind,
        channel=channel,
        attempts=attempts,
        last_error=(last_error or "")[:200],
    )
    db.session.commit()
    # After the commit, so the worker finds the row pending; if Redis is away the drain enqueues it.
    enqueue_outbox([message_id])
    flash(f"消息 {message_id} 已重新排队投递")
    return redirect(url_for("admin.outbox"))


# -- background jobs (RQ; system-wide) ----------------------------------------------------------------

FAILED_JOBS_SHOWN = 100  # per queue, the latest failures first
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
WORKER_STATE_LABELS = {"busy": "忙碌", "idle": "空闲", "suspended": "已暂停", "started": "启动中"}


def _aware(moment):
    # RQ hands back UTC datetimes; older job hashes may hold naive ones.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _exception_line(exc_string: str | None) -> str:
    """The final exception's own line ("ValueError: …") of a traceback, without what follows it
    (SQLAlchemy appends the statement and its parameters on later lines: never shown)."""
    lines = [line for line in (exc_string or "").splitlines() if line.strip()]
    last_frame = max((i for i, line in enumerate(lines) if line.startswith(" ")), default=-1)
    rest = lines[last_frame + 1 :]
    return (rest[0] if rest else (lines[-1] if lines else ""))[:300]


def _worker_state(worker) -> str:
    state = worker.get_state()
    state = str(getattr(state, "value", state))  # RQ's WorkerStatus, or the text read from Redis
    return WORKER_STATE_LABELS.get(state, state)


def _failed_job_row(job, queue_name: str) -> dict[str, Any]:
    from rq.results import Result

    try:
        function = job.func_name
        # Job arguments are ids only (DESIGN.md §5); show them only when they are exactly that.
        args = job.args if not job.kwargs and all(type(a) is int for a in job.args) else None
    except Exception:  # a job whose data cannot be read is still listed, to be deleted
        function, args = "?", None
    result = job.latest_result()
    exc = result.exc_string if result is not None and result.type == Result.Type.FAILED else None
    return {
        "id": job.id,
        "queue": queue_name,
        "function": function,
        "args": args,
        "enqueued_at": _aware(job.enqueued_at),
        "ended_at": _aware(job.ended_at),
        "error": _exception_line(exc or job._exc_info),
    }


def _jobs_overview(conn) -> dict[str, Any]:
    """Counts per queue, the workers, the latest failed jobs; read without RQ's clean-ups (a GET
    changes nothing)."""
    from rq import Queue, Worker
    from rq.job import Job

    queues, failed = [], []
    for name in QUEUE_NAMES:
        q = Queue(name, connection=conn)
        registries = {
            "started": q.started_job_registry,
            "failed": q.failed_job_registry,
            "scheduled": q.scheduled_job_registry,
            "deferred": q.deferred_job_registry,
        }
        counts = {key: reg.get_job_count(cleanup=False) for key, reg in registries.items()}
        queues.append({"name": name, "queued": q.count, **counts})
        ids = registries["failed"].get_job_ids(0, FAILED_JOBS_SHOWN - 1, desc=True, cleanup=False)
        failed += [_failed_job_row(job, name) for job in Job.fetch_many(ids, connection=conn) if job]
    workers = [
        {
            "name": w.name,
            "state": _worker_state(w),
            "job": w.get_current_job_id(),
            "heartbeat": _aware(w.last_heartbeat),
            "queues": w.queue_names(),
        }
        for w in sorted(Worker.all(connection=conn), key=lambda w: w.name)
    ]
    return {"queues": queues, "workers": workers, "failed": failed}


@bp.get("/jobs")
@staff_required(Role.ADMIN)
@system_admin_required
def jobs():
    """What the RQ workers do: queue depths, workers, failed jobs with retry and delete."""
    try:
        overview, redis_error = _jobs_overview(redis_connection()), None
    except Exception as exc:
        current_app.logger.warning("jobs page: Redis unreadable (%s)", exc)
        overview, redis_error = {"queues": [], "workers": [], "failed": []}, type(exc).__name__
    response = make_response(
        render_template(
            "staff/admin/jobs.html", **overview, redis_error=redis_error, shown_limit=FAILED_JOBS_SHOWN
        )
    )
    return _no_store(response)


def _failed_job_or_404(conn, job_id: str):
    """The failed job `job_id`, with its queue's failed registry; anything else is 404."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if not JOB_ID_RE.match(job_id):
        abort(404)
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        abort(404)
    if job.origin not in QUEUE_NAMES:
        abort(404)
    return job, job.failed_job_registry


def _job_action(job_id: str, what: str) -> Any:
    from rq.exceptions import InvalidJobOperation

    conn = redis_connection()
    job, registry = _failed_job_or_404(conn, job_id)
    try:
        function = job.func_name
    except Exception:
        function = "?"
    if job.id not in registry:
        flash(f"任务 {job_id} 已不在失败列表中", "error")
        return redirect(url_for("admin.jobs"))
    if what == "retry":
        try:
            registry.requeue(job)
        except InvalidJobOperation:  # someone retried it a moment ago
            flash(f"任务 {job_id} 已不在失败列表中", "error")
            return redirect(url_for("admin.jobs"))
        message = f"任务 {job_id} 已重新排队"
    else:
        job.delete()
        message = f"任务 {job_id} 已删除"
    _changed(f"job.{what}", job=job.id, queue=job.origin, function=function)
    db.session.commit()
    flash(message)
    return redirect(url_for("admin.jobs"))


def _job_action_or_flash(job_id: str, what: str) -> Any:
    from redis.exceptions import RedisError

    try:
        return _job_action(job_id, what)
    except RedisError as exc:
        db.session.rollback()
        current_app.logger.warning("jobs page: Redis unreachable (%s)", exc)
        flash("无法连接 Redis，请稍后再试", "error")
        return redirect(url_for("admin.jobs"))


@bp.post("/jobs/<job_id>/retry")
@staff_required(Role.ADMIN)
@system_admin_required
def job_retry(job_id: str):
    return _job_action_or_flash(job_id, "retry")


@bp.post("/jobs/<job_id>/delete")
@staff_required(Role.ADMIN)
@system_admin_required
def job_delete(job_id: str):
    return _job_action_or_flash(job_id, "delete")


# -- reply templates (常用回复) ---------------------------------------------------------------------


def _template_fields(errors: dict[str, str]) -> tuple[Org, str, str]:
    org = _org_or_404(request.form.get("org"))
    title = _text(errors, "title", "标题", 100)
    body = _text(errors, "body", "回复内容", 5000)
    return org, title, body


@bp.get("/templates")
@staff_required(Role.ADMIN)
def templates(errors: dict[str, str] | None = None, status: int = 200):
    rows = db.session.execute(
        select(ReplyTemplate, Org)
        .join(Org, Org.id == ReplyTemplate.org_id)
        .where(Org.path.startswith(_scope_path(), autoescape=True))
        .order_by(Org.path, ReplyTemplate.title, ReplyTemplate.id)
    ).all()
    return render_template(
        "staff/admin/templates.html", rows=rows, orgs=_subtree_orgs(), errors=errors or {}, form=request.form
    ), status


@bp.post("/templates")
@staff_required(Role.ADMIN)
def template_create():
    errors: dict[str, str] = {}
    org, title, body = _template_fields(errors)
    if errors:
        return templates(errors, 422)
    row = ReplyTemplate(org_id=org.id, title=title, body=body)
    db.session.add(row)
    db.session.flush()
    _changed("template.create", template=row.id, org=org.code, title=title)
    db.session.commit()
    flash(f"已添加常用回复“{title}”")
    return redirect(url_for("admin.templates"))


@bp.get("/templates/<int:template_id>")
@staff_required(Role.ADMIN)
def template_edit(template_id: int, errors: dict[str, str] | None = None, status: int = 200):
    row = _template_or_404(template_id)
    return render_template(
        "staff/admin/template_edit.html",
        row=row,
        orgs=_subtree_orgs(),
        errors=errors or {},
        form=request.form if errors else None,
    ), status


@bp.post("/templates/<int:template_id>")
@staff_required(Role.ADMIN)
def template_update(template_id: int):
    row = _template_or_404(template_id)
    errors: dict[str, str] = {}
    org, title, body = _template_fields(errors)
    if errors:
        return template_edit(template_id, errors, 422)
    old_org = db.session.get(Org, row.org_id)
    row.org_id, row.title, row.body = org.id, title, body
    _changed("template.update", template=row.id, org=org.code, old_org=old_org.code, title=title)
    db.session.commit()
    flash(f"常用回复“{title}”已保存")
    return redirect(url_for("admin.templates"))


@bp.post("/templates/<int:template_id>/delete")
@staff_required(Role.ADMIN)
def template_delete(template_id: int):
    row = _template_or_404(template_id)
    org = db.session.get(Org, row.org_id)
    _changed("template.delete", template=row.id, org=org.code, title=row.title)
    db.session.delete(row)
    db.session.commit()
    flash(f"常用回复“{row.title}”已删除")
    return redirect(url_for("admin.templates"))
