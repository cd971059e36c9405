"""历史台账: cases from a county's paper or spreadsheet ledger, keyed by their reference number in
that ledger (原编号), so loading the same file twice adds nothing.

Each case is routed as a submission is (owner = the subject unit's supervising body, through
`OrgTree`) and built by the same `build_case`, with its clocks from the day it was received:
- 办理中: it arrives `received` at the owner's intake with its response and stage clocks running
  from the received day (a long-open case is overdue at once, as it really is);
- 已办结: `closed` at the given day with its answer and rating; its response clock is met then,
  so it counts in that week's report, and nothing is left for the sweep: no reminder, no
  escalation, no SMS (no outbox rows at all).
The first event of each records the import (file, row, reference). Reporter name and phone are
sealed, and the reporter hash set, as for any case. Rows are checked against reference data read
once, and written in a few batched INSERTs (`inserts.write_new_cases`)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from supervise.cases.inserts import NewCase, write_new_cases
from supervise.cases.labels import CHANNEL_LABELS, KIND_LABELS
from supervise.cases.models import Case, Category, Event
from supervise.cases.services import build_case, make_context
from supervise.cases.states import Action, Channel, Rating, Status
from supervise.deadlines.models import RESPONSE_KINDS
from supervise.i18n import N_
from supervise.imports.base import (
    Column,
    ImportContext,
    Plan,
    RowError,
    Rows,
    choice_value,
    moment_value,
    text_value,
)
from supervise.orgs.models import Org
from supervise.orgs.routing import OrgTree

LABEL = N_("历史诉求")
COLUMNS = (
    Column(
        "ref",
        N_("原编号"),
        True,
        N_("原台账中的编号，每件唯一；重复导入同一编号不会重复登记"),
        "2025-来信-0012",
    ),
    Column("received", N_("收件日期"), True, N_("收到的日期，如 2026-03-02；期限从这一天算起"), "2026-03-02"),
    Column(
        "channel",
        N_("来源渠道"),
        False,
        N_("扫码、网上、来电、来信、来访、12345热线转办、其他系统转来；留空为“其他系统转来”"),
        "来信",
    ),
    Column(
        "subject_unit",
        N_("被反映单位代码"),
        True,
        N_("被反映单位的代码（须已在系统中）"),
        "xx-town-1-village-9",
    ),
    Column("category", N_("问题类别"), True, N_("问题类别的名称或代码，如“吃拿卡要”"), "吃拿卡要"),
    Column("subject", N_("反映对象"), True, N_("被反映的人或事，不超过 200 字"), "村委会某工作人员"),
    Column(
        "content", N_("反映内容"), True, N_("反映的具体内容，不超过 5000 字"), "办理低保材料时要求请吃饭。"
    ),
    Column(
        "kind",
        N_("定性"),
        False,
        N_("检举控告、作风效能诉求、申诉、批评建议、不属于受理范围；可留空"),
        "作风效能诉求",
    ),
    Column("status", N_("办理状态"), True, N_("办理中 或 已办结"), "已办结"),
    Column("closed", N_("办结日期"), False, N_("已办结的必须填写，不早于收件日期"), "2026-03-20"),
    Column("feedback", N_("答复内容"), False, N_("已办结的必须填写：给反映人的答复"), "经核实，已责令整改。"),
    Column("rating", N_("评价"), False, N_("满意、基本满意、不满意；可留空"), "满意"),
    Column("reporter_name", N_("反映人姓名"), False, N_("实名反映的填写；加密保存"), ""),
    Column("reporter_phone", N_("反映人电话"), False, N_("加密保存；填写姓名的须填写电话"), ""),
)

STATUS_WORDS = {
    "办理中": "open",
    "在办": "open",
    "open": "open",
    "已办结": "closed",
    "办结": "closed",
    "closed": "closed",
}
CHANNEL_WORDS = {c.value: c.value for c in Channel} | {
    label.lower(): c for c, label in CHANNEL_LABELS.items()
}
CHANNEL_WORDS |= {"12345": "hotline", "12388": "phone", "导入": "import", "二维码": "qr"}
KIND_WORDS = {k: k for k in KIND_LABELS} | {label: k for k, label in KIND_LABELS.items()}
RATING_WORDS = {r.value: r.value for r in Rating} | {
    "满意": "satisfied",
    "基本满意": "basically_satisfied",
    "不满意": "unsatisfied",
}
PHONE_RE = re.compile(r"^\+?[0-9][0-9 -]{5,19}$")
BATCH = 500


def ref_key(ref: str) -> str:
    """What `Case.submit_key` holds for an imported case: a digest of its ledger reference, so a
    second import of the same row finds the first (a submission's key is another digest)."""
    return hashlib.sha256(f"import-case\0{ref}".encode()).hexdigest()


def _phone(value: Any) -> str:
    text = text_value(value, max_len=20)
    if not PHONE_RE.match(text):
        raise RowError(N_("“%(value)s”不是电话号码"), value=text)
    return text


@dataclass
class CaseRow:
    row: int
    ref: str
    received_at: datetime
    channel: str
    subject_id: int
    category_id: int
    subject: str
    content: str
    kind: str | None
    closed: bool
    closed_at: datetime | None
    feedback: str | None
    rating: str | None
    name: str | None
    phone: str | None


def check(ctx: ImportContext, rows: Rows, table: list[tuple[int, list[Any]]]) -> Plan:
    session = ctx.session
    if not ctx.scope.at_body:
        rows.problem(0, None, N_("只有纪检监察机构的管理员可以导入诉求台账"))
        return Plan()
    orgs = {o.code: o for o in session.scalars(select(Org))}
    categories: dict[str, int] = {}
    for category in session.scalars(select(Category).where(Category.active.is_(True))):
        categories[category.code.lower()] = categories[category.name.lower()] = category.id
    seen: dict[str, int] = {}
    items: list[CaseRow] = []
    now = ctx.now
    for number, values in table:
        if rows.full():
            break
        before = len(rows.problems)
        ref = rows.read(number, values, "ref", lambda v: text_value(v, max_len=64))
        received = rows.read(number, values, "received", lambda v: moment_value(v, now))
        channel = rows.read(
            number,
            values,
            "channel",
            lambda v: choice_value(v, CHANNEL_WORDS, "、".join(CHANNEL_LABELS.values())),
        )
        code = rows.read(number, values, "subject_unit", lambda v: text_value(v, max_len=64))
        category = rows.read(number, values, "category", lambda v: text_value(v, max_len=100))
        subject = rows.read(number, values, "subject", lambda v: text_value(v, max_len=200))
        content = rows.read(number, values, "content", lambda v: text_value(v, max_len=5000))
        kind = rows.read(
            number, values, "kind", lambda v: choice_value(v, KIND_WORDS, "、".join(KIND_LABELS.values()))
        )
        status = rows.read(
            number, values, "status", lambda v: choice_value(v, STATUS_WORDS, "办理中、已办结")
        )
        closed_at = rows.read(number, values, "closed", lambda v: moment_value(v, now))
        feedback = rows.read(number, values, "feedback", lambda v: text_value(v, max_len=5000))
        rating = rows.read(
            number, values, "rating", lambda v: choice_value(v, RATING_WORDS, "满意、基本满意、不满意")
        )
        name = rows.read(number, values, "reporter_name", lambda v: text_value(v, max_len=50))
        phone = rows.read(number, values, "reporter_phone", _phone)
        org = orgs.get(code) if code else None
        if code and (org is None or not ctx.scope.contains(org)):
            rows.problem(number, "subject_unit", N_("找不到代码为 %(code)s 的单位"), code=code)
        elif org is not None and not org.active:
            rows.problem(number, "subject_unit", N_("单位 %(code)s 已停用"), code=code)
        category_id = categories.get(category.lower()) if category else None
        if category and category_id is None:
            rows.problem(number, "category", N_("找不到问题类别“%(value)s”"), value=category)
        if ref in seen:
            rows.problem(number, "ref", N_("与第 %(row)s 行的原编号重复"), row=seen[ref])
        elif ref:
            seen[ref] = number
        if status == "closed":
            if closed_at is None and rows.get(values, "closed") == "":
                rows.problem(number, "closed", N_("已办结的必须填写办结日期"))
            elif closed_at is not None and received is not None and closed_at < received:
                rows.problem(number, "closed", N_("办结日期不能早于收件日期"))
            if not feedback:
                rows.problem(number, "feedback", N_("已办结的必须填写答复内容"))
        elif status == "open" and (closed_at or rating):
            rows.problem(number, "closed" if closed_at else "rating", N_("办理中的诉求不能有办结日期或评价"))
        if name and not phone:
            rows.problem(number, "reporter_phone", N_("填写了反映人姓名的须填写电话"))
        if len(rows.problems) > before:
            continue
        items.append(
            CaseRow(
                number,
                ref,
                received,
                channel or Channel.IMPORT.value,
                org.id,
                category_id,
                subject,
                content,
                kind,
                status == "closed",
                closed_at,
                feedback,
                rating,
                name,
                phone,
            )
        )
    existing: set[str] = set()
    keys = [ref_key(item.ref) for item in items]
    for start in range(0, len(keys), BATCH):
        existing.update(
            session.scalars(select(Case.submit_key).where(Case.submit_key.in_(keys[start : start + BATCH])))
        )
    new = [item for item, key in zip(items, keys, strict=True) if key not in existing]

    def apply(ctx: ImportContext, progress) -> dict[str, Any]:
        tree = OrgTree.load(ctx.session)  # this transaction's tree, staffed roles included
        context = make_context(ctx.now)
        built: list[NewCase] = []
        for item in new:
            built.append(_build(ctx, context, tree, item))
            if len(built) == BATCH:
                write_new_cases(ctx.session, built)
                progress(len(built))
                built = []
        if built:
            write_new_cases(ctx.session, built)
            progress(len(built))
        return {"created": len(new), "open": sum(1 for i in new if not i.closed)}

    plan = Plan(create=len(new), unchanged=len(items) - len(new), apply=apply)
    open_count = sum(1 for i in new if not i.closed)
    if open_count:
        plan.details.append((N_("其中 %(n)s 件办理中，将进入主办机关的待受理"), {"n": open_count}))
    return plan


def _build(ctx: ImportContext, context, tree: OrgTree, item: CaseRow) -> NewCase:
    from supervise.cases.identity import new_access_code

    data = {"subject": item.subject, "content": item.content, "name": item.name, "phone": item.phone}
    # A ledger's reporter never had an access code: a random one, thrown away, fills the column.
    case, clocks = build_case(
        data,
        context,
        tree,
        subject_id=item.subject_id,
        category_id=item.category_id,
        code=new_access_code(),
        channel=Channel(item.channel),
        submit_key=ref_key(item.ref),
        received_at=item.received_at,
    )
    case.kind = item.kind
    status = Status.RECEIVED
    if item.closed:
        status = Status.CLOSED
        # The answer was given when the case was closed: the response clock is met then and the
        # others are dropped, so the sweep has nothing to remind or escalate.
        clocks = [c for c in clocks if c.kind in RESPONSE_KINDS]
        for clock in clocks:
            clock.met_at, clock.outcome, clock.next_check_at = item.closed_at, "met", None
        case.status = status
        case.responded_at = case.closed_at = item.closed_at
        case.feedback_text = item.feedback
        case.rating = item.rating
        case.rated_at = item.closed_at if item.rating else None
        case.due_soon = case.overdue = False
    event = Event(
        at=item.received_at,
        action=Action.SUBMIT.value,
        actor_id=ctx.user_id,
        actor_kind="staff" if ctx.user_id else "system",
        to_status=status.value,
        public=False,
        note=f"由历史台账导入：{ctx.file_name} 第 {item.row} 行（原编号 {item.ref}）",
        data={
            "import": {"file": ctx.file_name, "row": item.row, "ref": item.ref, "by": ctx.username},
            "imported_at": ctx.now.isoformat(),
        },
    )
    return NewCase(case, event, clocks)
