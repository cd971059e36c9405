"""Revealing a reporter's identity: only to the roles §2 allows, with a stated reason, always audited."""

from __future__ import annotations

from supervise.cases.models import Case
from supervise.cases.services import identity_box
from supervise.cases.workflow import Actor
from supervise.errors import Forbidden, InvalidInput
from supervise.extensions import db
from supervise.i18n import N_
from supervise.staff import audit
from supervise.staff.models import Role, User


def may_reveal(actor: Actor, case: Case) -> bool:
    """The identity wall (DESIGN.md §2a): intake and supervisors of the owning discipline body or
    of a body above it. Never a unit, never a handler, never an admin."""
    owner = case.owner
    if (
        actor.kind != "staff"
        or not actor.at_body
        or owner is None
        or not actor.has(Role.INTAKE, Role.SUPERVISOR)
    ):
        return False
    return owner.path.startswith(actor.org_path or "\0")


def reveal_identity(actor: Actor, case: Case, reason: str) -> dict[str, str | None]:
    """Decrypt the reporter's name and phone for this actor, writing one audit row. Commits."""
    if not case.real_name:
        raise InvalidInput(N_("该件为匿名反映"), {"case": [N_("该件为匿名反映")]})
    if not may_reveal(actor, case):
        raise Forbidden(N_("你的角色不能查看反映人身份"))
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(N_("请填写查看理由"), {"reason": [N_("请填写查看理由")]})
    box = identity_box()
    audit.record(
        "identity_view",
        user=db.session.get(User, actor.user_id),
        case_id=case.id,
        detail={"reason": reason[:500]},
    )
    db.session.commit()
    return {"name": box.open(case.reporter_name_enc), "phone": box.open(case.reporter_phone_enc)}
