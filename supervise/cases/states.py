"""Case states and actions: the vocabulary the workflow table is written in (DESIGN.md §3)."""

import enum


class Status(enum.StrEnum):
    RECEIVED = "received"  # 待受理
    ACCEPTED = "accepted"  # 已受理, 待交办
    REJECTED = "rejected"  # 不予受理
    MERGED = "merged"  # 重复件合并
    ASSIGNED = "assigned"  # 已交办
    PROCESSING = "processing"  # 办理中
    FEEDBACK_PENDING_REVIEW = "feedback_pending_review"  # 待审核
    RESPONDED = "responded"  # 已反馈
    REOPENED = "reopened"  # 重办
    CLOSED = "closed"  # 已办结


class Channel(enum.StrEnum):
    """来源渠道: how a complaint reached the platform. Staff register the last five (登记)."""

    QR = "qr"  # 扫码: a point's QR code
    WEB = "web"  # 网上: /report or the API without a point
    PHONE = "phone"  # 来电 (12388 and the office's own line)
    LETTER = "letter"  # 来信
    VISIT = "visit"  # 来访
    HOTLINE = "hotline"  # 12345 热线转办
    IMPORT = "import"  # 其他系统转来 or a historical ledger loaded by `supervise import cases`


# What intake may pick when registering a complaint by hand (登记); qr and web are the citizen's own.
REGISTERED_CHANNELS = (Channel.PHONE, Channel.LETTER, Channel.VISIT, Channel.HOTLINE, Channel.IMPORT)


class CaseKind(enum.StrEnum):
    """定性: what a case is, set at acceptance (DESIGN.md §2a)."""

    ACCUSATION = "accusation"  # 检举控告: a named official's misconduct; stays inside discipline bodies
    SERVICE = "service"  # 作风效能诉求: a service or efficiency problem; may go to a unit
    APPEAL = "appeal"  # 申诉
    SUGGESTION = "suggestion"  # 批评建议
    OUT_OF_SCOPE = "out_of_scope"  # 不属于受理范围


class Disposal(enum.StrEnum):
    """处置方式: how a 检举控告 case ends."""

    TALK_INQUIRY = "talk_inquiry"  # 谈话函询
    PRELIMINARY_CHECK = "preliminary_check"  # 初步核实
    SHELVED = "shelved"  # 暂存待查
    CONCLUDED = "concluded"  # 予以了结


class RejectReason(enum.StrEnum):
    """不予受理的理由 (a list, plus the clerk's own words)."""

    OUT_OF_SCOPE = "out_of_scope"  # 不属于本机关受理范围
    NO_FACTS = "no_facts"  # 反映内容不具体、无法核实
    ALREADY_HANDLED = "already_handled"  # 已依法处理或正在其他程序中
    DUPLICATE = "duplicate"  # 重复反映且无新情况
    OTHER = "other"  # 其他


class Action(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    MERGE = "merge"
    TRANSFER = "transfer"
    CLASSIFY = "classify"  # 定性 changed after acceptance (before the case leaves the body)
    RETURN = "return"  # 退回: a unit gives back a case that is not its own
    ANSWER = "answer"  # 直接答复: an accepted case answered by the body without assigning it
    REVERSE_REJECTION = "reverse_rejection"  # 撤销不予受理: a supervisor's review of a rejection
    ASSIGN = "assign"
    START = "start"
    FEEDBACK = "feedback"
    PUBLISH = "publish"
    REOPEN = "reopen"
    REQUEST_EXTENSION = "request_extension"  # 申请延期: a handler asks, a supervisor extends
    EXTEND = "extend"
    NOTE = "note"
    MESSAGE = "message"  # a public question to the citizen (留言)
    # Not staff actions: recorded by the system or the citizen.
    SUBMIT = "submit"
    RATE = "rate"
    SUPPLEMENT = "supplement"
    AUTO_CLOSE = "auto_close"
    # Recorded by the deadline sweep and calendar imports.
    WARN = "warn"  # 即将超期提醒
    ESCALATE = "escalate"  # 督办
    DEADLINE_CHANGED = "deadline_changed"  # 期限调整 (a calendar import moved it)


SYSTEM_ACTIONS = frozenset(
    {
        Action.SUBMIT,
        Action.RATE,
        Action.SUPPLEMENT,
        Action.AUTO_CLOSE,
        Action.WARN,
        Action.ESCALATE,
        Action.DEADLINE_CHANGED,
    }
)
STAFF_ACTIONS = [a for a in Action if a not in SYSTEM_ACTIONS]

# States in which the response clock still runs.
OPEN_STATES = frozenset(
    {
        Status.RECEIVED,
        Status.ACCEPTED,
        Status.ASSIGNED,
        Status.PROCESSING,
        Status.FEEDBACK_PENDING_REVIEW,
        Status.REOPENED,
    }
)


class Rating(enum.StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"


def sql_in(enum_cls: type[enum.StrEnum]) -> str:
    """`'a', 'b'` for a CHECK constraint listing an enum's values."""
    return ", ".join(f"'{m.value}'" for m in enum_cls)


def sql_in_values(values) -> str:
    """The same for a set of members, in a stable order (the SQL text lands in migrations)."""
    return ", ".join(f"'{v.value}'" for v in sorted(values, key=lambda v: v.value))
