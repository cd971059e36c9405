"""群机器人 of a discipline body: a section of the orgs admin page (/staff/admin/orgs/<id>/robots).

Admins of the org's subtree only (anything else is 404, as for every admin page); CSRF on every
form; each change audited in its own transaction (`robot.add`, `robot.change`, `robot.remove`,
`robot.test`) with the robot's id, kind and name and which fields changed — never the webhook
address (it holds the robot's key) nor the signing secret.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from supervise.cases.services import identity_box
from supervise.extensions import db
from supervise.robots import services
from supervise.robots.models import OrgRobot
from supervise.robots.services import KIND_LABELS, RobotInput, RobotRefused
from supervise.staff.admin.common import (
    bp,
    commit_change,
    form_page,
    get_in_scope_or_404,
    org_or_404,
)
from supervise.staff.auth import staff_required
from supervise.staff.models import Role, User


def _hosts() -> frozenset[str]:
    return services.parse_hosts(current_app.config.get("ROBOT_WEBHOOK_HOSTS", ""))


def _posted() -> RobotInput:
    form = request.form
    return RobotInput(
        kind=form.get("kind", ""),
        name=form.get("name", ""),
        webhook=form.get("webhook", ""),
        secret=form.get("secret", ""),
        enabled=form.get("enabled") == "1",
    )


def _refusal(exc: RobotRefused) -> dict[str, str]:
    return {exc.field: _(exc.message, **exc.params)}


def _audit(what: str, robot: OrgRobot, **extra: object) -> None:
    """Commit the change with its audit row: which robot, never its address or secret."""
    commit_change(what, org=robot.org.code, robot_id=robot.id, kind=robot.kind, name=robot.name, **extra)


def _me() -> User:
    return db.session.get(User, current_user.id)


@bp.get("/orgs/<int:org_id>/robots")
@staff_required(Role.ADMIN)
def org_robots(org_id: int, errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    org = org_or_404(org_id)
    robots = db.session.scalars(select(OrgRobot).where(OrgRobot.org_id == org.id).order_by(OrgRobot.id)).all()
    return form_page(
        "staff/admin/robots.html",
        errors,
        status,
        org=org,
        robots=robots,
        kinds=KIND_LABELS,
        examples=services.EXAMPLES,
        editing=request.form.get("robot_id") if errors else None,
    )


@bp.post("/orgs/<int:org_id>/robots")
@staff_required(Role.ADMIN)
def org_robot_add(org_id: int) -> ResponseReturnValue:
    org = org_or_404(org_id)
    try:
        robot = services.add_robot(db.session, org, _posted(), _me(), identity_box(), _hosts())
    except RobotRefused as exc:
        db.session.rollback()
        return org_robots(org_id, _refusal(exc), 422)
    _audit("robot.add", robot, enabled=robot.enabled)
    flash(_("已为 %(org)s 添加群机器人「%(name)s」", org=org.name, name=robot.name))
    return redirect(url_for("admin.org_robots", org_id=org.id))


@bp.post("/robots/<int:robot_id>")
@staff_required(Role.ADMIN)
def org_robot_change(robot_id: int) -> ResponseReturnValue:
    robot = get_in_scope_or_404(OrgRobot, robot_id)
    try:
        changed = services.update_robot(db.session, robot, _posted(), _me(), identity_box(), _hosts())
    except RobotRefused as exc:
        db.session.rollback()
        return org_robots(robot.org_id, _refusal(exc), 422)
    if not changed:
        flash(_("群机器人「%(name)s」没有改动", name=robot.name))
        return redirect(url_for("admin.org_robots", org_id=robot.org_id))
    _audit("robot.change", robot, changed=changed)
    flash(_("已保存群机器人「%(name)s」", name=robot.name))
    return redirect(url_for("admin.org_robots", org_id=robot.org_id))


@bp.post("/robots/<int:robot_id>/secret/remove")
@staff_required(Role.ADMIN)
def org_robot_remove_secret(robot_id: int) -> ResponseReturnValue:
    robot = get_in_scope_or_404(OrgRobot, robot_id)
    if services.remove_secret(robot, _me()):
        _audit("robot.change", robot, changed=["secret"])
        flash(_("已删除群机器人「%(name)s」的加签密钥", name=robot.name))
    return redirect(url_for("admin.org_robots", org_id=robot.org_id))


@bp.post("/robots/<int:robot_id>/remove")
@staff_required(Role.ADMIN)
def org_robot_remove(robot_id: int) -> ResponseReturnValue:
    robot = get_in_scope_or_404(OrgRobot, robot_id)
    org_id, name = robot.org_id, robot.name
    detail = {"org": robot.org.code, "robot_id": robot.id, "kind": robot.kind, "name": name}
    db.session.delete(robot)
    commit_change("robot.remove", **detail)
    flash(_("已删除群机器人「%(name)s」", name=name))
    return redirect(url_for("admin.org_robots", org_id=org_id))


@bp.post("/robots/<int:robot_id>/test")
@staff_required(Role.ADMIN)
def org_robot_test(robot_id: int) -> ResponseReturnValue:
    robot = get_in_scope_or_404(OrgRobot, robot_id)
    services.queue_test(db.session, robot)
    _audit("robot.test", robot)
    flash(_("测试消息已排队发送到「%(name)s」，请在群里查看；未能发出的会列在“投递失败”中", name=robot.name))
    return redirect(url_for("admin.org_robots", org_id=robot.org_id))
