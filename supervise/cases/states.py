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


class Action(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    MERGE = "merge"
    TRANSFER = "transfer"
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
