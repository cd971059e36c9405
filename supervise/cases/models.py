"""Categories, cases, their events (流转记录) and attachments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Computed,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.cases.states import (
    OPEN_STATES,
    CaseKind,
    Channel,
    Disposal,
    Rating,
    RejectReason,
    Status,
    sql_in,
    sql_in_values,
)
from supervise.dbtypes import UTCDateTime, utcnow
from supervise.deadlines.calendar import SHANGHAI
from supervise.extensions import db
from supervise.intake.models import Point
from supervise.orgs.models import Org
from supervise.staff.models import User


class Category(db.Model):
    """问题类别: what kind of problem, with the org kind that usually handles it."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    __table_args__ = (
        CheckConstraint(
            f"default_kind IS NULL OR default_kind IN ({sql_in(CaseKind)})", name="default_kind_valid"
        ),
    )

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    # The 定性 intake starts from when accepting a case of this category (they may change it).
    default_kind: Mapped[str | None] = mapped_column(String(20))
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)


BUCKET_SQL = (
    "CASE WHEN status = 'received' THEN 'intake' "
    "WHEN status = 'accepted' THEN 'dispatch' "
    "WHEN status IN ('assigned', 'processing', 'reopened') THEN 'in_progress' "
    "WHEN status = 'feedback_pending_review' THEN 'review' "
    "ELSE 'done' END"
)
IS_OPEN_SQL = f"status IN ({sql_in_values(OPEN_STATES)})"
ESCALATED_SQL = "is_open AND escalation_level > 0"
# The 已超期 / 即将超期 tabs read the flags the deadline sweep sets (deadlines/sweep.py).
OVERDUE_SQL = "is_open AND overdue"
DUE_SOON_SQL = "is_open AND due_soon AND NOT overdue"


UNIT_UNASSIGNED = {
    f"{dialect}_where": text("status = 'assigned' AND assignee_id IS NULL")
    for dialect in ("postgresql", "sqlite")
}
REJECTED_ONLY = {"postgresql_where": text("status = 'rejected'"), "sqlite_where": text("status = 'rejected'")}


def _partial_queue_indexes(name: str, where: str) -> tuple[Index, Index]:
    """A small index per flagged tab, for any scope: (priority, due, id) and the same per owner."""
    condition = {"postgresql_where": text(where), "sqlite_where": text(where)}
    return (
        Index(f"ix_cases_{name}_queue", "priority", "response_due_at", "id", **condition),
        Index(
            f"ix_cases_owner_{name}_queue", "owner_org_id", "priority", "response_due_at", "id", **condition
        ),
    )


class Case(db.Model):
    """诉求 / 件: one submission and its whole life."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(Status)})", name="status_valid"),
        CheckConstraint(f"rating IS NULL OR rating IN ({sql_in(Rating)})", name="rating_valid"),
        CheckConstraint("escalation_level BETWEEN 0 AND 2", name="escalation_level_valid"),
        CheckConstraint("priority IN (-1, 0, 1)", name="priority_valid"),
        CheckConstraint(f"kind IS NULL OR kind IN ({sql_in(CaseKind)})", name="kind_valid"),
        CheckConstraint(f"channel IN ({sql_in(Channel)})", name="channel_valid"),
        CheckConstraint(f"disposal IS NULL OR disposal IN ({sql_in(Disposal)})", name="disposal_valid"),
        CheckConstraint(
            f"reject_reason IS NULL OR reject_reason IN ({sql_in(RejectReason)})", name="reject_reason_valid"
        ),
        # Queue pages read (tab, priority) in (due, id) order: one index range per priority value,
        # whether the tab is scoped to one body or to a whole subtree (see cases/queries.py).
        Index("ix_cases_bucket_queue", "bucket", "priority", "response_due_at", "id"),
        Index("ix_cases_owner_bucket_queue", "owner_org_id", "bucket", "priority", "response_due_at", "id"),
        Index("ix_cases_open_queue", "is_open", "priority", "response_due_at", "id"),
        Index("ix_cases_owner_open_queue", "owner_org_id", "is_open", "priority", "response_due_at", "id"),
        # A unit's queue: what was transferred to it (few rows per unit).
        Index("ix_cases_unit_queue", "unit_org_id", "bucket", "response_due_at", "id"),
        # …and its 待交办 (no handler picked yet): a few rows among everything the unit ever had.
        Index(
            "ix_cases_unit_unassigned", "unit_org_id", "priority", "response_due_at", "id", **UNIT_UNASSIGNED
        ),
        # 不予受理复核: the last weeks' rejections, a few rows of a long history, found by date.
        Index("ix_cases_rejected_recent", "closed_at", **REJECTED_ONLY),
        Index("ix_cases_owner_rejected_recent", "owner_org_id", "closed_at", **REJECTED_ONLY),
        Index("ix_cases_assignee_queue", "assignee_id", "is_open", "priority", "response_due_at", "id"),
        # 督办件, 已超期, 即将超期 are few: small partial indexes serve those tabs for any scope.
        *_partial_queue_indexes("escalated", ESCALATED_SQL),
        *_partial_queue_indexes("overdue", OVERDUE_SQL),
        *_partial_queue_indexes("due_soon", DUE_SOON_SQL),
        # The cases merged into one (their reporters are answered with it: workflow._sms on every
        # 受理 and 答复): few rows. Without it each of those actions read the whole table (0.4 s at
        # 1,000,000 cases, 1.8 s at 10,000,000), and deleting a case did the same per row.
        Index(
            "ix_cases_merged_into",
            "merged_into_id",
            postgresql_where=text("merged_into_id IS NOT NULL"),
            sqlite_where=text("merged_into_id IS NOT NULL"),
        ),
        # Likely duplicates (重复件): the same subject unit's cases of the last 90 days, and the same
        # reporter's cases (by keyed phone hash) — both ranges read newest first.
        Index("ix_cases_subject_received", "subject_org_id", "received_at"),
        Index(
            "ix_cases_reporter_hash",
            "reporter_hash",
            "received_at",
            postgresql_where=text("reporter_hash IS NOT NULL"),
            sqlite_where=text("reporter_hash IS NOT NULL"),
        ),
        # The weekly report counts by date range (reports/weekly.py).
        Index("ix_cases_received_at", "received_at"),
        Index(
            "ix_cases_rated_at",
            "rated_at",
            postgresql_where=text("rated_at IS NOT NULL"),
            sqlite_where=text("rated_at IS NOT NULL"),
        ),
        # PostgreSQL only; SQLite searches with LIKE (the migration creates it on PostgreSQL alone).
        Index("ix_cases_search", text("to_tsvector('simple', search_text)"), postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tracking_no: Mapped[str] = mapped_column(String(20), unique=True)
    access_code_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default=Status.RECEIVED)
    # Derived by the database from `status`, so they can never drift from it: the tab a case
    # sits in (bucket) and whether its response clock still runs (is_open). Indexed for queues.
    bucket: Mapped[str] = mapped_column(String(16), Computed(BUCKET_SQL, persisted=True))
    is_open: Mapped[bool] = mapped_column(Computed(IS_OPEN_SQL, persisted=True))
    version: Mapped[int] = mapped_column(default=1)

    # Where the case sits now (who acts next): the owner, or the unit it was transferred to.
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    # DESIGN.md §2a. The owner (the discipline body that received it) decides and answers; the
    # subject unit (被反映单位) is who the complaint is about; the unit (承办单位) is the one a
    # service complaint was transferred to, kept after its answer so the unit sees its history.
    # Set on every insert; nullable only because SQLite cannot add a NOT NULL column to `cases`.
    owner_org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))
    subject_org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))
    unit_org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))
    kind: Mapped[str | None] = mapped_column(String(20))  # 定性, set at acceptance
    point_id: Mapped[int | None] = mapped_column(ForeignKey("points.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))

    subject: Mapped[str] = mapped_column(String(200))  # the person or unit concerned
    content: Mapped[str] = mapped_column(Text)
    occurred_on: Mapped[date | None] = mapped_column(Date)
    location: Mapped[str | None] = mapped_column(String(200))
    about_org_head: Mapped[bool] = mapped_column(default=False)

    # 实名: identity stored encrypted (Fernet); `priority` 0 puts real-name cases first in queues.
    real_name: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[int] = mapped_column(SmallInteger, default=1)
    reporter_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    reporter_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A keyed hash of the normalised phone number (identity.reporter_hash): finds the same
    # reporter's other cases (重复访) without decrypting anything; never reveals the number.
    reporter_hash: Mapped[str | None] = mapped_column(String(64))
    # 来源渠道 (states.Channel); `received_at` is the day it really arrived, back-dated by 登记.
    channel: Mapped[str] = mapped_column(String(16), default=Channel.WEB, server_default=Channel.WEB.value)

    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    response_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_provisional: Mapped[bool] = mapped_column(default=False)
    stage_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extension_days: Mapped[int] = mapped_column(default=0)
    extension_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # Set by the deadline sweep from the running response clock (deadlines/sweep.py); not states.
    due_soon: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    overdue: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(SmallInteger, default=0)

    reject_reason: Mapped[str | None] = mapped_column(String(20))
    disposal: Mapped[str | None] = mapped_column(String(20))  # 处置方式 of a 检举控告 case
    disposal_note: Mapped[str | None] = mapped_column(Text)

    feedback_draft: Mapped[str | None] = mapped_column(Text)
    feedback_text: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[str | None] = mapped_column(String(32))
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(default=0)
    # Bigrams of subject and content ("ab bc cd …") for full-text search that needs no Chinese
    # word segmenter: PostgreSQL indexes to_tsvector('simple', search_text) with GIN.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The form's idempotency token: a double tap or a retried POST finds the first case.
    submit_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    org: Mapped[Org] = relationship(foreign_keys=[org_id])
    owner: Mapped[Org | None] = relationship(foreign_keys=[owner_org_id])
    subject_org: Mapped[Org | None] = relationship(foreign_keys=[subject_org_id])
    unit: Mapped[Org | None] = relationship(foreign_keys=[unit_org_id])
    point: Mapped[Point | None] = relationship()
    category: Mapped[Category] = relationship()
    assignee: Mapped[User | None] = relationship()
    merged_into: Mapped[Case | None] = relationship(remote_side=[id])
    events: Mapped[list[Event]] = relationship(
        back_populates="case", order_by="Event.id", cascade="all, delete-orphan"
    )
    attachments: Mapped[list[Attachment]] = relationship(back_populates="case", order_by="Attachment.id")

    # The ORM adds "AND version = :old" to every UPDATE: two staff acting on the same version
    # cannot both win, even when the second request already passed the version check.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it once

    @property
    def register_no(self) -> str:
        """登记号: the staff-side running number (`2026-000123`), from the primary key's sequence,
        so no counter row is locked by every submission. The public number is random."""
        return f"{self.received_at.astimezone(SHANGHAI).year}-{self.id:06d}"

    def __repr__(self) -> str:
        return f"<Case {self.tracking_no} {self.status}>"


class Event(db.Model):
    """流转记录: one append-only entry in a case's history."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_action_at", "action", "at"),)  # the weekly report's acceptances

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_kind: Mapped[str] = mapped_column(String(16))  # staff | citizen | system
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    public: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    case: Mapped[Case] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


@event.listens_for(Event, "before_update")
def _events_are_append_only(mapper, connection, target: Event) -> None:
    raise RuntimeError("events are append-only")


class Attachment(db.Model):
    """A photo or file on a case (metadata; bytes live in the upload store by content hash)."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    thumb_sha256: Mapped[str | None] = mapped_column(String(64))  # made by a job after upload
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    width: Mapped[int | None]
    height: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="attachments")
    event: Mapped[Event | None] = relationship()


class CaseDraft(db.Model):
    """草稿: what one person has typed into one form of one case, saved as they type.

    Kept on the server, per user and case, rather than in the browser: office PCs are shared,
    and a draft answer left in localStorage would be read by whoever signs in next. The row goes
    when the action it was typed for succeeds.
    """

    __tablename__ = "case_drafts"
    __table_args__ = (
        UniqueConstraint("case_id", "user_id", "action", name="uq_case_drafts_case_user_action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))  # the form: feedback, answer, publish, message, note
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
