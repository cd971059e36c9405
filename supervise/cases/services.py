"""Case services: what views and commands call. Each public function is one unit of work and commits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from supervise import refdata
from supervise.cases import workflow
from supervise.cases.identity import (
    IdentityBox,
    access_code_for_key,
    access_code_matches,
    hash_access_code,
    mask_name,
    mask_phone,
    new_access_code,
    new_tracking_no,
    reporter_hash,
)
from supervise.cases.inserts import NewCase, attach_written, write_new_case
from supervise.cases.labels import ACTION_LABELS, ACTOR_LABELS
from supervise.cases.models import Attachment, Case, CaseDraft, Category, Event
from supervise.cases.search import index_text
from supervise.cases.states import OPEN_STATES, Action, Channel, Rating, Status
from supervise.cases.workflow import Actor, Context
from supervise.dbtypes import utcnow
from supervise.deadlines import tracking
from supervise.deadlines.calendar import get_calendar, local_date
from supervise.deadlines.clocks import Clocks, DeadlinePolicy
from supervise.deadlines.models import CaseClock, ClockKind
from supervise.deadlines.sweep import CLOCK_LABELS
from supervise.errors import InvalidInput, NotFound, StaleVersion
from supervise.extensions import db
from supervise.i18n import N_
from supervise.intake import verification
from supervise.intake.files import signed_url
from supervise.intake.models import Point
from supervise.intake.storage import UploadStore
from supervise.intake.uploads import StoredImage, keep_with_transaction, store_photos
from supervise.notify.outbox import OutboxMessage, enqueue_after_commit, queue_message
from supervise.orgs.models import UNIT_KINDS, Org
from supervise.orgs.routing import OrgTree
from supervise.orgs.services import get_org_by_code
from supervise.staff import audit
from supervise.staff.models import Role, User

NOT_FOUND_FOR_CITIZEN = N_("查询编号或查询码不正确")


def policy() -> DeadlinePolicy:
    """The deadline rules now: admin settings over the app config."""
    from supervise.settings import deadline_settings

    s = deadline_settings(current_app.config)
    return DeadlinePolicy(
        response_days=s["RESPONSE_DAYS"],
        stage_days=s["STAGE_DAYS"],
        due_soon_days=s["DUE_SOON_DAYS"],
        auto_close_days=s["AUTO_CLOSE_DAYS"],
        ack_days=s["ACK_DAYS"],
        level2_days=s["LEVEL2_DAYS"],
        max_extensions=s["MAX_EXTENSIONS"],
    )


def make_context(now: datetime | None = None) -> Context:
    return Context(db.session, Clocks(get_calendar(db.session), policy()), now or utcnow())


def identity_box() -> IdentityBox:
    return IdentityBox(current_app.config["ENCRYPTION_KEY"])


def commit() -> None:
    """Commit, turning a lost optimistic-lock race into the same 409 as a stale version."""
    try:
        db.session.commit()
    except StaleDataError as exc:
        db.session.rollback()
        raise StaleVersion(N_("该诉求件已被他人修改，请刷新后重试")) from exc


# -- intake ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeRef:
    """What a submission needs to know of a category or a point: ids, no ORM object."""

    id: int
    active: bool
    org_id: int | None = None  # a point's org


def _intake_refs() -> tuple[dict[str, IntakeRef], dict[str, IntakeRef]]:
    """Categories by code and points by token, from this process's copy (supervise/refdata.py)."""

    def load() -> tuple[dict[str, IntakeRef], dict[str, IntakeRef]]:
        session = db.session
        categories = {
            c: IntakeRef(i, a)
            for i, c, a in session.execute(select(Category.id, Category.code, Category.active))
        }
        points = {
            t: IntakeRef(i, a, o)
            for i, t, a, o in session.execute(select(Point.id, Point.token, Point.active, Point.org_id))
        }
        return categories, points

    return refdata.cached("intake_refs", load)


def _subject_unit(tree: OrgTree, point: IntakeRef | None, code: str | None) -> int:
    """被反映单位: the point's org, the unit chosen on /report, or (unknown) the top commission."""
    if point is not None:
        return point.org_id
    if code:
        node = tree.by_code.get(code)
        if node is None or not node.active:
            raise InvalidInput(N_("找不到该单位"), {"subject_unit": [N_("找不到该单位，请重新选择")]})
        return node.id
    if tree.root_id is None:
        raise RuntimeError("no organisation configured: run `supervise demo` or create one")
    return tree.root_id


REPLAY_WINDOW = timedelta(minutes=30)


def _submission_digest(key: str, data: dict[str, Any]) -> str:
    """What identifies one submission: the form's key together with what it says. A replay of the
    same form finds the first case; the same key with other words is another submission, so a
    key alone (guessed, or seen on a shared phone) opens nobody else's case. Stored as a digest."""
    parts = (key, data.get("point") or "", data["category"], data["subject"].strip(), data["content"].strip())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _replayed_access_code(case: Case, key: str, now: datetime) -> str:
    """A replayed form gets the first case and the same access code it was given, derived from the
    key, so nothing is re-issued and the citizen's code keeps working. After the window: none."""
    if now - case.received_at > REPLAY_WINDOW:
        return ""
    return access_code_for_key(current_app.config["SECRET_KEY"], key)


def upload_store() -> UploadStore:
    """The photo store the settings name: the data dir's folder, or an S3-compatible bucket."""
    from supervise.intake.storage import store_from_config

    return store_from_config(current_app.config)


def _attach(case: Case, event: Event, images: list[StoredImage]) -> None:
    """Add rows for stored photos, and have a job make their thumbnails once committed."""
    if not images:
        return
    for image in images:
        db.session.add(
            Attachment(
                case=case,
                event=event,
                sha256=image.sha256,
                content_type=image.content_type,
                size=image.size,
                width=image.width,
                height=image.height,
            )
        )
    # The job thumbnails every attachment of the case that lacks one: ids are not known before flush.
    queue_message(db.session, kind="make_thumbnails", channel="thumbnail", case=case)


@dataclass(frozen=True)
class Submitted:
    """A citizen's submission received: the case, its access code (shown once), and how its
    phone number fared (supervise/intake/verification.py): `phone.note` says, in Chinese, why a
    submission with a name and number was filed anonymous."""

    case: Case
    access_code: str
    phone: verification.PhoneCheck


def submit_case(
    data: dict[str, Any],
    photos: list[bytes] = (),
    now: datetime | None = None,
    _attempt: int = 0,
    *,
    verify_phone: bool = True,
) -> tuple[Case, str]:
    """Receive a citizen's submission; returns the committed case and its access code (shown once).
    `submit_checked` also says whether the number was verified."""
    submitted = submit_checked(data, photos, now, _attempt, verify_phone=verify_phone)
    return submitted.case, submitted.access_code


def submit_checked(
    data: dict[str, Any],
    photos: list[bytes] = (),
    now: datetime | None = None,
    _attempt: int = 0,
    *,
    verify_phone: bool = True,
) -> Submitted:
    """Receive a citizen's submission.

    The case, its first event, its photos' rows and the outbox rows commit together before the
    citizen is told anything. A repeated idempotency key returns the first case, not a new one.

    A name and number make a real-name case only with the number's SMS code (`phone_code`): the
    code is spent in the case's transaction. Without a valid one the case is filed anonymous, the
    name and number dropped; a wrong code of a live one raises InvalidInput (the try counted).
    `verify_phone=False` is for callers that verified otherwise — none of the citizen's paths.
    """
    session = db.session
    key = data.get("idempotency_key")
    digest = _submission_digest(key, data) if key else None
    if digest:
        existing = session.scalar(select(Case).where(Case.submit_key == digest))
        if existing is not None:
            check = verification.PhoneCheck(
                asked=bool(data.get("phone")), verified=existing.real_name, reason="unverified"
            )
            return Submitted(existing, _replayed_access_code(existing, key, now or utcnow()), check)
    categories, points = _intake_refs()
    category = categories.get(data["category"])
    if category is None or not category.active:
        raise InvalidInput(N_("未知的问题类别"), {"category": [N_("未知的问题类别，请重新选择")]})
    point = None
    if data.get("point"):
        point = points.get(data["point"])
        if point is None or not point.active:
            raise InvalidInput(N_("该监督点不存在或已停用"), {"point": [N_("该监督点不存在或已停用")]})

    # The number's code, judged once the rest is known good (a refused category costs no try).
    submission = data  # as sent: a retry below judges it again
    if verify_phone:
        check = verification.settle(session, data.get("phone"), data.get("phone_code"), now or utcnow())
        if check.asked and not check.verified:
            data = verification.anonymous_data(data)
    else:
        check = verification.PhoneCheck(asked=bool(data.get("phone")), verified=bool(data.get("phone")))
    # Photos are checked and stored before anything enters the session: a bad one leaves no trace,
    # and if this transaction ends without a commit the files it created are removed again.
    store = upload_store()
    images = store_photos(store, list(photos))
    keep_with_transaction(session, store, images)
    ctx = make_context(now)
    # Routed on this process's copy of the tree (DESIGN.md §2a): never the subject itself, always
    # a body with someone to accept it.
    tree = OrgTree.cached(session)
    subject_id = _subject_unit(tree, point, data.get("subject_unit"))
    code = access_code_for_key(current_app.config["SECRET_KEY"], key) if key else new_access_code()
    case, clocks = build_case(
        data,
        ctx,
        tree,
        subject_id=subject_id,
        category_id=category.id,
        code=code,
        channel=Channel.QR if point else Channel.WEB,
        point_id=point.id if point else None,
        submit_key=digest,
    )
    received = Event(
        at=ctx.now,
        action=Action.SUBMIT.value,
        actor_kind=workflow.CITIZEN,
        to_status=Status.RECEIVED.value,
        public=True,
        note="诉求已提交",
    )
    try:
        case_id = write_case(session, case, received, clocks, images)
        _commit_keeping_state(session)
    except IntegrityError:
        # Two copies of one form raced past the idempotency lookup (the loser returns the winner),
        # or, once in a very long while, two random tracking numbers met: a new one is drawn.
        session.rollback()
        if _attempt < 3:
            # The code's use rolled back with the case: judged again (one more try counted).
            return submit_checked(submission, photos, now, _attempt + 1, verify_phone=verify_phone)
        raise
    return Submitted(attach_written(session, case, case_id), code, check)


def build_case(
    data: dict[str, Any],
    ctx: Context,
    tree: OrgTree,
    *,
    subject_id: int,
    category_id: int,
    code: str,
    channel: Channel,
    point_id: int | None = None,
    submit_key: str | None = None,
    received_at: datetime | None = None,
    start_day: date | None = None,
) -> tuple[Case, list[CaseClock]]:
    """A new case from a form's fields (SubmitSchema's), routed to its owner and with its clocks,
    not yet written: a citizen's submission and a staff registration (登记) both start here.

    `received_at` is when it arrived (default now) and `start_day` the day its clocks count from
    (default that moment's day): a letter registered days after it came keeps its own deadline."""
    owner_id = tree.owner_for(subject_id, about_leadership=bool(data.get("about_org_head")))
    tracking_no = new_tracking_no()
    box = identity_box()
    real_name = bool(data.get("name"))  # the schema requires a phone number with a name
    received_at = received_at or ctx.now
    case = Case(
        tracking_no=tracking_no,
        access_code_hash=hash_access_code(current_app.config["SECRET_KEY"], tracking_no, code),
        status=Status.RECEIVED,
        org_id=owner_id,
        owner_org_id=owner_id,
        subject_org_id=subject_id,
        point_id=point_id,
        category_id=category_id,
        subject=data["subject"].strip(),
        content=data["content"].strip(),
        occurred_on=data.get("occurred_at"),
        location=data.get("location"),
        about_org_head=bool(data.get("about_org_head")),
        submit_key=submit_key,
        search_text=index_text(data["subject"], data["content"], data.get("location")),
        real_name=real_name,
        priority=0 if real_name else 1,
        reporter_name_enc=box.seal(data.get("name")),
        reporter_phone_enc=box.seal(data.get("phone")),
        reporter_hash=reporter_hash(current_app.config["SECRET_KEY"], data.get("phone")),
        channel=channel,
        received_at=received_at,
    )
    # 15 working days to answer, 5 for this org to take it on, and a real-name reporter is told
    # of the acceptance within 15 (DESIGN.md §4).
    clocks = [
        tracking.new_clock(ctx.clocks, case, kind, received_at, start_day=start_day)
        for kind in (ClockKind.RESPONSE, ClockKind.STAGE, *([ClockKind.ACK] if real_name else []))
    ]
    return case, clocks


def write_case(session, case: Case, first: Event, clocks: list[CaseClock], images: list[StoredImage]) -> int:
    """Write a built case with its first event, clocks and photos' rows, and tell the owner's
    intake (outbox), in the session's transaction; the caller commits. Returns the case's id."""
    notices = [
        OutboxMessage(
            kind="case_received",
            channel="inapp",
            payload={"org_id": case.owner_org_id, "role": Role.INTAKE.value},
        )
    ]
    if images:  # the job thumbnails every attachment of the case that lacks one
        notices.append(OutboxMessage(kind="make_thumbnails", channel="thumbnail", payload={}))
    photos_rows = [
        Attachment(sha256=i.sha256, content_type=i.content_type, size=i.size, width=i.width, height=i.height)
        for i in images
    ]
    written = write_new_case(session, NewCase(case, first, clocks, photos_rows, notices))
    enqueue_after_commit(session, written.outbox_ids)
    return written.case_id


def _commit_keeping_state(session) -> None:
    """Commit without expiring what the session holds: the caller answers from the case it has
    just written, and reading it back would cost a query for values it already has."""
    real = session()  # the request's Session behind the scoped one
    before, real.expire_on_commit = real.expire_on_commit, False
    try:
        real.commit()
    finally:
        real.expire_on_commit = before


def subject_units() -> list[Org]:
    """Active units in tree order: what /report offers as 被反映单位 (bodies are not listed:
    a complaint about a discipline body goes to the commission, the default)."""
    units = db.session.scalars(select(Org).where(Org.active.is_(True), Org.kind.in_(UNIT_KINDS)))
    return sorted(units, key=lambda o: o.tree_key)


def categories() -> list[Category]:
    return list(
        db.session.scalars(select(Category).where(Category.active.is_(True)).order_by(Category.sort_order))
    )


# -- the citizen's view (查询) ---------------------------------------------------------------------


def find_for_citizen(tracking_no: str, access_code: str) -> Case:
    """The case behind a tracking number + access code; one answer for "no such case" and "wrong code"."""
    case = workflow.find_case(db.session, tracking_no.strip().upper())
    secret = current_app.config["SECRET_KEY"]
    if case is None:
        hash_access_code(secret, tracking_no, access_code)  # same work either way
        raise NotFound(NOT_FOUND_FOR_CITIZEN)
    if not access_code_matches(secret, case.tracking_no, access_code, case.access_code_hash):
        raise NotFound(NOT_FOUND_FOR_CITIZEN)
    return case


def public_view(case: Case) -> dict[str, Any]:
    """What the citizen sees. A merged case shows the case it joined: its progress and answer."""
    master = case.merged_into if case.status == Status.MERGED else None
    view = _public_fields(case)
    if master is not None:
        joined = _public_fields(master)
        view["merged_into"] = {
            "tracking_no": master.tracking_no,
            "status": master.status,
            "responded_at": joined["responded_at"],
            "feedback": joined["feedback"],
            "timeline": [e for e in joined["timeline"] if e["action"] in PUBLIC_PROGRESS],
        }
        view["feedback"], view["responded_at"] = joined["feedback"], joined["responded_at"]
        view["can_rate"] = workflow.merged_can_rate(case)
    return view


# What a merged reporter sees of the case theirs joined: its progress, not its own citizen's words.
PUBLIC_PROGRESS = frozenset(
    {"accept", "transfer", "publish", "reopen", "extend", "auto_close", "deadline_changed"}
)


def _public_fields(case: Case) -> dict[str, Any]:
    responded = case.responded_at is not None and case.status in (Status.RESPONDED, Status.CLOSED)
    return {
        "tracking_no": case.tracking_no,
        "status": case.status,
        "category": case.category.name,
        "org": case.org.name,
        "received_at": case.received_at,
        "response_due_at": case.response_due_at,
        "response_due_date": local_date(case.response_due_at),
        "due_provisional": case.due_provisional,
        "responded_at": case.responded_at if responded else None,
        "responded_on_time": (case.responded_at <= case.response_due_at) if responded else None,
        "feedback": case.feedback_text if responded else None,
        "rating": case.rating,
        "can_rate": case.status == Status.RESPONDED,
        "can_supplement": case.status in OPEN_STATES or case.status == Status.RESPONDED,
        "timeline": [{"at": e.at, "action": e.action, "note": e.note} for e in case.events if e.public],
        "merged_into": None,
    }


def rate_case(tracking_no: str, access_code: str, rating: str, comment: str | None) -> Case:
    case = find_for_citizen(tracking_no, access_code)
    workflow.rate(make_context(), case, rating=Rating(rating), comment=comment)
    commit()
    return case


def add_supplement(tracking_no: str, access_code: str, text: str, photos: list[bytes] = ()) -> Case:
    case = find_for_citizen(tracking_no, access_code)  # before any photo is stored: no orphans
    store = upload_store()
    images = store_photos(store, list(photos))
    keep_with_transaction(db.session, store, images)  # removed again if the commit fails
    event = workflow.supplement(make_context(), case, text=text)
    _attach(case, event, images)
    commit()
    return case


# -- staff -------------------------------------------------------------------------------------


def case_for_actor(tracking_no: str, actor: Actor) -> Case:
    """A case by its tracking number if the actor's scope covers it; otherwise 404, as if absent.

    Asking for an existing case outside one's scope is recorded (an IDOR attempt or a mistake,
    either way worth seeing in the audit log), but answered exactly like a missing case.
    """
    case = workflow.find_case(db.session, tracking_no.strip().upper())
    if case is not None and not actor.sees(case):
        db.session.rollback()
        audit.record(
            "access_denied",
            user=db.session.get(User, actor.user_id),
            case_id=case.id,
            detail={"reason": "out_of_scope"},
        )
        db.session.commit()
    if case is None or not actor.sees(case):
        raise NotFound(N_("找不到该诉求件"))
    return case


def _visible_case(ref: str, actor: Actor, field_name: str) -> Case:
    case = workflow.find_case(db.session, ref.strip().upper())
    if case is None or not actor.sees(case):
        raise InvalidInput(N_("找不到该诉求件"), {field_name: [N_("找不到该诉求件")]})
    return case


def _org(code: str) -> Org:
    org = get_org_by_code(db.session, code)
    if org is None:
        raise InvalidInput(N_("找不到该单位"), {"org": [N_("找不到该单位")]})
    return org


def _user(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise InvalidInput(N_("找不到该用户"), {"user": [N_("找不到该用户")]})
    return user


def _draft_args(a: dict[str, Any]) -> dict[str, Any]:
    """An answer's fields: its text and, for a 检举控告 case, the disposal and its reason."""
    return {
        "version": a["version"],
        "text": a["text"],
        "disposal": a.get("disposal"),
        "disposal_note": a.get("disposal_note"),
    }


def _accept(ctx: Context, case: Case, actor: Actor, a: dict[str, Any]) -> Event:
    """受理, 受理并交办 (`user`) or 受理并直接答复 (`text`)."""
    return workflow.accept(
        ctx,
        case,
        actor,
        version=a["version"],
        kind=a.get("kind"),
        assign_to=_user(a["user"]) if a.get("user") else None,
        answer_text=a.get("text"),
        disposal=a.get("disposal"),
        disposal_note=a.get("disposal_note"),
    )


ACTIONS: dict[str, Callable[[Context, Case, Actor, dict[str, Any]], Event]] = {
    "accept": _accept,
    "reject": lambda ctx, case, actor, a: workflow.reject(
        ctx, case, actor, version=a["version"], reason=a["reason"], reason_code=a.get("reason_code")
    ),
    "reverse_rejection": lambda ctx, case, actor, a: workflow.reverse_rejection(
        ctx, case, actor, version=a["version"], reason=a["reason"]
    ),
    "classify": lambda ctx, case, actor, a: workflow.classify(
        ctx, case, actor, version=a["version"], kind=a["kind"]
    ),
    "return": lambda ctx, case, actor, a: workflow.return_to_owner(
        ctx, case, actor, version=a["version"], reason=a["reason"]
    ),
    "answer": lambda ctx, case, actor, a: workflow.answer(ctx, case, actor, **_draft_args(a)),
    "merge": lambda ctx, case, actor, a: workflow.merge(
        ctx, case, actor, version=a["version"], into=_visible_case(a["into"], actor, "into")
    ),
    "transfer": lambda ctx, case, actor, a: workflow.transfer(
        ctx, case, actor, version=a["version"], org=_org(a["org"]), note=a.get("note")
    ),
    "assign": lambda ctx, case, actor, a: workflow.assign(
        ctx, case, actor, version=a["version"], user=_user(a["user"])
    ),
    "start": lambda ctx, case, actor, a: workflow.start(ctx, case, actor, version=a["version"]),
    "feedback": lambda ctx, case, actor, a: workflow.feedback(ctx, case, actor, **_draft_args(a)),
    "publish": lambda ctx, case, actor, a: workflow.publish(
        ctx, case, actor, version=a["version"], text=a.get("text")
    ),
    "reopen": lambda ctx, case, actor, a: workflow.reopen(
        ctx, case, actor, version=a["version"], reason=a["reason"]
    ),
    "request_extension": lambda ctx, case, actor, a: workflow.request_extension(
        ctx, case, actor, version=a["version"], days=a["days"], reason=a["reason"]
    ),
    "extend": lambda ctx, case, actor, a: workflow.extend(
        ctx, case, actor, version=a["version"], days=a["days"], reason=a["reason"]
    ),
    "message": lambda ctx, case, actor, a: workflow.message(
        ctx, case, actor, version=a["version"], text=a["text"]
    ),
    "note": lambda ctx, case, actor, a: workflow.note(ctx, case, actor, version=a["version"], text=a["text"]),
}


def perform_action(tracking_no: str, actor: Actor, args: dict[str, Any], now: datetime | None = None) -> Case:
    """Run one staff action on a case and commit it (409 if someone else changed the case first)."""
    case = case_for_actor(tracking_no, actor)
    ACTIONS[args["action"]](make_context(now), case, actor, args)
    _drop_drafts(case, actor, args["action"])  # done: what was typed for it is in the event now
    audit.record(
        "case_action",
        user=db.session.get(User, actor.user_id),
        case_id=case.id,
        detail={"action": args["action"]},
    )
    commit()
    return case


def deadline_chip(days_left: int, *, late: bool, soon: bool) -> dict[str, Any]:
    """How a running deadline reads on a chip: 剩 N 个工作日 / 今日到期 / 超期 N 个工作日.

    `tone` is the chip's colour class: overdue, soon or normal.
    """
    # `text` is the Chinese as stored and sent; `msgid` and `n` are what a page translates
    # (`_(chip.msgid, n=chip.n)`): a text with the number in it is not a catalog entry.
    if late:
        # Late from 00:00:00 after the due day; on a holiday or weekend right after it no working
        # day has been lost yet, so there is no count to give.
        if days_left < 0:
            return _chip(N_("超期 %(n)d 个工作日"), -days_left, "overdue")
        return _chip(N_("已超期"), 0, "overdue")
    if days_left <= 0:
        return _chip(N_("今日到期"), 0, "soon")
    return _chip(N_("剩 %(n)d 个工作日"), days_left, "soon" if soon else "normal")


def _chip(msgid: str, n: int, tone: str) -> dict[str, Any]:
    return {"text": msgid % {"n": n}, "msgid": msgid, "n": n, "tone": tone}


def _running_chip(clocks: Clocks, due_at: datetime, now: datetime) -> dict[str, Any]:
    # Read from the clock, not the sweep's flags: the chip states a number of days, and the flags
    # lag by up to a sweep interval (a chip must never say "剩 -1") or, after a calendar import
    # moved a due day, may describe the old one.
    days_left = clocks.working_days_left(due_at, now)  # once: queue pages do this for every row
    late = clocks.is_overdue(due_at, now)
    return deadline_chip(days_left, late=late, soon=not late and days_left <= clocks.policy.due_soon_days)


def _deadline_flags(case: Case, clocks: Clocks, now: datetime) -> dict[str, Any]:
    """Days left are counted now; the flags are the sweep's, as the 已超期 / 即将超期 tabs use them."""
    open_ = case.status in OPEN_STATES
    return {
        "working_days_left": clocks.working_days_left(case.response_due_at, now),
        "overdue": open_ and case.overdue,
        "due_soon": open_ and case.due_soon and not case.overdue,
        # Only an open case has a deadline running; a finished one shows its status instead.
        "due_chip": _running_chip(clocks, case.response_due_at, now) if open_ else None,
    }


def clock_views(case: Case, clocks: Clocks, now: datetime) -> list[dict[str, Any]]:
    """Every deadline the case has had (the 期限 section and the API's `clocks`), oldest first."""
    rows = db.session.scalars(
        select(CaseClock).where(CaseClock.case_id == case.id).order_by(CaseClock.started_at, CaseClock.id)
    )
    views = []
    for clock in rows:
        running = clock.met_at is None
        views.append(
            {
                "kind": clock.kind,
                "label": CLOCK_LABELS.get(clock.kind, clock.kind),
                "started_at": clock.started_at,
                "due_at": clock.due_at,
                "due_date": local_date(clock.due_at),
                "due_provisional": clock.due_provisional,
                "warned_at": clock.warned_at,
                "overdue_at": clock.overdue_at,
                "level2_at": clock.level2_at,
                "level": clock.level,
                "met_at": clock.met_at,
                "outcome": clock.outcome,
                "late": clock.met_late,
                "working_days_left": clocks.working_days_left(clock.due_at, now) if running else None,
                "chip": _running_chip(clocks, clock.due_at, now) if running else None,
            }
        )
    return views


def _org_code(org: Org | None) -> str | None:
    return org.code if org is not None else None


@dataclass(frozen=True)
class RowNames:
    """The names a queue row shows besides the case's own columns, from this process's copies
    (supervise/refdata.py): loading each row's category, point and four orgs as ORM objects was
    a quarter of a queue request's CPU (issue 15, item 4)."""

    orgs: OrgTree
    categories: dict[int, tuple[str, str]]  # id → (code, name)
    points: dict[int, str]  # id → name

    # An id the copy lacks (made in another process while Redis was away, so the copy did not
    # learn of it) is read from the database: one query, never a wrong or missing name.
    def org(self, org_id: int | None) -> tuple[str | None, str | None]:
        if org_id is None:
            return None, None
        node = self.orgs.nodes.get(org_id) or db.session.get(Org, org_id)
        return node.code, node.name

    def category(self, category_id: int) -> tuple[str, str]:
        if category_id in self.categories:
            return self.categories[category_id]
        category = db.session.get(Category, category_id)
        return category.code, category.name

    def point(self, point_id: int | None) -> str | None:
        if point_id is None:
            return None
        if point_id in self.points:
            return self.points[point_id]
        return db.session.get(Point, point_id).name


def row_names() -> RowNames:
    def load() -> tuple[dict[int, tuple[str, str]], dict[int, str]]:
        session = db.session
        rows = session.execute(select(Category.id, Category.code, Category.name))
        categories = {category_id: (code, name) for category_id, code, name in rows}
        points = {point_id: name for point_id, name in session.execute(select(Point.id, Point.name))}
        return categories, points

    categories, points = refdata.cached("row_names", load)
    return RowNames(OrgTree.cached(db.session), categories, points)


def summary_view(
    case: Case, clocks: Clocks, now: datetime, actor: Actor | None = None, names: RowNames | None = None
) -> dict[str, Any]:
    """A queue row. A unit's staff are not told whether the reporter gave their name (§2a).
    `names`: `row_names()`, read once for a page of rows."""
    names = names or row_names()
    hide_reporter = actor is not None and actor.kind == "staff" and not actor.at_body
    category_code, category_name = names.category(case.category_id)
    org_code, org_name = names.org(case.org_id)
    owner_code, owner_name = names.org(case.owner_org_id)
    subject_code, subject_name = names.org(case.subject_org_id)
    return {
        "tracking_no": case.tracking_no,
        "register_no": case.register_no,
        "status": case.status,
        "version": case.version,
        "category": category_code,
        "category_name": category_name,
        "subject": case.subject,
        "channel": case.channel,
        "point": names.point(case.point_id),
        "org": org_code,
        "org_name": org_name,
        "owner": owner_code,
        "owner_name": owner_name,
        "subject_unit": subject_code,
        "subject_unit_name": subject_name,
        "unit": names.org(case.unit_org_id)[0],
        "kind": case.kind,
        "assignee": case.assignee.username if case.assignee else None,
        "real_name": case.real_name and not hide_reporter,
        "received_at": case.received_at,
        "response_due_at": case.response_due_at,
        "due_provisional": case.due_provisional,
        "stage_due_at": case.stage_due_at,
        "responded_at": case.responded_at,
        "escalation_level": case.escalation_level,
        "rating": case.rating,
        **_deadline_flags(case, clocks, now),
    }


def summary_views(cases: list[Case], clocks: Clocks, now: datetime, actor: Actor | None = None) -> list[dict]:
    """A page of queue rows (`summary_view` each, the names read once)."""
    names = row_names()
    return [summary_view(case, clocks, now, actor, names) for case in cases]


def detail_view(case: Case, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    """The staff view of a case. Reporter identity is masked here; revealing it (logged) is a
    separate, role-checked step."""
    ctx = make_context(now)
    box = identity_box()
    reporter = None
    at_unit = actor.kind == "staff" and not actor.at_body
    if case.real_name and not at_unit:  # a unit never sees the reporter, not even masked (§2a)
        reporter = {
            "name": mask_name(box.open(case.reporter_name_enc)),
            "phone": mask_phone(box.open(case.reporter_phone_enc)),
            "masked": True,
        }
    clock_list = clock_views(case, ctx.clocks, ctx.now)
    if at_unit:  # the 实名 acknowledgement clock would tell a unit the reporter gave their name
        clock_list = [c for c in clock_list if c["kind"] != ClockKind.ACK]
    stage = [c for c in clock_list if c["kind"] == ClockKind.STAGE and c["met_at"] is None]
    return {
        **summary_view(case, ctx.clocks, ctx.now, actor),
        "clocks": clock_list,
        "stage_chip": stage[-1]["chip"] if stage else None,
        "content": case.content,
        "occurred_at": case.occurred_on,
        "location": case.location,
        "feedback_draft": case.feedback_draft,
        "feedback_text": case.feedback_text,
        "rating_comment": case.rating_comment,
        "merged_into": case.merged_into.tracking_no if case.merged_into else None,
        "disposal": case.disposal,
        "disposal_note": case.disposal_note,
        "reject_reason": case.reject_reason,
        "reporter": reporter,
        "attachments": [
            {
                "url": signed_url(a),
                "thumb_url": signed_url(a, thumb=True),
                "content_type": a.content_type,
                "size": a.size,
            }
            for a in case.attachments
        ],
        "events": [
            _event_view(e, actor, at_unit) for e in case.events if not at_unit or _unit_may_read(e, actor)
        ],
        "allowed_actions": workflow.allowed_actions(case, actor),
        "extension_request": _open_extension_request(case),
    }


def _event_view(e: Event, actor: Actor, at_unit: bool) -> dict[str, Any]:
    """One timeline entry, with the words a person reads beside the codes a program reads."""
    data = dict(e.data or {})
    internal_note = data.get("internal_note") if e.action == Action.TRANSFER else None
    if at_unit and internal_note and data.get("to_org") != _org_code(db.session.get(Org, actor.org_id)):
        # A transfer's note is for the org it was sent to (and the body), not another unit.
        internal_note = None
        data.pop("internal_note", None)
    return {
        "at": e.at,
        "action": e.action,
        "action_label": ACTION_LABELS.get(e.action, e.action),
        "actor": e.actor.username if e.actor else e.actor_kind,
        "actor_label": _actor_label(e),
        "public": e.public,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "note": e.note,
        "internal_note": internal_note,
        "data": data,
    }


def _actor_label(e: Event) -> str:
    """Who acted, as a person reads it: 群众 / 系统, or the staff member's name and org."""
    if e.actor is None:
        return ACTOR_LABELS.get(e.actor_kind, e.actor_kind)
    return f"{e.actor.display_name}（{e.actor.org.name}）"


def _open_extension_request(case: Case) -> dict[str, Any] | None:
    """The last 申请延期 not yet followed by a 延期: what the supervisor's form starts from."""
    for e in reversed(case.events):
        if e.action == Action.EXTEND:
            return None
        if e.action == Action.REQUEST_EXTENSION:
            who = e.actor.display_name if e.actor else ""
            return {"days": (e.data or {}).get("days"), "reason": e.note or "", "by": who, "at": e.at}
    return None


# -- drafts saved as staff type (the idle timeout must not cost a long answer) ---------------------

DRAFT_ACTIONS = frozenset({"feedback", "answer", "publish", "message", "note"})


def drafts_for(case: Case, actor: Actor) -> dict[str, str]:
    """This person's saved drafts on this case, by the form they were typed in."""
    rows = db.session.scalars(
        select(CaseDraft).where(CaseDraft.case_id == case.id, CaseDraft.user_id == actor.user_id)
    )
    return {d.action: d.text for d in rows}


def save_draft(tracking_no: str, actor: Actor, action: str, text: str) -> datetime:
    """Keep what was typed; empty text forgets it. Only for a case the actor may see."""
    if action not in DRAFT_ACTIONS:
        raise InvalidInput(N_("未知的表单"), {"action": [N_("未知的表单")]})
    if len(text) > 5000:
        raise InvalidInput(N_("内容须为 1–5000 个字"), {"text": [N_("内容须为 1–5000 个字")]})
    case = case_for_actor(tracking_no, actor)
    row = db.session.scalar(
        select(CaseDraft).where(
            CaseDraft.case_id == case.id, CaseDraft.user_id == actor.user_id, CaseDraft.action == action
        )
    )
    now = utcnow()
    if not text.strip():
        if row is not None:
            db.session.delete(row)
    elif row is None:
        db.session.add(
            CaseDraft(case_id=case.id, user_id=actor.user_id, action=action, text=text, updated_at=now)
        )
    else:
        row.text, row.updated_at = text, now
    db.session.commit()
    return now


def _drop_drafts(case: Case, actor: Actor, action: str) -> None:
    if action in DRAFT_ACTIONS and actor.user_id is not None:
        db.session.execute(
            delete(CaseDraft).where(
                CaseDraft.case_id == case.id, CaseDraft.user_id == actor.user_id, CaseDraft.action == action
            )
        )


def _unit_may_read(event: Event, actor: Actor) -> bool:
    """A unit reads what the citizen reads, the transfer to it, and its own people's entries; the
    body's internal notes (which may name the reporter or other clues) stay with the body."""
    if event.public or event.action in (Action.TRANSFER, Action.REOPEN):
        return True
    return event.actor is not None and event.actor.org_id == actor.org_id


def due_date_for(received: date, days: int | None = None) -> tuple[date, bool]:
    """For `supervise calendar due`: the due day of a clock started on `received`."""
    due = get_calendar(db.session).add_working_days(received, days or policy().response_days)
    return due.day, due.provisional
