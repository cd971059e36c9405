"""The transition table, walked row by row, and its guards (DESIGN.md §3)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from supervise.cases import services, workflow
from supervise.cases.models import Case, Event
from supervise.cases.states import STAFF_ACTIONS, Action, Rating, Status
from supervise.cases.workflow import TRANSITIONS, Actor
from supervise.errors import Forbidden, IllegalTransition, InvalidInput, NotFound, StaleVersion
from supervise.extensions import db
from supervise.notify.models import OutboxMessage
from supervise.staff.models import User
from tests.conftest import VALID_SUBMISSION

USER_FOR_ROLE = {"intake": "demo-intake", "handler": "demo-handler", "supervisor": "demo-supervisor"}


def staff(username: str) -> Actor:
    return Actor.staff(db.session.scalar(select(User).where(User.username == username)))


def case_in(status: Status) -> Case:
    """A fresh case put straight into `status`, with what that state implies (assignee, draft)."""
    case, _ = services.submit_case(dict(VALID_SUBMISSION))
    case.status = status
    if status not in (Status.RECEIVED, Status.ACCEPTED, Status.REJECTED, Status.MERGED):
        case.assignee = db.session.scalar(select(User).where(User.username == "demo-handler"))
    if status in (Status.FEEDBACK_PENDING_REVIEW, Status.RESPONDED, Status.CLOSED):
        case.feedback_draft = "已核实并整改。"
    if status in (Status.RESPONDED, Status.CLOSED):
        case.feedback_text, case.responded_at = case.feedback_draft, case.received_at
    db.session.commit()
    return case


def args_for(action: Action, version: int) -> dict:
    extra = {
        Action.REJECT: {"reason": "不属于受理范围"},
        Action.MERGE: {"into": case_in(Status.ACCEPTED).tracking_no},
        Action.TRANSFER: {"org": "demo-town-1", "note": "属地办理"},
        Action.ASSIGN: {"user": "demo-handler"},
        Action.FEEDBACK: {"text": "经核查，情况属实，已责令整改。"},
        Action.REOPEN: {"reason": "答复不完整"},
        Action.EXTEND: {"days": 5, "reason": "需现场核查"},
        Action.REQUEST_EXTENSION: {"days": 5, "reason": "需现场核查"},
        Action.NOTE: {"text": "已电话联系当事人"},
        Action.MESSAGE: {"text": "请补充收据照片"},
    }.get(action, {})
    return {"action": action.value, "version": version, **extra}


def run(transition, case: Case) -> Event:
    ctx = services.make_context()
    if transition.action == Action.RATE:
        rating = Rating.UNSATISFIED if transition.variant == "unsatisfied" else Rating.SATISFIED
        return workflow.rate(ctx, case, rating=rating, comment="评价")
    if transition.action == Action.SUPPLEMENT:
        return workflow.supplement(ctx, case, text="补充一张收据")
    if transition.action == Action.AUTO_CLOSE:
        return workflow.auto_close(ctx, case)
    actor = staff(USER_FOR_ROLE[sorted(transition.roles)[0]])
    return services.ACTIONS[transition.action.value](
        ctx, case, actor, args_for(transition.action, case.version)
    )


LEGAL = [(t, s) for t in TRANSITIONS for s in sorted(t.sources)]


@pytest.mark.parametrize(
    ("transition", "source"),
    LEGAL,
    ids=[f"{t.action.value}{'-' + t.variant if t.variant else ''}-from-{s.value}" for t, s in LEGAL],
)
def test_every_legal_transition_changes_state_and_writes_its_event(demo, transition, source):
    case = case_in(source)
    version = case.version
    event = run(transition, case)
    services.commit()
    db.session.refresh(case)
    assert case.status == (transition.target or source)
    assert case.version == version + 1
    stored = db.session.scalars(
        select(Event).where(Event.case_id == case.id).order_by(Event.id.desc())
    ).first()
    assert stored.id == event.id
    assert (stored.action, stored.from_status, stored.to_status) == (
        transition.action.value,
        source.value,
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
    assert state.value in exc.value.message
    assert "allowed_actions" in exc.value.details
    db.session.refresh(case)
    assert (case.status, case.version) == (state, version)
    assert db.session.scalar(select(func.count(Event.id)).where(Event.case_id == case.id)) == events_before


def test_wrong_role_is_forbidden(demo):
    case = case_in(Status.RECEIVED)
    with pytest.raises(Forbidden):
        workflow.accept(services.make_context(), case, staff("demo-handler"), version=case.version)


def test_out_of_scope_case_is_not_found(demo):
    case = case_in(Status.RECEIVED)  # at demo-county
    with pytest.raises(NotFound):
        workflow.accept(services.make_context(), case, staff("demo-town-1-intake"), version=case.version)


def test_supervisor_sees_subtree_but_not_parent(demo):
    case = case_in(Status.ACCEPTED)
    workflow.transfer(
        services.make_context(),
        case,
        staff("demo-intake"),
        version=case.version,
        org=services._org("demo-town-1"),
    )
    services.commit()
    assert staff("demo-supervisor").sees(case.org)  # county supervisor sees the township
    assert staff("demo-town-1-supervisor").sees(case.org)
    other = case_in(Status.RECEIVED)
    assert not staff("demo-town-1-supervisor").sees(other.org)


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
    town_handler = db.session.scalar(select(User).where(User.username == "demo-town-1-handler"))
    with pytest.raises(InvalidInput):
        workflow.assign(
            services.make_context(), case, staff("demo-intake"), version=case.version, user=town_handler
        )


def test_transfer_arrives_as_received_with_a_stage_deadline_and_notifies(demo):
    case = case_in(Status.PROCESSING)
    workflow.transfer(
        services.make_context(),
        case,
        staff("demo-intake"),
        version=case.version,
        org=services._org("demo-town-1"),
    )
    services.commit()
    assert case.status == Status.RECEIVED and case.org.code == "demo-town-1"
    assert case.assignee is None and case.stage_due_at is not None
    kinds = db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.case_id == case.id)).all()
    assert kinds.count("case_received") == 2  # on submission, then on arrival at the township


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
