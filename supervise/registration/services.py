"""登记: a complaint that came by phone, letter, visit or a hand-off, entered by a discipline body's
intake or supervisor, and the receipt slip (回执) that gives its reporter the codes to follow it.

A registered case is a case like any other: routed to the subject unit's body (DESIGN.md §2a),
sealed reporter identity, photos through the upload pipeline, written by the submission's own
code (cases.services.build_case / write_case). What differs:

- the channel is the one staff chose (states.REGISTERED_CHANNELS);
- the clock starts on the day the complaint was actually received, which may lie up to
  REGISTER_BACKDATE_DAYS calendar days before the registration (admin setting). Received today:
  `received_at` is the moment of registration. Received earlier: 00:00 Asia/Shanghai of that day,
  so the weekly report counts it in the week it came, and its clocks count from that day (the day
  itself not counted, DESIGN.md §4): a letter that lay on a desk does not gain days by it;
- the first event (a public `submit`, by the registering staff member) records the channel, the
  received day, the moment of registration and any reference number (12345 work order);
- every registration is on the audit log, with how many days it was back-dated.

The access code is shown once, on the slip printed right after registering. Only its keyed hash
is stored, so a later reprint (重新打印回执) issues a new code, and the old one stops working;
that is audited and recorded on the case's history as an internal event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from supervise.cases import services as case_services
from supervise.cases.identity import hash_access_code
from supervise.cases.inserts import attach_written
from supervise.cases.labels import CHANNEL_LABELS
from supervise.cases.models import Case, Category, Event
from supervise.cases.states import REGISTERED_CHANNELS, Action, Channel, Status
from supervise.cases.workflow import Actor
from supervise.deadlines.calendar import local_date, start_of_day_utc
from supervise.errors import Forbidden, InvalidInput
from supervise.extensions import db
from supervise.i18n import N_
from supervise.intake.uploads import keep_with_transaction, store_photos
from supervise.orgs.models import Org
from supervise.orgs.routing import OrgTree
from supervise.settings import RECEIPT_SETTINGS, registration_settings, text_settings
from supervise.staff import audit
from supervise.staff.models import Role, User

REISSUE = "reissue_code"  # the internal event of a reprint (cases.labels.ACTION_LABELS)
FUTURE_DAY = N_("收件日期不能晚于今天")
# Formatted with the limit (`days`) and the earliest day allowed (`earliest`) where it is shown.
TOO_EARLY = N_("收件日期最多可早于今天 %(days)s 天（不早于 %(earliest)s）；更早收到的件请由管理员批量导入")
NOT_ALLOWED = N_("只有纪检监察机构的受理员和督办人员可以登记来信来访")
UNKNOWN_UNIT = N_("找不到该单位，请重新选择")


def may_register(actor: Actor) -> bool:
    """Intake and supervisors of a discipline body: receiving is a body's work (§2a), never a unit's."""
    return actor.kind == "staff" and actor.at_body and actor.has(Role.INTAKE, Role.SUPERVISOR)


@dataclass(frozen=True)
class Window:
    """The days a registration may name as received: `earliest` … `today` (Asia/Shanghai)."""

    today: date
    earliest: date
    days: int


def received_window(now: datetime) -> Window:
    days = registration_settings(current_app.config)["REGISTER_BACKDATE_DAYS"]
    today = local_date(now)
    return Window(today, date.fromordinal(today.toordinal() - days), days)


def _received_day(data: dict[str, Any], window: Window) -> date:
    day = data.get("received_on") or window.today
    if day > window.today:
        raise InvalidInput(FUTURE_DAY, {"received_on": [FUTURE_DAY]})
    if day < window.earliest:
        # The field's message is a msgid with placeholders; `limit` says what fills them.
        raise InvalidInput(
            TOO_EARLY,
            {
                "received_on": [TOO_EARLY],
                "limit": {"days": window.days, "earliest": window.earliest.isoformat()},
            },
        )
    return day


def _category(code: str) -> Category:
    category = db.session.scalar(select(Category).where(Category.code == code, Category.active.is_(True)))
    if category is None:
        raise InvalidInput(N_("未知的问题类别"), {"category": [N_("未知的问题类别，请重新选择")]})
    return category


def _subject(tree: OrgTree, code: str | None) -> int:
    """被反映单位: an active unit of the tree; none chosen, the top commission (as on /report)."""
    if not code:
        if tree.root_id is None:
            raise RuntimeError("no organisation configured")
        return tree.root_id
    node = tree.by_code.get(code)
    if node is None or not node.active or node.is_body:
        raise InvalidInput(UNKNOWN_UNIT, {"subject_unit": [UNKNOWN_UNIT]})
    return node.id


def _staff(actor: Actor) -> User:
    return db.session.get(User, actor.user_id)


def register_case(
    data: dict[str, Any], actor: Actor, photos: list[bytes] = (), now: datetime | None = None
) -> tuple[Case, str]:
    """Register a complaint (RegisterSchema's fields); returns the committed case and its access
    code, to be shown once on the receipt slip."""
    if not may_register(actor):
        raise Forbidden(NOT_ALLOWED)
    session = db.session
    ctx = case_services.make_context(now)
    window = received_window(ctx.now)
    received_on = _received_day(data, window)
    category = _category(data["category"])
    tree = OrgTree.cached(session)
    subject_id = _subject(tree, data.get("subject_unit"))
    channel = Channel(data["channel"])
    if channel not in REGISTERED_CHANNELS:
        raise InvalidInput(N_("请选择来源渠道"), {"channel": [N_("请选择来源渠道")]})
    # Checked and stored before anything enters the session; removed again without a commit.
    store = case_services.upload_store()
    images = store_photos(store, list(photos))
    keep_with_transaction(session, store, images)

    code = case_services.new_access_code()
    received_at = ctx.now if received_on == window.today else start_of_day_utc(received_on)
    case, clocks = case_services.build_case(
        data,
        ctx,
        tree,
        subject_id=subject_id,
        category_id=category.id,
        code=code,
        channel=channel,
        received_at=received_at,
        start_day=received_on,
    )
    backdated = (window.today - received_on).days
    facts = {
        "channel": channel.value,
        "received_on": received_on.isoformat(),
        "registered_at": ctx.now.isoformat(),
        **({"reference": data["reference"]} if data.get("reference") else {}),
    }
    first = Event(
        at=ctx.now,
        action=Action.SUBMIT.value,
        actor_id=actor.user_id,
        actor_kind="staff",
        to_status=Status.RECEIVED.value,
        public=True,
        note=f"{CHANNEL_LABELS[channel.value]}已登记",
        data={**facts, "backdated_days": backdated},
    )
    case_id = case_services.write_case(session, case, first, clocks, images)
    # Who registered what, and by how many days the clock was set back (0: received today).
    audit.record(
        "case_registered", user=_staff(actor), case_id=case_id, detail={**facts, "backdated_days": backdated}
    )
    session.commit()
    return attach_written(session, case, case_id), code


def reissue_access_code(tracking_no: str, actor: Actor, now: datetime | None = None) -> tuple[Case, str]:
    """重新打印回执: a new access code for a case this actor may see; the old one stops working.

    The case's row changes by a plain UPDATE of the hash alone: it bumps no version, so a colleague
    with the case open is not told it changed (nothing they decide on did)."""
    if not may_register(actor):
        raise Forbidden(NOT_ALLOWED)
    case = case_services.case_for_actor(tracking_no, actor)
    ctx = case_services.make_context(now)
    code = case_services.new_access_code()
    digest = hash_access_code(current_app.config["SECRET_KEY"], case.tracking_no, code)
    cases = Case.__table__
    db.session.execute(update(cases).where(cases.c.id == case.id).values(access_code_hash=digest))
    set_committed_value(case, "access_code_hash", digest)
    db.session.add(
        Event(
            case_id=case.id,
            at=ctx.now,
            action=REISSUE,
            actor_id=actor.user_id,
            actor_kind="staff",
            public=False,
            note="重新打印回执，原查询码作废",
        )
    )
    audit.record(
        "access_code_reissued", user=_staff(actor), case_id=case.id, detail={"channel": case.channel}
    )
    db.session.commit()
    return case, code


def receipt_view(case: Case, access_code: str | None, now: datetime | None = None) -> dict[str, Any]:
    """What the slip prints: the codes (the access code only when just issued), the dates, who
    received it and how to follow it (the office's phone if set, the /track address)."""
    ctx_now = now or case_services.make_context().now
    phone = text_settings(RECEIPT_SETTINGS, current_app.config)["RECEIPT_PHONE"].strip()
    owner = db.session.get(Org, case.owner_org_id) if case.owner_org_id else None
    first = db.session.scalar(select(Event).where(Event.case_id == case.id).order_by(Event.id).limit(1))
    facts = (first.data or {}) if first is not None else {}
    return {
        "tracking_no": case.tracking_no,
        "register_no": case.register_no,
        "access_code": access_code,
        "channel": case.channel,
        "received_on": facts.get("received_on") or local_date(case.received_at).isoformat(),
        "reference": facts.get("reference"),
        "due_on": local_date(case.response_due_at).isoformat(),
        "due_provisional": case.due_provisional,
        "owner": owner.name if owner is not None else "",
        "phone": phone,
        "track_url": f"{current_app.config['BASE_URL'].rstrip('/')}/track",
        "printed_on": local_date(ctx_now).isoformat(),
    }
