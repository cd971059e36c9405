"""工作人员账号, keyed by username. A new account gets a random one-time password, handed back to
the caller (a 0600 file from the command line, a page shown once on the admin page) and never
stored in clear. An existing account's name, e-mail, org and roles follow the file; its password
is never touched. Roles are checked against the org as the admin users page checks them."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from supervise.errors import InvalidInput
from supervise.i18n import N_
from supervise.imports.base import Column, ImportContext, Plan, RowError, Rows, bool_value, text_value
from supervise.orgs.models import Org
from supervise.staff.admin.common import EMAIL_RE, MAX_EMAIL
from supervise.staff.models import User
from supervise.staff.services import ROLE_LABELS, check_roles_fit, create_user, parse_roles

LABEL = N_("用户")
# The admin users page's rule for a username (supervise/staff/admin/users.py).
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
COLUMNS = (
    Column("username", N_("用户名"), True, N_("登录用的用户名：3–64 位字母、数字、. _ -"), "zhang.wei"),
    Column("display_name", N_("姓名"), False, N_("显示的姓名；留空则同用户名"), "张伟"),
    Column("org", N_("单位代码"), True, N_("账号所在单位的代码（须已在系统中）"), "xx-town-1-jw"),
    Column(
        "roles",
        N_("角色"),
        True,
        N_(
            "可填多个，用逗号或顿号分隔：纪检监察机构为受理员、承办人、督办/审核、管理员；单位为单位负责人、承办人、管理员"
        ),
        "受理员、督办/审核",
    ),
    Column("email", N_("电子邮箱"), False, N_("接收督办和每周通报的邮箱，可留空"), "zhang.wei@example.org"),
    Column("active", N_("是否启用"), False, N_("是 / 否；留空为“是”"), "是"),
)
ROLE_WORDS = {r: r for r in ROLE_LABELS} | {label: role for role, label in ROLE_LABELS.items()}
ROLE_WORDS |= {"督办": "supervisor", "审核": "supervisor", "负责人": "leader"}


def _roles(value: Any) -> list[str]:
    words = [w.strip() for w in re.split(r"[,，、;；\s]+", str(value)) if w.strip()]
    unknown = [w for w in words if w.lower() not in ROLE_WORDS and w not in ROLE_WORDS]
    if unknown:
        raise RowError(N_("没有这个角色：%(roles)s"), roles="、".join(unknown))
    return parse_roles([ROLE_WORDS.get(w.lower(), ROLE_WORDS.get(w)) for w in words])


def _email(value: Any) -> str:
    text = text_value(value, max_len=MAX_EMAIL)
    if not EMAIL_RE.match(text):
        raise RowError(N_("请填写有效的电子邮箱，如 name@example.org"))
    return text


@dataclass
class UserRow:
    row: int
    username: str
    display_name: str | None
    org: Org
    roles: list[str]
    email: str | None
    active: bool | None


def check(ctx: ImportContext, rows: Rows, table: list[tuple[int, list[Any]]]) -> Plan:
    session = ctx.session
    orgs = {o.code: o for o in session.scalars(select(Org))}
    users = {u.username: u for u in session.scalars(select(User))}
    seen: dict[str, int] = {}
    new: list[UserRow] = []
    changed: list[tuple[UserRow, User]] = []
    unchanged = 0
    for number, values in table:
        if rows.full():
            break
        username = rows.read(number, values, "username", lambda v: text_value(v, max_len=64))
        if username and not USERNAME_RE.match(username):
            rows.problem(number, "username", N_("用户名为 3–64 位字母、数字、. _ -，以字母或数字开头"))
            username = None
        display_name = rows.read(number, values, "display_name", lambda v: text_value(v, max_len=100))
        code = rows.read(number, values, "org", lambda v: text_value(v, max_len=64))
        roles = rows.read(number, values, "roles", _roles)
        email = rows.read(number, values, "email", _email)
        active = rows.read(number, values, "active", bool_value)
        org = orgs.get(code) if code else None
        if code and not ctx.scope.contains(org):
            rows.problem(number, "org", N_("找不到代码为 %(code)s 的单位"), code=code)
            continue
        if username in seen:
            rows.problem(number, "username", N_("与第 %(row)s 行的用户名重复"), row=seen[username])
            continue
        if not (username and org and roles):
            continue
        seen[username] = number
        try:
            check_roles_fit(org, roles)
        except InvalidInput as exc:
            rows.problem(number, "roles", exc.details["role"][0])
            continue
        item = UserRow(number, username, display_name, org, roles, email, active)
        user = users.get(username)
        if user is None:
            new.append(item)
            continue
        if not ctx.scope.contains(user.org):
            rows.problem(
                number, "username", N_("用户名 %(name)s 已被您管理范围以外的账号使用"), name=username
            )
            continue
        if _differs(ctx, item, user):
            if user.id == ctx.user_id and (
                set(roles) != user.roles or org.id != user.org_id or active is False
            ):
                rows.problem(number, "username", N_("不能通过导入修改自己的角色、单位或停用自己"))
                continue
            changed.append((item, user))
        else:
            unchanged += 1

    def apply(ctx: ImportContext, progress) -> dict[str, Any]:
        passwords = []
        for item in new:
            password = secrets.token_urlsafe(12)
            user, _ = create_user(
                ctx.session,
                username=item.username,
                org=item.org,
                role=item.roles,
                password=password,
                display_name=item.display_name or "",
                must_change=True,
            )
            user.email = item.email
            if item.active is False:
                user.active = False
            passwords.append((item.username, user.display_name, item.org.code, item.org.name, password))
            progress(1)
        for item, user in changed:
            _update(ctx, item, user)
            progress(1)
        return {
            "created": [p[0] for p in passwords],
            "updated": [i.username for i, _ in changed],
            "passwords": passwords,
        }

    return Plan(create=len(new), update=len(changed), unchanged=unchanged, apply=apply)


def _wanted(ctx: ImportContext, item: UserRow, user: User) -> dict[str, Any]:
    """What the row sets: a column the file lacks, or an empty optional cell, leaves it alone
    (an empty e-mail cell in a file with the column clears the address)."""
    return {
        "display_name": item.display_name or user.display_name,
        "email": item.email if "email" in ctx.present else user.email,
        "org_id": item.org.id,
        "roles": sorted(item.roles),
        "active": user.active if item.active is None else item.active,
    }


def _differs(ctx: ImportContext, item: UserRow, user: User) -> bool:
    current = {
        "display_name": user.display_name,
        "email": user.email,
        "org_id": user.org_id,
        "roles": sorted(user.roles),
        "active": user.active,
    }
    return current != _wanted(ctx, item, user)


def _update(ctx: ImportContext, item: UserRow, user: User) -> None:
    from supervise.staff.auth import end_sessions

    wanted = _wanted(ctx, item, user)
    user.display_name, user.email, user.org = wanted["display_name"], wanted["email"], item.org
    user.set_roles(item.roles)
    if user.active and not wanted["active"]:
        end_sessions(user)  # as the admin page's 停用: signed-in browsers are out at once
    user.active = wanted["active"]
