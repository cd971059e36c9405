"""The transition table, walked row by row, and its guards (DESIGN.md §3)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from supervise.cases import services, workflow
from supervise.cases.labels import STATUS_LABELS
from supervise.cases.models import Case, Event
from supervise.cases.states import STAFF_ACTIONS, Action, Rating, Status
from supervise.cases.workflow import TRANSITIONS, Actor
from supervise.errors import Forbidden, IllegalTransition, InvalidInput, NotFound, StaleVersion
from supervise.extensions import db
from supervise.notify.models import OutboxMessage
from supervise.staff.models import User
from tests.conftest import VALID_SUBMISSION

USER_FOR_ROLE = {
    "intake": "demo-intake",
    "handler": "demo-handler",
    "supervisor": "demo-supervisor",
    "leader": "demo-dept-civil-leader",
}
UNIT_USER_FOR_ROLE = {"leader": "demo-dept-civil-leader", "handler": "demo-dept-civil-handler"}


def staff(username: str) -> Actor:
    return Actor.staff(user(username))


def user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def case_in(status: Status, *, at_unit: bool = False) -> Case:
    """A fresh case put straight into `status`, with what that state implies (kind, assignee,
    draft); `at_unit`: transferred to 民政局 as a service complaint, in its handler's hands."""
    case, _ = services.submit_case(dict(VALID_SUBMISSION))
    case.status = status
    if status != Status.RECEIVED:
        case.kind = "service"
    if status not in (Status.RECEIVED, Status.ACCEPTED, Status.REJECTED, Status.MERGED):
        case.assignee = user("demo-handler")
    if at_unit:
        unit = services._org("demo-dept-civil")
        case.org = case.unit = unit
        case.assignee = user("demo-dept-civil-handler")
    if status in (Status.FEEDBACK_PENDING_REVIEW, Status.RESPONDED, Status.CLOSED):
        case.feedback_draft = "已核实并整改。"
    if status in (Status.RESPONDED, Status.CLOSED):
        case.feedback_text, case.responded_at = case.feedback_draft, case.received_at
    if status in (Status.REJECTED, Status.MERGED):
        case.closed_at = case.received_at
    if status == Status.MERGED:
        case.merged_into = case_in(Status.RESPONDED)
    db.session.commit()
    return case


def args_for(action: Action, version: int, variant: str | None = None) -> dict:
    extra = {
        Action.REJECT: {"reason": "经核实不属于本机关受理范围", "reason_code": "out_of_scope"},
        Action.REVERSE_REJECTION: {"reason": "复核认为应予受理"},
        Action.MERGE: {"into": case_in(Status.ACCEPTED).tracking_no},
        Action.TRANSFER: {"org": "demo-dept-civil" if variant == "to_unit" else "demo-county-group-1"},
        Action.CLASSIFY: {"kind": "suggestion"},
        Action.RETURN: {"reason": "不属于本单位职责"},
        Action.ASSIGN: {"user": "demo-handler"},
        Action.ANSWER: {"text": "经了解，该事项可到便民服务中心窗口办理。"},
        Action.FEEDBACK: {"text": "经核查，情况属实，已责令整改。"},
        Action.REOPEN: {"reason": "答复不完整"},
        Action.EXTEND: {"days": 5, "reason": "需现场核查"},
        Action.REQUEST_EXTENSION: {"days": 5, "reason": "需现场核查"},
        Action.NOTE: {"text": "已电话联系当事人"},
        Action.MESSAGE: {"text": "请补充收据照片"},
    }.get(action, {})
    return {"action": action.value, "version": version, **extra}


def at_unit(transition) -> bool:
    return transition.where == workflow.UNIT


def actor_for(transition) -> Actor:
    role = sorted(transition.roles)[0]
    if at_unit(transition):
        return staff(UNIT_USER_FOR_ROLE[role])
    return staff(USER_FOR_ROLE[role])


def run(transition, case: Case) -> Event:
    ctx = services.make_context()
    if transition.action == Action.RATE:
        rating = Rating.UNSATISFIED if transition.variant == "unsatisfied" else Rating.SATISFIED
        return workflow.rate(ctx, case, rating=rating, comment="评价")
    if transition.action == Action.SUPPLEMENT:
        return workflow.supplement(ctx, case, text="补充一张收据")
    if transition.action == Action.AUTO_CLOSE:
        return workflow.auto_close(ctx, case)
    args = args_for(transition.action, case.version, transition.variant)
    if at_unit(transition) and transition.action == Action.ASSIGN:
        args["user"] = "demo-dept-civil-handler"
    return services.ACTIONS[transition.action.value](ctx, case, actor_for(transition), args)


LEGAL = [(t, s) for t in TRANSITIONS for s in sorted(t.sources)]


@pytest.mark.parametrize(
    ("transition", "source"),
    LEGAL,
    ids=[f"{t.action.value}{'-' + t.variant if t.variant else ''}-from-{s.value}" for t, s in LEGAL],
)
def test_every_legal_transition_changes_state_and_writes_its_event(demo, transition, source):
    case = case_in(source, at_unit=at_unit(transition))
    version = case.version
    event = run(transition, case)
    services.commit()
    db.session.refresh(case)
    assert case.status == (transition.target or source)
    # A note is not a state change: it leaves the optimistic-lock version alone.
    assert case.version == version + (1 if transition.locks else 0)
    stored, before = db.session.scalars(
        select(Event).where(Event.case_id == case.id).order_by(Event.id.desc())
    ).all()[:2]
    assert stored.id == event.id
    # Drafting an assigned or reopened case starts it: the start is recorded first, as its own event.
    implied_start = transition.action == Action.FEEDBACK and source in (Status.ASSIGNED, Status.REOPENED)
    if implied_start:
        assert (before.action, before.from_status, before.to_status) == ("start", source.value, "processing")
    assert (stored.action, stored.from_status, stored.to_status) == (
        transition.action.value,
        Status.PROCESSING.value if implied_start else source.value,
        case.status,
    )
    assert stored.public == transition.public


ILLEGAL = [
    (state, action)
    for state in Status
    for action in STAFF_ACTIONS
    if not workflow.transitions_for(action, state)
]


@pytest.mark.parametrize(("state", "action"), ILLEGAL, ids=[f"{a.value}-from-{s.value}" for s, a in ILLEGAL])
def test_illegal_transition_is_a_conflict_naming_state_and_allowed_actions(demo, state, action):
    case = case_in(state)
    version = case.version
    events_before = db.session.scalar(select(func.count(Event.id)).where(Event.case_id == case.id))
    with pytest.raises(IllegalTransition) as exc:
        services.ACTIONS[action.value](
            services.make_context(), case, staff("demo-supervisor"), args_for(action, version)
        )
    db.session.rollback()
    assert exc.value.details["status"] == state.value
    assert STATUS_LABELS[state.value] in exc.value.message
    assert "allowed_actions" in exc.value.details
    db.session.refresh(case)
    assert (case.status, case.version) == (state, version)
    assert db.session.scalar(select(func.count(Event.id)).where(Event.case_id == case.id)) == events_before


def test_wrong_role_is_forbidden(demo):
    case = case_in(Status.RECEIVED)
    with pytest.raises(Forbidden):
        workflow.accept(services.make_context(), case, staff("demo-handler"), version=case.version)


def test_out_of_scope_case_is_not_found(demo):
    case = case_in(Status.RECEIVED)  # owned by demo-county
    with pytest.raises(NotFound):
        workflow.accept(services.make_context(), case, staff("demo-town-1-jw-intake"), version=case.version)


def test_supervisor_sees_the_bodies_below_but_not_above(demo):
    case = case_in(Status.ACCEPTED)
    workflow.transfer(
        services.make_context(),
        case,
        staff("demo-intake"),
        version=case.version,
        org=services._org("demo-town-1-jw"),
    )
    services.commit()
    assert staff("demo-supervisor").sees(case)  # the county supervisor sees the township's 纪委
    assert staff("demo-town-1-jw-intake").sees(case)
    assert not staff("demo-intake").sees(case)  # county intake: their own body's cases only
    other = case_in(Status.RECEIVED)
    assert not staff("demo-town-1-jw-intake").sees(other)


def test_stale_version_is_a_conflict(demo):
    case = case_in(Status.RECEIVED)
    with pytest.raises(StaleVersion) as exc:
        workflow.accept(services.make_context(), case, staff("demo-intake"), version=case.version - 1 or 99)
    assert exc.value.details["current_version"] == case.version


def test_only_the_assignee_may_start(demo, app):
    from supervise.staff.services import create_user

    other, _ = create_user(db.session, username="second-handler", org=staff_org(), role="handler")
    db.session.commit()
    case = case_in(Status.ASSIGNED)
    with pytest.raises(Forbidden):
        workflow.start(services.make_context(), case, Actor.staff(other), version=case.version)


def staff_org():
    return db.session.scalar(select(User).where(User.username == "demo-intake")).org


def test_assign_requires_a_handler_of_the_case_org(demo):
    case = case_in(Status.ACCEPTED)
    town_handler = db.session.scalar(select(User).where(User.username == "demo-town-1-jw-handler"))
    with pytest.raises(InvalidInput):
        workflow.assign(
            services.make_context(), case, staff("demo-intake"), version=case.version, user=town_handler
        )


def test_transfer_to_a_body_arrives_as_received_there_with_a_stage_deadline_and_notifies(demo):
    case = case_in(Status.PROCESSING)
    workflow.transfer(
        services.make_context(),
        case,
        staff("demo-intake"),
        version=case.version,
        org=services._org("demo-town-1-jw"),
    )
    services.commit()
    assert case.status == Status.RECEIVED and case.org.code == "demo-town-1-jw"
    assert case.owner.code == "demo-town-1-jw" and case.unit is None
    assert case.assignee is None and case.stage_due_at is not None
    kinds = db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.case_id == case.id)).all()
    assert kinds.count("case_received") == 2  # on submission, then on arrival at the township's 纪委


def test_unsatisfied_rating_reopens_with_a_fresh_deadline(demo):
    case = case_in(Status.RESPONDED)
    old_due = case.response_due_at
    workflow.rate(services.make_context(), case, rating=Rating.UNSATISFIED, comment="没有解决")
    services.commit()
    assert case.status == Status.REOPENED
    assert case.response_due_at >= old_due and case.responded_at is None and case.reopen_count == 1


def test_events_are_append_only(demo):
    case = case_in(Status.RECEIVED)
    event = case.events[0]
    event.note = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
