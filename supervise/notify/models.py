"""The outbox (side effects written with the business change) and in-app notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.dbtypes import UTCDateTime, utcnow
from supervise.extensions import db


class OutboxMessage(db.Model):
    """A side effect to deliver: written in the transaction that caused it, delivered by a job.

    Redis being down only delays delivery: the drain finds rows still pending and enqueues them
    again. `dedupe_key` makes "notify once" a database guarantee, not a hope.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'delivered', 'unknown', 'dead')", name="status_valid"
        ),
        Index("ix_outbox_pending", "status", "created_at"),
        # The receipt job matches Tencent's pulled receipts by serial number (notify/sms.py).
        Index("ix_outbox_provider_id", "provider_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))  # case_received, …
    channel: Mapped[str] = mapped_column(String(16))  # inapp | email | sms
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # ids only, never identity
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An external send (e-mail, SMS) is claimed in its own commit before the provider is called:
    # a row left `sending` by a dead worker may or may not have gone out, so it is never re-sent
    # blindly but becomes `unknown` for an admin to decide (notify/outbox.py).
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # the RQ worker's name
    # SMS through a provider (notify/sms.py): which one and its id for the message (Aliyun BizId,
    # Tencent SerialNo), then the delivery receipt (回执) the receipt job pulls: delivered | failed,
    # the operator's code, and when the phone got it (or the failure was reported).
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    receipt_status: Mapped[str | None] = mapped_column(String(16))
    receipt_code: Mapped[str | None] = mapped_column(String(64))
    receipt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Aliyun's receipt query needs the number: kept sealed (identity box) only until the receipt
    # is recorded or its window has passed, then cleared. Tencent's pull needs none.
    receipt_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    case = relationship("Case")


class Notification(db.Model):
    """An in-app notification for one staff user.

    One *unread* notice per user, case and group (kind and level, `group_key`): a later message of
    the same group folds into it (`repeats`, `clocks`, `updated_at`) instead of piling up, so the
    header count is the number of things to look at, not the number of rows a sweep wrote.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("outbox_id", "user_id", name="uq_notifications_outbox_user"),
        Index(
            "uq_notifications_unread_group",
            "user_id",
            "case_id",
            "group_key",
            unique=True,
            postgresql_where=text("read_at IS NULL"),
            sqlite_where=text("read_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    group_key: Mapped[str | None] = mapped_column(String(80))  # kind[:level]
    repeats: Mapped[int] = mapped_column(default=1, server_default="1")
    clocks: Mapped[list[str] | None] = mapped_column(JSON)  # the deadlines the folded notices were about
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    case = relationship("Case")
