"""Open311 GeoReport v2 onto categories and cases: clients and their keys, a request filed as a
case, and what a client may read back (its own requests' progress, never who reported them).

A request becomes a case through the code every case is written by (cases.services.build_case /
write_case): routed to the subject unit's discipline body, with its clocks and the owner's
notice in the outbox, in one transaction with the `open311_requests` row that ties it to the
client and its token.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from limits.errors import StorageError
from redis.exceptions import RedisError
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from supervise.cases import services as case_services
from supervise.cases.identity import access_code_for_key
from supervise.cases.inserts import attach_written
from supervise.cases.labels import CHANNEL_LABELS
from supervise.cases.models import Case, Category, Event
from supervise.cases.schemas import PHONE
from supervise.cases.states import OPEN_STATES, Action, Channel, Status
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import SHANGHAI
from supervise.errors import DomainError, Forbidden, InvalidInput, NotFound, TooManyAttempts
from supervise.extensions import db
from supervise.i18n import N_
from supervise.intake.limits import parse_limit
from supervise.open311.models import CLIENT_CHANNELS, Open311Client, Open311Request
from supervise.orgs.routing import OrgTree
from supervise.throttle import count_windows

log = logging.getLogger(__name__)

KEY_PREFIX = "o311_"
BAD_KEY = N_("api_key 无效或已停用")
NO_KEY = N_("缺少 api_key")
UNKNOWN_SERVICE = N_("未知的 service_code")
UNKNOWN_REQUEST = N_("找不到该诉求件")
UNKNOWN_TOKEN = N_("找不到该 token")
UNKNOWN_UNIT = N_("找不到该单位，或不在本接入方的范围内")
RANGE_TOO_LONG = N_("查询的时间范围不能超过 90 天")
RANGE_BACKWARDS = N_("开始时间不能晚于结束时间")
DEFAULT_SUBJECT = "（未注明反映对象）"  # stored on the case, as a clerk would write it
WINDOW = timedelta(days=90)  # GeoReport v2: the default and the longest range of a list
MAX_LISTED = 1000
REPLAY_WINDOW = timedelta(minutes=30)  # as a citizen's replayed form: the access code again
LAST_USED_EVERY = timedelta(minutes=5)  # not an UPDATE on every call


# -- keys ------------------------------------------------------------------------------------------


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_client(
    *, name: str, org_id: int, channel: str, verified_callers: bool, created_by_id: int | None
) -> tuple[Open311Client, str]:
    """A new client and its api_key, to be shown once (only the hash is kept). Not committed:
    the admin page commits it with its audit row."""
    if channel not in {c.value for c in CLIENT_CHANNELS}:
        raise InvalidInput(N_("请选择来源渠道"), {"channel": [N_("请选择来源渠道")]})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    client = Open311Client(
        name=name,
        org_id=org_id,
        channel=channel,
        verified_callers=verified_callers,
        key_prefix=key[:12],
        key_hash=_key_hash(key),
        created_by_id=created_by_id,
    )
    db.session.add(client)
    db.session.flush()
    return client, key


def revoke_client(client: Open311Client) -> bool:
    """Stop the key working at once; False if it already was (not committed)."""
    if client.revoked_at is not None:
        return False
    client.revoked_at = utcnow()
    return True


def clients() -> list[Open311Client]:
    return list(
        db.session.scalars(
            select(Open311Client).options(selectinload(Open311Client.org)).order_by(Open311Client.id)
        )
    )


def authenticate(key: str | None) -> Open311Client:
    """The live client of `key`, counted against its rate limit; 403 (as the spec says) for no key,
    an unknown one or a revoked one, 429 when the key's limit is spent."""
    if not key:
        raise Forbidden(NO_KEY)
    live = (Open311Client.key_hash == _key_hash(key)) & Open311Client.revoked_at.is_(None)
    client = db.session.scalar(select(Open311Client).where(live))
    if client is None:
        raise Forbidden(BAD_KEY)
    _count(client)
    now = utcnow()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_EVERY:
        client.last_used_at = now
        db.session.commit()
    return client


def _count(client: Open311Client) -> None:
    try:
        items = parse_limit(current_app.config["OPEN311_RATE_LIMIT"])
        wait = count_windows("open311", f"client:{client.id}", items)
    except (RedisError, StorageError):  # as every limit here: Redis away must not refuse a hand-off
        log.warning("open311 call of client %s not counted: Redis unavailable", client.id)
        return
    if wait is not None:
        raise TooManyAttempts(N_("请求过于频繁，请稍后再试"), {"retry_after": wait})


# -- services (categories) ------------------------------------------------------------------------


def service_list() -> list[Category]:
    return list(
        db.session.scalars(select(Category).where(Category.active.is_(True)).order_by(Category.sort_order))
    )


def service(code: str) -> Category:
    category = db.session.scalar(select(Category).where(Category.code == code, Category.active.is_(True)))
    if category is None:
        raise NotFound(UNKNOWN_SERVICE)
    return category


# -- POST requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    case: Case
    token: str
    access_code: str | None  # None on a replay after REPLAY_WINDOW: only its hash is kept


def _in_subtree(tree: OrgTree, org_id: int, top_id: int) -> bool:
    current: int | None = org_id
    while current is not None:
        if current == top_id:
            return True
        current = tree.nodes[current].parent_id
    return False


def _subject_id(tree: OrgTree, client: Open311Client, code: str | None) -> int:
    """被反映单位: the unit named (an org code within the client's org), else the client's org."""
    if not code:
        return client.org_id
    node = tree.by_code.get(code)
    if node is None or not node.active or not _in_subtree(tree, node.id, client.org_id):
        raise InvalidInput(UNKNOWN_UNIT, {"attribute[subject_unit]": [UNKNOWN_UNIT]})
    return node.id


def _reporter(client: Open311Client, data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(name, phone) when the case is real-name, else (None, None) and the contacts are dropped.

    The contacts of an Open311 request are the platform's record of its caller, not a phone this
    system verified: only a client an admin marked 已核实来电人 (its own call-back checks the
    number) files real-name, and then only with both a name and a valid mobile number."""
    if not client.verified_callers:
        return None, None
    # A Chinese name is family name first: last_name then first_name.
    name = "".join(filter(None, (data.get("last_name"), data.get("first_name")))) or None
    phone = data.get("phone")
    if not (name and phone):
        return None, None
    phone = phone.replace(" ", "").replace("-", "").removeprefix("+86")
    if PHONE.regex.match(phone) is None:
        raise InvalidInput(N_("请填写 11 位手机号码"), {"phone": [N_("请填写 11 位手机号码")]})
    if len(name) > 50:
        raise InvalidInput(N_("姓名须为 1–50 个字"), {"last_name": [N_("姓名须为 1–50 个字")]})
    return name, phone


def _location(data: dict[str, Any]) -> str | None:
    parts = []
    if data.get("address_string"):
        parts.append(data["address_string"])
    if data.get("lat") is not None:
        parts.append(f"经纬度 {data['lat']:.6f},{data['long']:.6f}")
    return "；".join(parts)[:200] or None


def _content(data: dict[str, Any]) -> str:
    text = data["description"]
    if data.get("media_url"):
        # Not fetched (no request to an address a caller chose); staff see the link, marked unchecked.
        text += f"\n\n图片链接（外部链接，未经核验）：{data['media_url']}"
    return text


def _submit_key(client: Open311Client, work_order: str | None) -> str | None:
    """A 12345 work order number makes a retried POST find the first case, not file a second."""
    if not work_order:
        return None
    return hashlib.sha256(f"open311\0{client.id}\0{work_order}".encode()).hexdigest()


def _replay(client: Open311Client, digest: str, work_order: str, now: datetime) -> Submitted | None:
    found = db.session.execute(
        select(Case, Open311Request)
        .join(Open311Request, Open311Request.case_id == Case.id)
        .where(Case.submit_key == digest, Open311Request.client_id == client.id)
    ).first()
    if found is None:
        return None
    case, row = found
    code = None
    if now - case.received_at <= REPLAY_WINDOW:
        code = access_code_for_key(current_app.config["SECRET_KEY"], f"open311:{client.id}:{work_order}")
    return Submitted(case, row.token, code)


def submit_request(
    client: Open311Client, data: dict[str, Any], now: datetime | None = None, _attempt: int = 0
) -> Submitted:
    """File a POSTed request (schemas.parse_post's fields) as a case of the client's channel;
    returns the committed case, its token and the access code the citizen follows it with."""
    session = db.session
    attributes = data.get("attributes", {})
    work_order = attributes.get("work_order")
    digest = _submit_key(client, work_order)
    ctx = case_services.make_context(now)
    if digest:
        replay = _replay(client, digest, work_order, ctx.now)
        if replay is not None:
            return replay
    try:
        category = service(data["service_code"])
    except NotFound:  # a bad parameter of the POST: 400, as the spec has it
        raise InvalidInput(UNKNOWN_SERVICE, {"service_code": [UNKNOWN_SERVICE]}) from None
    tree = OrgTree.cached(session)
    subject_id = _subject_id(tree, client, attributes.get("subject_unit"))
    name, phone = _reporter(client, data)
    fields = {
        "subject": attributes.get("subject") or DEFAULT_SUBJECT,
        "content": _content(data),
        "location": _location(data),
        "name": name,
        "phone": phone,
    }
    if digest:  # the same code for every replay of this work order, for REPLAY_WINDOW
        code = access_code_for_key(current_app.config["SECRET_KEY"], f"open311:{client.id}:{work_order}")
    else:
        code = case_services.new_access_code()
    channel = Channel(client.channel)
    case, clocks = case_services.build_case(
        fields,
        ctx,
        tree,
        subject_id=subject_id,
        category_id=category.id,
        code=code,
        channel=channel,
        submit_key=digest,
    )
    first = Event(
        at=ctx.now,
        action=Action.SUBMIT.value,
        actor_kind="system",
        to_status=Status.RECEIVED.value,
        public=True,
        note=f"{CHANNEL_LABELS[channel.value]}（{client.name}）",
        data={
            "channel": channel.value,
            "open311_client": client.id,
            **({"reference": work_order} if work_order else {}),
        },
    )
    token = secrets.token_urlsafe(18)
    try:
        case_id = case_services.write_case(session, case, first, clocks, [])
        session.add(Open311Request(client_id=client.id, case_id=case_id, token=token, created_at=ctx.now))
        session.commit()
    except IntegrityError:
        # The same work order raced in twice (the loser answers with the winner), or two random
        # tracking numbers met: then a new one is drawn.
        session.rollback()
        if _attempt < 3:
            return submit_request(client, data, now, _attempt + 1)
        raise
    return Submitted(attach_written(session, case, case_id), token, code)


# -- GET requests / tokens -----------------------------------------------------------------------


def _range(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    if start and end:
        if start > end:
            raise InvalidInput(RANGE_BACKWARDS, {"start_date": [RANGE_BACKWARDS]})
        if end - start > WINDOW:
            raise InvalidInput(RANGE_TOO_LONG, {"end_date": [RANGE_TOO_LONG]})
        return start, end
    if start:
        return start, start + WINDOW
    if end:
        return end - WINDOW, end
    return now - WINDOW, now


def _load(client: Open311Client) -> Select:
    return (
        select(Case)
        .join(Open311Request, Open311Request.case_id == Case.id)
        .where(Open311Request.client_id == client.id)
        .options(
            selectinload(Case.category),
            selectinload(Case.owner),
            selectinload(Case.org),
            selectinload(Case.merged_into),
        )
    )


def list_requests(client: Open311Client, filters: dict[str, Any], now: datetime | None = None) -> list[Case]:
    """This client's requests, newest first: by id (which overrides everything else, as the spec
    says), else by received time (90 days at most), service codes and open/closed."""
    query = _load(client)
    if filters.get("service_request_id"):
        ids = [ref.upper() for ref in filters["service_request_id"]]
        return list(db.session.scalars(query.where(Case.tracking_no.in_(ids)).order_by(Case.id.desc())))
    start, end = _range(filters.get("start_date"), filters.get("end_date"), now or utcnow())
    query = query.where(Open311Request.created_at >= start, Open311Request.created_at <= end)
    if filters.get("service_code"):
        query = query.join(Category, Category.id == Case.category_id).where(
            Category.code.in_(filters["service_code"])
        )
    wanted = set(filters.get("status") or ("open", "closed"))
    found = db.session.scalars(query.order_by(Case.id.desc()))
    # open/closed of a merged case is its master's: filtered here, not in SQL.
    return [case for case in found if progress(case)["status"] in wanted][:MAX_LISTED]


def get_request(client: Open311Client, ref: str) -> Case:
    case = db.session.scalar(_load(client).where(Case.tracking_no == ref.strip().upper()))
    if case is None:
        raise NotFound(UNKNOWN_REQUEST)
    return case


def request_for_token(client: Open311Client, token: str) -> tuple[str, str]:
    """(service_request_id, token) of a token this client's POST was answered with."""
    found = db.session.execute(
        select(Case.tracking_no, Open311Request.token)
        .join(Open311Request, Open311Request.case_id == Case.id)
        .where(Open311Request.token == token, Open311Request.client_id == client.id)
    ).first()
    if found is None:
        raise NotFound(UNKNOWN_TOKEN)
    return found[0], found[1]


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds") if moment else None


def _rejection_note(case: Case) -> str | None:
    notes = [e.note for e in case.events if e.public and e.action == Action.REJECT.value]
    return notes[-1] if notes else None


def progress(case: Case) -> dict[str, Any]:
    """What a client reads of one of its requests: progress as the citizen sees it at /track (the
    published answer, the public reason of a rejection), never the reporter, the content or staff.
    A merged case is followed through the case it joined."""
    master = case.merged_into if case.status == Status.MERGED and case.merged_into is not None else None
    shown = master or case
    answered = shown.status in (Status.RESPONDED, Status.CLOSED) and shown.responded_at is not None
    if answered:
        notes = shown.feedback_text
    elif shown.status == Status.REJECTED:
        notes = _rejection_note(shown)
    elif master is not None:
        notes = f"与 {master.tracking_no} 合并办理"
    else:
        notes = None
    owner = shown.owner or shown.org
    updated = max(case.updated_at, master.updated_at) if master else case.updated_at
    return {
        "service_request_id": case.tracking_no,
        "status": "open" if shown.status in OPEN_STATES else "closed",
        "status_notes": notes,
        "service_name": case.category.name,
        "service_code": case.category.code,
        "agency_responsible": owner.name,
        "service_notice": None,
        "requested_datetime": _iso(case.received_at),
        "updated_datetime": _iso(updated),
        "expected_datetime": _iso(shown.response_due_at),
    }


def error_status(exc: DomainError) -> int:
    """GeoReport v2's codes: 400 for a bad parameter (our 422), 403 for the key, 404, and 429."""
    return 400 if exc.status == 422 else exc.status
