"""The case workflow (受理 → 转办 → 反馈): states, the transition table, guards, one function per action.

Free of Flask on purpose: every function takes a `Context` (an SQLAlchemy session, the deadline
clocks, the time) and an `Actor`, so it can be read in one screen and tested without a server.
Each action checks, in order: the caller can see the case (else 404, never a hint that it exists),
the state allows the action (else 409 naming the state and what is allowed), the caller's role
(403), the version the caller saw (409), then the action's own guard. It then changes the case,
appends an event and writes any outbox rows, all in the caller's transaction; the caller commits.

Transfer decision (DESIGN.md §3 left it open): a transferred case arrives at the new org as
`received`, in the queue of that org's intake, who must accept, reject or pass it on within the
stage deadline; the response clock keeps running from the original receipt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise.cases.models import Case, Event
from supervise.cases.states import OPEN_STATES, Action, Rating, Status
from supervise.dbtypes import utcnow
from supervise.deadlines import tracking
from supervise.deadlines.clocks import Clocks
from supervise.deadlines.models import RESPONSE_KINDS, ClockKind
from supervise.errors import Forbidden, IllegalTransition, InvalidInput, NotFound, StaleVersion
from supervise.notify.models import OutboxMessage
from supervise.notify.outbox import queue_message
from supervise.orgs.models import Org
from supervise.staff.models import Role, User

S = Status
CITIZEN, SYSTEM = "citizen", "system"
INTAKE, HANDLER, SUPERVISOR = Role.INTAKE.value, Role.HANDLER.value, Role.SUPERVISOR.value
ALL_STATES = frozenset(Status)


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[Status]
    target: Status | None  # None: the state does not change
    roles: frozenset[str]
    public: bool = False  # shown on the citizen's timeline
    variant: str | None = None  # picks between rows of one action (e.g. the rating given)


def _t(action, sources, target, roles, public=False, variant=None) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(roles), public, variant)


TRANSITIONS: tuple[Transition, ...] = (
    _t(Action.ACCEPT, {S.RECEIVED}, S.ACCEPTED, {INTAKE}, public=True),
    _t(Action.REJECT, {S.RECEIVED}, S.REJECTED, {INTAKE}, public=True),
    _t(Action.MERGE, {S.RECEIVED}, S.MERGED, {INTAKE}, public=True),
    _t(
        Action.TRANSFER,
        {S.RECEIVED, S.ACCEPTED, S.ASSIGNED, S.PROCESSING},
        S.RECEIVED,
        {INTAKE, SUPERVISOR},
        public=True,
    ),
    _t(Action.ASSIGN, {S.ACCEPTED, S.ASSIGNED, S.PROCESSING, S.REOPENED}, S.ASSIGNED, {INTAKE, SUPERVISOR}),
    _t(Action.START, {S.ASSIGNED, S.REOPENED}, S.PROCESSING, {HANDLER}),
    _t(Action.FEEDBACK, {S.PROCESSING, S.FEEDBACK_PENDING_REVIEW}, S.FEEDBACK_PENDING_REVIEW, {HANDLER}),
    _t(Action.PUBLISH, {S.FEEDBACK_PENDING_REVIEW}, S.RESPONDED, {SUPERVISOR}, public=True),
    # A supervisor sends a draft back (退回修改), or reopens a published or closed case (重办).
    _t(Action.REOPEN, {S.FEEDBACK_PENDING_REVIEW}, S.PROCESSING, {SUPERVISOR}),
    _t(Action.REOPEN, {S.RESPONDED, S.CLOSED}, S.REOPENED, {SUPERVISOR}, public=True),
    _t(Action.REQUEST_EXTENSION, OPEN_STATES, None, {HANDLER, INTAKE}),
    _t(Action.EXTEND, OPEN_STATES, None, {SUPERVISOR}, public=True),
    _t(Action.NOTE, ALL_STATES, None, {INTAKE, HANDLER, SUPERVISOR}),
    _t(Action.MESSAGE, OPEN_STATES | {S.RESPONDED}, None, {INTAKE, HANDLER, SUPERVISOR}, public=True),
    _t(Action.RATE, {S.RESPONDED}, S.CLOSED, {CITIZEN}, public=True, variant="satisfied"),
    _t(Action.RATE, {S.RESPONDED}, S.REOPENED, {CITIZEN}, public=True, variant="unsatisfied"),
    _t(Action.SUPPLEMENT, OPEN_STATES | {S.RESPONDED}, None, {CITIZEN}, public=True),
    _t(Action.AUTO_CLOSE, {S.RESPONDED}, S.CLOSED, {SYSTEM}, public=True),
)


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user (with role and org), the citizen holding the access code, or the system."""

    kind: str  # "staff" | CITIZEN | SYSTEM
    user_id: int | None = None
    username: str | None = None
    role: str | None = None
    org_id: int | None = None
    org_path: str | None = None

    @classmethod
    def staff(cls, user: User) -> Actor:
        return cls("staff", user.id, user.username, user.role, user.org_id, user.org.path)

    @classmethod
    def citizen(cls) -> Actor:
        return cls(CITIZEN)

    @classmethod
    def system(cls) -> Actor:
        return cls(SYSTEM)

    @property
    def role_key(self) -> str:
        return self.role if self.kind == "staff" else self.kind

    def sees(self, org: Org) -> bool:
        """Org scope (DESIGN.md §2): supervisors and admins see their subtree, others their own org."""
        if self.kind != "staff":
            return True  # citizens and the system reach a case by other means
        if self.role in (SUPERVISOR, Role.ADMIN):
            return org.path.startswith(self.org_path or "\0")
        return org.id == self.org_id


@dataclass
class Context:
    session: Session
    clocks: Clocks
    now: datetime = field(default_factory=utcnow)


def transitions_for(action: Action, status: Status) -> list[Transition]:
    return [t for t in TRANSITIONS if t.action == action and status in t.sources]


def allowed_actions(case: Case, actor: Actor) -> list[str]:
    """The actions this actor may take on this case now: what a UI offers, what a 409 lists."""
    seen: list[str] = []
    for t in TRANSITIONS:
        if case.status in t.sources and actor.role_key in t.roles and t.action.value not in seen:
            seen.append(t.action.value)
    return seen


def _check(case: Case, actor: Actor, action: Action, version: int | None, variant: str | None) -> Transition:
    if not actor.sees(case.org):
        raise NotFound("找不到该诉求件")
    candidates = [t for t in transitions_for(action, Status(case.status)) if variant in (None, t.variant)]
    allowed = allowed_actions(case, actor)
    if not candidates:
        raise IllegalTransition(
            f"当前状态为“{case.status}”，不能执行“{action.value}”。"
            f"可执行的操作：{'、'.join(allowed) or '无'}",
            {"status": case.status, "action": action.value, "allowed_actions": allowed},
        )
    permitted = [t for t in candidates if actor.role_key in t.roles]
    if not permitted:
        raise Forbidden(
            f"你的角色（{actor.role_key}）不能执行“{action.value}”",
            {"status": case.status, "action": action.value, "allowed_actions": allowed},
        )
    if version is not None and version != case.version:
        raise StaleVersion(
            "该诉求件已被他人修改，请刷新后重试",
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
    if actor.kind == "staff":
        case.priority = base_priority(case)  # staff have looked at it: it leaves the top
    case.updated_at = ctx.now  # a note changes no column, but must still bump the version
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
        message = "延期天数须在 1 到 30 个工作日之间"
        raise InvalidInput(message, {"days": [message]})


def _require_text(value: str | None, field_name: str, label: str) -> str:
    if not value or not value.strip():
        raise InvalidInput(f"请填写{label}", {field_name: [f"请填写{label}"]})
    return value.strip()


# -- staff actions -----------------------------------------------------------------------------


def accept(ctx: Context, case: Case, actor: Actor, *, version: int) -> Event:
    """受理."""
    event = _apply(ctx, case, actor, Action.ACCEPT, version, note="已受理")
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE, ClockKind.ACK])
    _sms(ctx, case, "case_accepted", once=True)
    return event


def _sms(ctx: Context, case: Case, kind: str, *, once: bool = False) -> None:
    """Tell a citizen who left a mobile number (受理告知, 答复); `once`: only the first time."""
    if case.reporter_phone_enc:
        key = f"sms-{kind}-{case.id}" if once and case.id else None
        with ctx.session.no_autoflush:
            sent = key is not None and ctx.session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)
            )
        if not sent:
            queue_message(ctx.session, kind=kind, channel="sms", case=case, dedupe_key=key)


def _end_case_clocks(ctx: Context, case: Case) -> None:
    """Rejected or merged: the intake decision is the answer; every clock stops."""
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE, ClockKind.ACK])
    tracking.stop_clocks(ctx.session, case, ctx.now, RESPONSE_KINDS, outcome="ended")


def reject(ctx: Context, case: Case, actor: Actor, *, version: int, reason: str) -> Event:
    """不予受理: the reason is shown to the citizen."""
    reason = _require_text(reason, "reason", "不予受理的理由")
    event = _apply(ctx, case, actor, Action.REJECT, version, note=reason)
    _end_case_clocks(ctx, case)
    _sms(ctx, case, "case_rejected", once=True)
    case.closed_at = ctx.now
    return event


def merge(ctx: Context, case: Case, actor: Actor, *, version: int, into: Case) -> Event:
    """重复件合并 into another case the actor can see."""
    if into.id == case.id or not actor.sees(into.org):
        raise InvalidInput("找不到要合并到的诉求件", {"into": ["找不到要合并到的诉求件"]})
    if into.status in (S.MERGED, S.REJECTED):
        raise InvalidInput(
            "不能合并到已合并或不予受理的诉求件", {"into": ["不能合并到已合并或不予受理的诉求件"]}
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


def transfer(
    ctx: Context, case: Case, actor: Actor, *, version: int, org: Org, note: str | None = None
) -> Event:
    """转办 to another org; it arrives there as `received`, with a fresh stage deadline."""
    if org.id == case.org_id or not org.active:
        raise InvalidInput("请选择另一个有效的承办单位", {"org": ["请选择另一个有效的承办单位"]})
    event = _apply(
        ctx,
        case,
        actor,
        Action.TRANSFER,
        version,
        note=f"转至{org.name}办理",
        data={"from_org": case.org.code, "to_org": org.code, "internal_note": note},
    )
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.STAGE])  # passing it on is on time
    case.org = org
    case.org_id = org.id
    case.assignee = None
    tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.STAGE, ctx.now)
    queue_message(
        ctx.session,
        kind="case_received",
        channel="inapp",
        case=case,
        payload={"org_id": org.id, "role": INTAKE},
    )
    return event


def assign(ctx: Context, case: Case, actor: Actor, *, version: int, user: User) -> Event:
    """交办 to a handler of the case's org."""
    if not user.active or user.org_id != case.org_id or user.role != HANDLER:
        raise InvalidInput("承办人须是本单位在职的承办人员", {"user": ["承办人须是本单位在职的承办人员"]})
    event = _apply(ctx, case, actor, Action.ASSIGN, version, data={"assignee": user.username})
    case.assignee = user
    queue_message(
        ctx.session, kind="case_assigned", channel="inapp", case=case, payload={"user_ids": [user.id]}
    )
    return event


def _require_assignee(case: Case, actor: Actor) -> None:
    if case.assignee_id is not None and case.assignee_id != actor.user_id:
        raise Forbidden(
            "只有本件承办人可以办理", {"assignee": case.assignee.username if case.assignee else None}
        )


def start(ctx: Context, case: Case, actor: Actor, *, version: int) -> Event:
    """开始办理 (also picks a reopened case back up)."""
    _check(case, actor, Action.START, version, None)
    _require_assignee(case, actor)
    if case.assignee_id is None:
        case.assignee_id = actor.user_id
    return _apply(ctx, case, actor, Action.START, version)


def feedback(ctx: Context, case: Case, actor: Actor, *, version: int, text: str) -> Event:
    """拟写答复: a draft, published only after a supervisor approves it."""
    text = _require_text(text, "text", "答复内容")
    _check(case, actor, Action.FEEDBACK, version, None)
    _require_assignee(case, actor)
    case.feedback_draft = text
    return _apply(ctx, case, actor, Action.FEEDBACK, version, note=text)


def publish(ctx: Context, case: Case, actor: Actor, *, version: int) -> Event:
    """审核发布: the citizen sees the feedback; this instant stops the response clock."""
    event = _apply(ctx, case, actor, Action.PUBLISH, version, note=case.feedback_draft)
    case.feedback_text = case.feedback_draft
    case.responded_at = ctx.now
    case.rating = case.rating_comment = case.rated_at = None
    tracking.stop_clocks(ctx.session, case, ctx.now, RESPONSE_KINDS)
    tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.RATING, ctx.now)
    _sms(ctx, case, "feedback_published")
    return event


def _restart_clock(ctx: Context, case: Case) -> None:
    """重办: a fresh response clock from today; the rating window, if open, ends."""
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.RATING], outcome="ended")
    tracking.start_clock(ctx.session, ctx.clocks, case, ClockKind.REOPENED, ctx.now)
    case.responded_at = case.closed_at = None
    case.reopen_count += 1


def reopen(ctx: Context, case: Case, actor: Actor, *, version: int, reason: str) -> Event:
    """重办 (or 退回修改 of a draft under review)."""
    reason = _require_text(reason, "reason", "重办理由")
    event = _apply(ctx, case, actor, Action.REOPEN, version, note=reason)
    if case.status == S.REOPENED:
        _restart_clock(ctx, case)
    return event


def request_extension(
    ctx: Context, case: Case, actor: Actor, *, version: int, days: int, reason: str
) -> Event:
    """申请延期: recorded internally; the supervisors above are notified and decide with `extend`."""
    reason = _require_text(reason, "reason", "延期理由")
    _require_days(days)
    _require_extension_left(ctx, case)
    event = _apply(ctx, case, actor, Action.REQUEST_EXTENSION, version, note=reason, data={"days": days})
    queue_message(
        ctx.session,
        kind="extension_requested",
        channel="inapp",
        case=case,
        payload={"org_id": case.org_id, "role": SUPERVISOR},
    )
    return event


def extend(ctx: Context, case: Case, actor: Actor, *, version: int, days: int, reason: str) -> Event:
    """延期: a supervisor grants extra working days."""
    reason = _require_text(reason, "reason", "延期理由")
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
    text = _require_text(text, "text", "留言内容")
    event = _apply(ctx, case, actor, Action.MESSAGE, version, note=text)
    if case.reporter_phone_enc:
        queue_message(ctx.session, kind="citizen_message", channel="sms", case=case)
    return event


def note(ctx: Context, case: Case, actor: Actor, *, version: int, text: str) -> Event:
    """内部备注: internal, never shown to the citizen."""
    text = _require_text(text, "text", "备注内容")
    return _apply(ctx, case, actor, Action.NOTE, version, note=text)


# -- the citizen and the system -------------------------------------------------------------


def rate(ctx: Context, case: Case, *, rating: Rating, comment: str | None = None) -> Event:
    """评价: unsatisfied sends the case back (重办) with a fresh 15 working days."""
    variant = "unsatisfied" if rating == Rating.UNSATISFIED else "satisfied"
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
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.RATING])
    if case.status == S.REOPENED:
        _restart_clock(ctx, case)
        if case.assignee_id:
            queue_message(
                ctx.session,
                kind="case_reopened",
                channel="inapp",
                case=case,
                payload={"user_ids": [case.assignee_id]},
            )
    else:
        case.closed_at = ctx.now
    return event


def supplement(ctx: Context, case: Case, *, text: str) -> Event:
    """补充材料 from the citizen."""
    text = _require_text(text, "text", "补充内容")
    event = _apply(ctx, case, Actor.citizen(), Action.SUPPLEMENT, None, note=text)
    case.priority = PRIORITY_CITIZEN_REPLIED  # back to the top of the handler's queue
    if case.assignee_id:
        queue_message(
            ctx.session,
            kind="citizen_replied",
            channel="inapp",
            case=case,
            payload={"user_ids": [case.assignee_id]},
        )
    return event


def auto_close(ctx: Context, case: Case) -> Event:
    """Closed by the system after the rating window passed without a rating."""
    event = _apply(ctx, case, Actor.system(), Action.AUTO_CLOSE, None, note="逾期未评价，系统自动办结")
    tracking.stop_clocks(ctx.session, case, ctx.now, [ClockKind.RATING], outcome="ended")
    case.closed_at = ctx.now
    return event


def find_case(session: Session, tracking_no: str) -> Case | None:
    return session.scalar(select(Case).where(Case.tracking_no == tracking_no))
