"""The case workflow (受理 → 转办 → 反馈): states, the transition table, guards, one function per action.

Free of Flask on purpose: every function takes a `Context` (an SQLAlchemy session, the deadline
clocks, the time) and an `Actor`, so it can be read in one screen and tested without a server.
Each action checks, in order: the caller can see the case (else 404, never a hint that it exists),
the state allows the action (else 409 naming the state and what is allowed), the caller's role and
where the case sits (403), the version the caller saw (409), then the action's own guard. It then
changes the case, appends an event and writes any outbox rows, all in the caller's transaction;
the caller commits.

Who does what (DESIGN.md §2a): discipline bodies (纪检监察机构) receive, classify, decide and
answer; a service complaint (作风效能诉求) may be transferred to a responsible unit, arriving there
`assigned` to the unit (its leader picks the handler), and the unit's answer comes back to the
owning body for review; a 检举控告 case never leaves the discipline bodies. A transfer to another
body arrives there `received`, for its intake; the response clock keeps running from receipt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise.cases.labels import ACTION_LABELS, REJECT_REASON_LABELS, STATUS_LABELS
from supervise.cases.models import Case, Event
from supervise.cases.states import OPEN_STATES, Action, CaseKind, Disposal, Rating, RejectReason, Status
from supervise.dbtypes import utcnow
from supervise.deadlines import tracking
from supervise.deadlines.calendar import local_date
from supervise.deadlines.clocks import Clocks
from supervise.deadlines.models import RESPONSE_KINDS, ClockKind
from supervise.errors import Forbidden, IllegalTransition, InvalidInput, NotFound, StaleVersion
from supervise.i18n import N_
from supervise.notify.models import OutboxMessage
from supervise.notify.outbox import queue_message
from supervise.orgs.models import Org
from supervise.orgs.routing import OrgTree
from supervise.robots import services as robots
from supervise.staff.models import Role, User

S = Status
CITIZEN, SYSTEM = "citizen", "system"
INTAKE, HANDLER, SUPERVISOR = Role.INTAKE.value, Role.HANDLER.value, Role.SUPERVISOR.value
LEADER, ADMIN = Role.LEADER.value, Role.ADMIN.value
ALL_STATES = frozenset(Status)
# Where the case must sit for the actor to act (None: citizen and system rows):
BODY = "body"  # at a discipline body, and the actor works there (a supervisor: at or above it)
UNIT = "unit"  # at a unit, and the actor works at that unit
HERE = "here"  # wherever it sits, the actor works there
OWNER = "owner"  # the actor is discipline staff who can see the case, wherever it sits
SEEN = "seen"  # anyone who can see the case
# A supervisor may reverse a rejection (撤销不予受理) this many working days after it.
REJECTION_REVIEW_DAYS = 10


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[Status]
    target: Status | None  # None: the state does not change
    roles: frozenset[str]
    where: str | None = None
    public: bool = False  # shown on the citizen's timeline
    variant: str | None = None  # picks between rows of one action (e.g. the rating given)
    # Takes part in the optimistic lock (checks and bumps `version`). A note changes nothing a
    # colleague decided on: it must not turn their open page stale.
    locks: bool = True


def _t(action, sources, target, roles, where=None, public=False, variant=None, locks=True) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(roles), where, public, variant, locks)


IN_HAND = {S.ACCEPTED, S.ASSIGNED, S.PROCESSING, S.REOPENED}
DRAFTABLE = {S.ASSIGNED, S.REOPENED, S.PROCESSING, S.FEEDBACK_PENDING_REVIEW}
TRANSITIONS: tuple[Transition, ...] = (
    _t(Action.ACCEPT, {S.RECEIVED}, S.ACCEPTED, {INTAKE}, BODY, public=True),
    _t(Action.REJECT, {S.RECEIVED}, S.REJECTED, {INTAKE}, BODY, public=True),
    _t(Action.MERGE, {S.RECEIVED}, S.MERGED, {INTAKE}, BODY, public=True),
    _t(Action.REVERSE_REJECTION, {S.REJECTED}, S.RECEIVED, {SUPERVISOR}, BODY, public=True),
    _t(Action.CLASSIFY, IN_HAND, None, {INTAKE, SUPERVISOR}, BODY),
    _t(Action.TRANSFER, {S.RECEIVED} | IN_HAND, S.RECEIVED, {INTAKE, SUPERVISOR}, BODY, True, "to_body"),
    _t(Action.TRANSFER, IN_HAND, S.ASSIGNED, {INTAKE, SUPERVISOR}, BODY, True, "to_unit"),
    _t(Action.RETURN, {S.ASSIGNED, S.PROCESSING}, S.ACCEPTED, {LEADER}, UNIT),
    _t(Action.ASSIGN, IN_HAND, S.ASSIGNED, {INTAKE, SUPERVISOR}, BODY),
    _t(Action.ASSIGN, {S.ASSIGNED, S.PROCESSING}, S.ASSIGNED, {LEADER}, UNIT),
    _t(Action.START, {S.ASSIGNED, S.REOPENED}, S.PROCESSING, {HANDLER}, HERE),
    _t(Action.ANSWER, {S.ACCEPTED}, S.FEEDBACK_PENDING_REVIEW, {INTAKE, HANDLER}, BODY),
    # Drafting from assigned/reopened records the start first (no separate 开始办理 click).
    _t(Action.FEEDBACK, DRAFTABLE, S.FEEDBACK_PENDING_REVIEW, {HANDLER}, HERE),
    _t(Action.PUBLISH, {S.FEEDBACK_PENDING_REVIEW}, S.RESPONDED, {SUPERVISOR}, BODY, public=True),
    # A supervisor sends a draft back (退回修改), or reopens a published or closed case (重办).
    _t(Action.REOPEN, {S.FEEDBACK_PENDING_REVIEW}, S.PROCESSING, {SUPERVISOR}, BODY),
    _t(Action.REOPEN, {S.RESPONDED, S.CLOSED}, S.REOPENED, {SUPERVISOR}, BODY, public=True),
    _t(Action.REQUEST_EXTENSION, OPEN_STATES, None, {HANDLER, INTAKE, LEADER}, HERE),
    _t(Action.EXTEND, OPEN_STATES, None, {SUPERVISOR}, OWNER, public=True),
    _t(Action.NOTE, ALL_STATES, None, {INTAKE, HANDLER, SUPERVISOR, LEADER}, SEEN, locks=False),
    _t(Action.MESSAGE, OPEN_STATES | {S.RESPONDED}, None, {INTAKE, HANDLER, SUPERVISOR}, OWNER, public=True),
    _t(Action.RATE, {S.RESPONDED}, S.CLOSED, {CITIZEN}, public=True, variant="satisfied"),
    _t(Action.RATE, {S.RESPONDED}, S.REOPENED, {CITIZEN}, public=True, variant="unsatisfied"),
    # A merged case's reporter rates the answer of the case theirs joined (合并件评价).
    _t(Action.RATE, {S.MERGED}, None, {CITIZEN}, public=True, variant="merged"),
    _t(Action.SUPPLEMENT, OPEN_STATES | {S.RESPONDED}, None, {CITIZEN}, public=True),
    _t(Action.AUTO_CLOSE, {S.RESPONDED}, S.CLOSED, {SYSTEM}, public=True),
)


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user (with their roles and org), the citizen holding the access code, or
    the system."""

    kind: str  # "staff" | CITIZEN | SYSTEM
    user_id: int | None = None
    username: str | None = None
    roles: frozenset[str] = frozenset()
    org_id: int | None = None
    org_path: str | None = None
    at_body: bool = False  # the actor's org is a discipline body

    @classmethod
    def staff(cls, user: User) -> Actor:
        return cls("staff", user.id, user.username, user.roles, user.org_id, user.org.path, user.org.is_body)

    @classmethod
    def citizen(cls) -> Actor:
        return cls(CITIZEN)

    @classmethod
    def system(cls) -> Actor:
        return cls(SYSTEM)

    @property
    def role_keys(self) -> frozenset[str]:
        return self.roles if self.kind == "staff" else frozenset({self.kind})

    def has(self, *roles: str) -> bool:
        return not self.role_keys.isdisjoint(roles)

    @property
    def oversees_subtree(self) -> bool:
        """Supervisors and admins of a discipline body see what the bodies below them own."""
        return self.at_body and self.has(SUPERVISOR, ADMIN)

    def covers(self, org: Org) -> bool:
        return org.path.startswith(self.org_path or "\0")

    def sees(self, case: Case) -> bool:
        """Case visibility (DESIGN.md §2a). Discipline staff see what their body owns (supervisors
        and admins: what the bodies below own too). A unit sees only what was transferred to it,
        and never a 检举控告 case, whatever else is true."""
        if self.kind != "staff":
            return True  # citizens and the system reach a case by other means
        if self.at_body:
            owner = case.owner
            if owner is None:
                return False
            return self.covers(owner) if self.oversees_subtree else owner.id == self.org_id
        if case.kind == CaseKind.ACCUSATION:
            return False
        return case.unit_org_id is not None and case.unit_org_id == self.org_id

    def acts_at(self, org: Org) -> bool:
        """The actor works where the case sits (a body's supervisor: at it or above it)."""
        if self.kind != "staff":
            return False
        if org.id == self.org_id:
            return True
        return self.at_body and org.is_body and self.has(SUPERVISOR) and self.covers(org)


@dataclass
class Context:
    session: Session
    clocks: Clocks
    now: datetime = field(default_factory=utcnow)

    @cached_property
    def tree(self) -> OrgTree:
        """The org tree with its staffed roles, loaded once per unit of work when routing needs it."""
        return OrgTree.load(self.session)


def transitions_for(action: Action, status: Status) -> list[Transition]:
    return [t for t in TRANSITIONS if t.action == action and status in t.sources]


def _placed(t: Transition, case: Case, actor: Actor) -> bool:
    """The transition's `where`: is the case at the right kind of org, and does the actor act there?"""
    if t.where is None:
        return actor.kind != "staff"
    if actor.kind != "staff":
        return False
    if t.where == SEEN:
        return True
    if t.where == OWNER:
        return actor.at_body
    if t.where == HERE:
        return actor.acts_at(case.org)
    at_body = case.org.is_body
    return (at_body if t.where == BODY else not at_body) and actor.acts_at(case.org)


def allowed_actions(case: Case, actor: Actor) -> list[str]:
    """The actions this actor may take on this case now: what a UI offers, what a 409 lists."""
    seen: list[str] = []
    for t in TRANSITIONS:
        if (
            case.status in t.sources
            and actor.has(*t.roles)
            and _placed(t, case, actor)
            and t.action.value not in seen
        ):
            seen.append(t.action.value)
    return seen


def _labels(actions: list[str]) -> str:
    return "、".join(ACTION_LABELS.get(a, a) for a in actions) or "无"


def _check(case: Case, actor: Actor, action: Action, version: int | None, variant: str | None) -> Transition:
    if not actor.sees(case):
        raise NotFound(N_("找不到该诉求件"))
    candidates = [t for t in transitions_for(action, Status(case.status)) if variant in (None, t.variant)]
    allowed = allowed_actions(case, actor)
    details = {"status": case.status, "action": action.value, "allowed_actions": allowed}
    if not candidates:
        raise IllegalTransition(
            f"当前状态为“{STATUS_LABELS.get(case.status, case.status)}”，"
            f"不能执行“{ACTION_LABELS.get(action.value, action.value)}”。可执行的操作：{_labels(allowed)}",
            details,
        )
    permitted = [t for t in candidates if actor.has(*t.roles) and _placed(t, case, actor)]
    if not permitted:
        raise Forbidden(
            f"你的角色或所在单位不能对此件执行“{ACTION_LABELS.get(action.value, action.value)}”", details
        )
    if version is not None and permitted[0].locks and version != case.version:
        raise StaleVersion(
            N_("该诉求件已被他人修改，请刷新后重试"),
            {"your_version": version, "current_version": case.version, "status": case.status},
        )
    return permitted[0]


def _apply(
    ctx: Context,
    case: Case,
    actor: Actor,
    action: Action,
    version: int | None,
    *,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    variant: str | None = None,
) -> Event:
    transition = _check(case, actor, action, version, variant)
    before = case.status
    if transition.target is not None:
        case.status = transition.target
    if transition.locks:  # a note leaves the case row (and so its version) alone
        if actor.kind == "staff":
            case.priority = base_priority(case)  # staff have looked at it: it leaves the top
        case.updated_at = ctx.now  # bumps the version even when no other column changes
    event = Event(
        case=case,
        at=ctx.now,
        action=action.value,
        actor_id=actor.user_id,
        actor_kind=actor.kind,
        from_status=before,
        to_status=case.status,
        public=transition.public,
        note=note,
        data=data or {},
    )
    ctx.session.add(event)
    return event


# Queue order (ascending): a citizen's unanswered reply first, then real-name cases (实名优先).
PRIORITY_CITIZEN_REPLIED, PRIORITY_REAL_NAME, PRIORITY_ANONYMOUS = -1, 0, 1


def base_priority(case: Case) -> int:
    return PRIORITY_REAL_NAME if case.real_name else PRIORITY_ANONYMOUS


def _require_days(days: int) -> None:
    if not 1 <= days <= 30:
        message = N_("延期天数须在 1 到 30 个工作日之间")
        raise InvalidInput(message, {"days": [message]})


def _require_text(value: str | None, field_name: str, message: str) -> str:
    """`message` is the whole sentence (请填写…), one catalog entry, not a label glued in."""
    if not value or not value.strip():
        raise InvalidInput(message, {field_name: [message]})
    return value.strip()


# -- staff actions -----------------------------------------------------------------------------


def _kind(value: str | None, default: str | None) -> CaseKind:
    try:
        return CaseKind(value or default or CaseKind.SERVICE)
    except ValueError:
        raise InvalidInput(N_("未知的定性"), {"kind": [N_("请选择定性")]}) from None


def accept(
    ctx: Context,
    case: Case,
    actor: Actor,
    *,
    version: int | None,
    kind: str | None = None,
    assign_to: User | None = None,
    answer_text: str | None = None,
    disposal: str | None = None,
    disposal_note: str | None = None,
) -> Event:
    """受理, with its 定性 (the category's default unless intake says otherwise). Two one-step
    forms save small offices a round trip: 受理并交办 (`assign_to`) and 受理并直接答复
    (`answer_text`, for a consultation answered on the spot)."""
    chosen = _kind(kind, case.category.default_kind)
    event = _apply(ctx, case, actor, Action.ACCEPT, version, note="已受理", data={"kind": chosen.value})
    case.kind = chosen.value
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE, ClockKind.ACK])
    _sms(ctx, case, "case_accepted", once=True)
    if assign_to is not None:
        assign(ctx, case, actor, version=None, user=assign_to)
    elif answer_text is not None:
        answer(
            ctx, case, actor, version=None, text=answer_text, disposal=disposal, disposal_note=disposal_note
        )
    return event


def classify(ctx: Context, case: Case, actor: Actor, *, version: int, kind: str) -> Event:
    """改变定性 while the case is at its body (a case at a unit is a service complaint by then)."""
    chosen = _kind(kind, None)
    event = _apply(
        ctx, case, actor, Action.CLASSIFY, version, note=None, data={"from": case.kind, "to": chosen.value}
    )
    case.kind = chosen.value
    return event


def _sms(ctx: Context, case: Case, kind: str, *, once: bool = False) -> None:
    """Tell citizens who left a mobile number (受理告知, 答复, 处理结果告知): this case's reporter
    and those of the cases merged into it, who are answered with it. `once`: only the first time."""
    with ctx.session.no_autoflush:
        merged = (
            list(
                ctx.session.scalars(
                    select(Case).where(Case.merged_into_id == case.id, Case.reporter_phone_enc.is_not(None))
                )
            )
            if case.id
            else []
        )
    for target in [case, *merged]:
        if not target.reporter_phone_enc:
            continue
        key = f"sms-{kind}-{target.id}" if once and target.id else None
        with ctx.session.no_autoflush:
            sent = key is not None and ctx.session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)
            )
        if not sent:
            queue_message(ctx.session, kind=kind, channel="sms", case=target, dedupe_key=key)


def _end_case_clocks(ctx: Context, case: Case) -> None:
    """Rejected or merged: the intake decision is the answer; every clock stops."""
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE, ClockKind.ACK])
    tracking.stop_clocks(ctx.session, case, ctx.now, RESPONSE_KINDS, outcome="ended")


def reject(
    ctx: Context, case: Case, actor: Actor, *, version: int, reason: str, reason_code: str | None = None
) -> Event:
    """不予受理: a reason from the list plus the clerk's words, shown to the citizen (and sent to
    a real-name reporter). The body's supervisor reviews recent rejections and may reverse one."""
    try:
        code = RejectReason(reason_code or "")
    except ValueError:
        raise InvalidInput(
            N_("请选择不予受理的理由"), {"reason_code": [N_("请选择不予受理的理由")]}
        ) from None
    reason = _require_text(reason, "reason", N_("请填写不予受理的说明"))
    event = _apply(
        ctx,
        case,
        actor,
        Action.REJECT,
        version,
        note=f"{REJECT_REASON_LABELS[code]}：{reason}",
        data={"reason_code": code.value},
    )
    case.reject_reason = code.value
    _end_case_clocks(ctx, case)
    _sms(ctx, case, "case_rejected", once=True)
    case.closed_at = ctx.now
    return event


def rejection_reversible_until(ctx: Context, case: Case):
    """The last day a rejection may be reversed: 10 working days after it."""
    if case.status != S.REJECTED or case.closed_at is None:
        return None
    return ctx.clocks.calendar.add_working_days(local_date(case.closed_at), REJECTION_REVIEW_DAYS).day


def reverse_rejection(ctx: Context, case: Case, actor: Actor, *, version: int, reason: str) -> Event:
    """撤销不予受理: back to `received` at the body, with fresh clocks as for a new arrival."""
    reason = _require_text(reason, "reason", N_("请填写撤销理由"))
    _check(case, actor, Action.REVERSE_REJECTION, version, None)
    until = rejection_reversible_until(ctx, case)
    if until is None or local_date(ctx.now) > until:
        message = f"不予受理已超过 {REJECTION_REVIEW_DAYS} 个工作日，不能撤销"
        raise InvalidInput(message, {"reason": [message]})
    event = _apply(ctx, case, actor, Action.REVERSE_REJECTION, version, note=reason)
    case.reject_reason = case.closed_at = None
    # The citizen waited for nothing: a fresh response clock from today, and the body's 5 days.
    _end_case_clocks(ctx, case)  # none should run after a rejection; never two of a kind
    tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.REOPENED, ctx.now)
    tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.STAGE, ctx.now)
    _notify_org(ctx, case, "case_received", case.org_id, INTAKE)
    return event


def merge(ctx: Context, case: Case, actor: Actor, *, version: int, into: Case) -> Event:
    """重复件合并 into another case the actor can see; its reporter is answered with that case."""
    if into.id == case.id or not actor.sees(into):
        raise InvalidInput(N_("找不到要合并到的诉求件"), {"into": [N_("找不到要合并到的诉求件")]})
    if into.status in (S.MERGED, S.REJECTED):
        raise InvalidInput(
            N_("不能合并到已合并或不予受理的诉求件"), {"into": [N_("不能合并到已合并或不予受理的诉求件")]}
        )
    event = _apply(
        ctx,
        case,
        actor,
        Action.MERGE,
        version,
        note=f"与 {into.tracking_no} 合并办理",
        data={"into": into.tracking_no},
    )
    case.merged_into = into
    _end_case_clocks(ctx, case)
    case.closed_at = ctx.now
    return event


def _tell_assignee(ctx: Context, case: Case, kind: str) -> None:
    """An in-app notice to the case's handler, if it has one."""
    if case.assignee_id:
        queue_message(
            ctx.session, kind=kind, channel="inapp", case=case, payload={"user_ids": [case.assignee_id]}
        )


def _tell_handlers(ctx: Context, case: Case, kind: str, actor: Actor | None = None) -> None:
    """An in-app notice to whoever handles the case's answer: its assignee and the drafter of the
    answer (a body's 直接答复 has a drafter and no assignee), never the person acting."""
    ids = {case.assignee_id, _drafter_id(case)} - {None, actor.user_id if actor else None}
    if ids:
        queue_message(ctx.session, kind=kind, channel="inapp", case=case, payload={"user_ids": sorted(ids)})


def _notify_org(ctx: Context, case: Case, kind: str, org_id: int, role: str) -> None:
    queue_message(
        ctx.session, kind=kind, channel="inapp", case=case, payload={"org_id": org_id, "role": role}
    )


ACCUSATION_STAYS_INSIDE = "检举控告件只能在纪检监察机构之间转办，不得转给被反映单位或其他任何单位"


def transfer(
    ctx: Context, case: Case, actor: Actor, *, version: int, org: Org, note: str | None = None
) -> Event:
    """转办. To another discipline body: it owns the case from now on and its intake receives it.
    To a unit (a service complaint only): the unit's leader assigns it and the answer comes back
    for review. Either way the new org gets a fresh stage deadline and must have someone to act."""
    if org.id == case.org_id or not org.active:
        raise InvalidInput(N_("请选择另一个有效的承办单位"), {"org": [N_("请选择另一个有效的承办单位")]})
    to_unit = not org.is_body
    _check(case, actor, Action.TRANSFER, version, "to_unit" if to_unit else "to_body")
    if to_unit:
        if case.kind is None:
            raise InvalidInput(N_("请先定性：只有作风效能等诉求可以转办给单位"), {"org": [N_("请先定性")]})
        if case.kind == CaseKind.ACCUSATION:
            raise InvalidInput(
                ACCUSATION_STAYS_INSIDE, {"org": [ACCUSATION_STAYS_INSIDE], "rule": "accusation"}
            )
        if not ctx.tree.has_role(org.id, LEADER):
            message = f"{org.name}尚无在职的单位负责人账号，转办后无人签收"
            raise InvalidInput(message, {"org": [message]})
    elif not ctx.tree.can_receive(org.id):
        message = f"{org.name}尚无在职的受理员账号，转办后无人受理"
        raise InvalidInput(message, {"org": [message]})
    event = _apply(
        ctx,
        case,
        actor,
        Action.TRANSFER,
        version,
        note=f"转至{org.name}办理",
        data={"from_org": case.org.code, "to_org": org.code, "internal_note": note},
        variant="to_unit" if to_unit else "to_body",
    )
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE])  # passing it on is on time
    case.org, case.org_id, case.assignee = org, org.id, None
    if to_unit:
        case.unit, case.unit_org_id = org, org.id
    else:
        case.owner, case.owner_org_id = org, org.id
        case.unit, case.unit_org_id = None, None
    tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.STAGE, ctx.now)
    _notify_org(
        ctx, case, "case_transferred" if to_unit else "case_received", org.id, LEADER if to_unit else INTAKE
    )
    return event


def return_to_owner(ctx: Context, case: Case, actor: Actor, *, version: int, reason: str) -> Event:
    """退回: a unit gives back a case that is not its own; the owner's intake decides again."""
    reason = _require_text(reason, "reason", N_("请填写退回理由"))
    owner = case.owner  # loaded before the change: a lazy load afterwards would flush it early
    event = _apply(ctx, case, actor, Action.RETURN, version, note=reason, data={"from_org": case.org.code})
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE])
    case.org, case.org_id = owner, owner.id
    case.unit, case.unit_org_id, case.assignee = None, None, None
    tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.STAGE, ctx.now)
    _notify_org(ctx, case, "case_returned", case.org_id, INTAKE)
    return event


def assign(ctx: Context, case: Case, actor: Actor, *, version: int | None, user: User) -> Event:
    """交办 to a handler of the org holding the case (a body's own staff for a 检举控告 case)."""
    if not user.active or user.org_id != case.org_id or not user.has_role(HANDLER):
        raise InvalidInput(
            N_("承办人须是本单位在职的承办人员"), {"user": [N_("承办人须是本单位在职的承办人员")]}
        )
    event = _apply(ctx, case, actor, Action.ASSIGN, version, data={"assignee": user.username})
    case.assignee = user
    queue_message(
        ctx.session, kind="case_assigned", channel="inapp", case=case, payload={"user_ids": [user.id]}
    )
    return event


def _require_assignee(case: Case, actor: Actor) -> None:
    if case.assignee_id is not None and case.assignee_id != actor.user_id:
        raise Forbidden(
            N_("只有本件承办人可以办理"), {"assignee": case.assignee.username if case.assignee else None}
        )


def start(ctx: Context, case: Case, actor: Actor, *, version: int) -> Event:
    """开始办理 (also picks a reopened case back up); at a unit this meets its stage deadline."""
    _check(case, actor, Action.START, version, None)
    _require_assignee(case, actor)
    if case.assignee_id is None:
        case.assignee_id = actor.user_id
    if not case.org.is_body:
        tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE])
    return _apply(ctx, case, actor, Action.START, version)


def _disposal(case: Case, disposal: str | None, note: str | None) -> dict[str, str]:
    """A 检举控告 case ends with a recorded 处置方式 and its reason; other kinds have none."""
    if case.kind != CaseKind.ACCUSATION:
        return {}
    try:
        chosen = Disposal(disposal or "")
    except ValueError:
        raise InvalidInput(N_("检举控告件须选择处置方式"), {"disposal": [N_("请选择处置方式")]}) from None
    note = _require_text(note, "disposal_note", N_("请填写处置理由"))
    case.disposal, case.disposal_note = chosen.value, note
    return {"disposal": chosen.value}


def _draft(
    ctx: Context,
    case: Case,
    actor: Actor,
    action: Action,
    version,
    text,
    disposal,
    disposal_note,
    *,
    to_review: bool = True,
) -> Event:
    text = _require_text(text, "text", N_("请填写答复内容"))
    owner = case.owner  # loaded before the change (see return_to_owner)
    data = _disposal(case, disposal, disposal_note)
    case.feedback_draft = text
    from_unit = not case.org.is_body
    event = _apply(ctx, case, actor, action, version, note=text, data=data | {"from_unit": from_unit})
    if from_unit:
        # 反馈 → 审核: the unit's answer goes back to the owner, whose review has its own clock.
        tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE])
        case.org, case.org_id = owner, owner.id
        tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.STAGE, ctx.now)
    if to_review:  # an answer published in the same step awaits nobody's review
        _notify_org(ctx, case, "review_requested", case.org_id, SUPERVISOR)
        # …and the reviewing body's WeCom / DingTalk group, if it has one (supervise/robots).
        robots.queue_for_org(ctx.session, kind="review_requested", case=case, org_id=case.org_id)
    return event


def feedback(
    ctx: Context,
    case: Case,
    actor: Actor,
    *,
    version: int,
    text: str,
    disposal: str | None = None,
    disposal_note: str | None = None,
) -> Event:
    """拟写答复 (a unit's 反馈): a draft, published only after the owner's supervisor approves it.
    Drafting an assigned (or reopened) case starts it: the 开始办理 event is recorded first, so
    the unit's stage clock and the reports see the start without a separate click."""
    _check(case, actor, Action.FEEDBACK, version, None)
    _require_assignee(case, actor)
    if case.status in (S.ASSIGNED, S.REOPENED):
        start(ctx, case, actor, version=version)
        version = None  # checked once, above; the start just bumped it
    return _draft(ctx, case, actor, Action.FEEDBACK, version, text, disposal, disposal_note)


def answer(
    ctx: Context,
    case: Case,
    actor: Actor,
    *,
    version: int | None,
    text: str,
    disposal: str | None = None,
    disposal_note: str | None = None,
) -> Event:
    """直接答复: an accepted case answered by the body without assigning it. It is published at
    once only where one person may draft and publish (the org's setting); else it awaits review."""
    _check(case, actor, Action.ANSWER, version, None)
    at_once = actor.has(SUPERVISOR) and case.org.self_publish_allowed
    event = _draft(
        ctx, case, actor, Action.ANSWER, version, text, disposal, disposal_note, to_review=not at_once
    )
    if at_once:
        publish(ctx, case, actor, version=None)
    return event


def _drafter_id(case: Case) -> int | None:
    drafts = [e for e in case.events if e.action in (Action.FEEDBACK, Action.ANSWER)]
    return drafts[-1].actor_id if drafts else None


def publish(ctx: Context, case: Case, actor: Actor, *, version: int | None, text: str | None = None) -> Event:
    """审核发布: the citizen sees the answer (for a 检举控告 case, 处理结果告知); this instant
    stops the response clock. Four eyes: the drafter does not publish, unless the org allows it.
    `text`: the reviewer's edited wording (修改后发布), recorded as such on the event."""
    _check(case, actor, Action.PUBLISH, version, None)
    edited = text is not None and text.strip() and text.strip() != (case.feedback_draft or "").strip()
    if _drafter_id(case) == actor.user_id and not case.org.self_publish_allowed:
        raise Forbidden(
            N_("拟稿人不能审核发布自己的答复（四眼原则）；请由另一位审核人发布"),
            {"rule": "four_eyes", "status": case.status},
        )
    data = {"disposal": case.disposal} if case.disposal else {}
    if edited:
        data["edited"] = True
        case.feedback_draft = text.strip()
    event = _apply(ctx, case, actor, Action.PUBLISH, version, note=case.feedback_draft, data=data)
    case.feedback_text = case.feedback_draft
    case.responded_at = ctx.now
    case.rating = case.rating_comment = case.rated_at = None
    tracking.stop_clocks(ctx.session, case, ctx.now, [*RESPONSE_KINDS, ClockKind.STAGE])
    tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.RATING, ctx.now)
    _sms(ctx, case, "feedback_published")
    _tell_handlers(ctx, case, "answer_published", actor)
    return event


def _restart_clock(ctx: Context, case: Case, unit: Org | None, handler: User | None) -> None:
    """重办: a fresh response clock from today; the rating window, if open, ends. An answer a
    unit wrote goes back to that unit's handler (the unit must put it right), with the unit's
    stage clock; otherwise it stays with the body."""
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.RATING], outcome="ended")
    tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.REOPENED, ctx.now)
    case.responded_at = case.closed_at = None
    case.reopen_count += 1
    _back_to_the_units_handler(ctx, case, unit, handler)


def _back_to_the_units_handler(ctx: Context, case: Case, unit: Org | None, handler: User | None) -> None:
    if unit is not None and handler is not None and handler.org_id == unit.id and case.org_id != unit.id:
        tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE])
        case.org, case.org_id = unit, unit.id
        tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.STAGE, ctx.now)


def reopen(ctx: Context, case: Case, actor: Actor, *, version: int, reason: str) -> Event:
    """重办 (or 退回修改 of a draft under review: a unit's draft goes back to the unit)."""
    reason = _require_text(reason, "reason", N_("请填写重办理由"))
    unit, handler = case.unit, case.assignee  # loaded before the change (see return_to_owner)
    event = _apply(ctx, case, actor, Action.REOPEN, version, note=reason)
    if case.status == S.REOPENED:
        _restart_clock(ctx, case, unit, handler)
    else:
        _back_to_the_units_handler(ctx, case, unit, handler)
    _tell_handlers(ctx, case, "case_reopened", actor)
    return event


def request_extension(
    ctx: Context, case: Case, actor: Actor, *, version: int, days: int, reason: str
) -> Event:
    """申请延期: recorded internally; the owner's supervisors are notified and decide with `extend`."""
    reason = _require_text(reason, "reason", N_("请填写延期理由"))
    _require_days(days)
    _require_extension_left(ctx, case)
    event = _apply(ctx, case, actor, Action.REQUEST_EXTENSION, version, note=reason, data={"days": days})
    _notify_org(ctx, case, "extension_requested", case.owner_org_id or case.org_id, SUPERVISOR)
    return event


def extend(ctx: Context, case: Case, actor: Actor, *, version: int, days: int, reason: str) -> Event:
    """延期: a supervisor grants extra working days."""
    reason = _require_text(reason, "reason", N_("请填写延期理由"))
    _require_days(days)
    _require_extension_left(ctx, case)
    _check(case, actor, Action.EXTEND, version, None)
    old = case.response_due_at
    clock = tracking.extend_response(ctx.session, ctx.clocks, case, days, ctx.now)
    case.extension_days += days
    case.extension_count += 1
    return _apply(
        ctx,
        case,
        actor,
        Action.EXTEND,
        version,
        note=reason,
        data={"days": days, "from": old.isoformat(), "to": clock.due_at.isoformat()},
    )


def _require_extension_left(ctx: Context, case: Case) -> None:
    if case.extension_count >= ctx.clocks.policy.max_extensions:
        message = f"本件已延期 {case.extension_count} 次，达到上限（{ctx.clocks.policy.max_extensions} 次）"
        raise InvalidInput(message, {"days": [message]})


def message(ctx: Context, case: Case, actor: Actor, *, version: int, text: str) -> Event:
    """留言: ask the citizen a question or for more material; shown on their tracking page, and
    sent by SMS when they left a number. Their answer comes back as a supplement."""
    text = _require_text(text, "text", N_("请填写留言内容"))
    event = _apply(ctx, case, actor, Action.MESSAGE, version, note=text)
    if case.reporter_phone_enc:
        queue_message(ctx.session, kind="citizen_message", channel="sms", case=case)
    return event


def note(ctx: Context, case: Case, actor: Actor, *, version: int, text: str) -> Event:
    """内部备注: internal, never shown to the citizen."""
    text = _require_text(text, "text", N_("请填写备注内容"))
    return _apply(ctx, case, actor, Action.NOTE, version, note=text)


# -- the citizen and the system -------------------------------------------------------------


def rate(ctx: Context, case: Case, *, rating: Rating, comment: str | None = None) -> Event:
    """评价: unsatisfied sends the case back (重办) with a fresh 15 working days. The reporter of
    a merged case rates the answer of the case theirs joined: recorded on both, counted for that
    case's handling, and it reopens nothing (that case's own reporter decides that)."""
    if case.status == S.MERGED:
        return _rate_merged(ctx, case, rating, comment)
    variant = "unsatisfied" if rating == Rating.UNSATISFIED else "satisfied"
    unit, handler = case.unit, case.assignee  # loaded before the change (see return_to_owner)
    event = _record_rating(ctx, case, rating, comment, variant)
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.RATING])
    if case.status == S.REOPENED:
        _restart_clock(ctx, case, unit, handler)
        _tell_handlers(ctx, case, "case_reopened")
    else:
        case.closed_at = ctx.now
        _tell_handlers(ctx, case, "case_rated")
    return event


def _record_rating(ctx: Context, case: Case, rating: Rating, comment: str | None, variant: str) -> Event:
    event = _apply(
        ctx,
        case,
        Actor.citizen(),
        Action.RATE,
        None,
        note=comment,
        data={"rating": rating.value},
        variant=variant,
    )
    case.rating, case.rating_comment, case.rated_at = rating.value, comment, ctx.now
    return event


def merged_can_rate(case: Case) -> bool:
    master = case.merged_into
    return (
        case.status == S.MERGED
        and case.rated_at is None
        and master is not None
        and master.responded_at is not None
        and master.status in (S.RESPONDED, S.CLOSED)
    )


def _rate_merged(ctx: Context, case: Case, rating: Rating, comment: str | None) -> Event:
    if not merged_can_rate(case):
        raise IllegalTransition(N_("合并办理的诉求件尚未答复，暂不能评价"), {"status": case.status})
    event = _record_rating(ctx, case, rating, comment, "merged")
    ctx.session.add(
        Event(
            case=case.merged_into,
            at=ctx.now,
            action=Action.RATE.value,
            actor_kind=CITIZEN,
            public=False,
            note=comment,
            data={"rating": rating.value, "from_merged": case.tracking_no},
        )
    )
    return event


def supplement(ctx: Context, case: Case, *, text: str) -> Event:
    """补充材料 from the citizen."""
    text = _require_text(text, "text", N_("请填写补充内容"))
    event = _apply(ctx, case, Actor.citizen(), Action.SUPPLEMENT, None, note=text)
    case.priority = PRIORITY_CITIZEN_REPLIED  # back to the top of the handler's queue
    _tell_assignee(ctx, case, "citizen_replied")
    return event


def auto_close(ctx: Context, case: Case) -> Event:
    """Closed by the system after the rating window passed without a rating."""
    event = _apply(ctx, case, Actor.system(), Action.AUTO_CLOSE, None, note="逾期未评价，系统自动办结")
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.RATING], outcome="ended")
    case.closed_at = ctx.now
    return event


def find_case(session: Session, tracking_no: str) -> Case | None:
    return session.scalar(select(Case).where(Case.tracking_no == tracking_no))
