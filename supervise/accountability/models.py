"""公开摘要: an anonymised summary of a closed case, written by staff for the public page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.cases.models import Case
from supervise.dbtypes import UTCDateTime, utcnow
from supervise.extensions import db
from supervise.staff.models import User


class PublishedSummary(db.Model):
    """One summary of one closed case. Its text is typed by staff (never copied from the citizen's
    content or the answer) and reaches /public only once a second person approved it (四眼原则);
    withdrawn at any time, after which it is gone from the page. Rows are never deleted: the
    history of what was public, and who decided, stays."""

    __tablename__ = "published_summaries"
    __table_args__ = (
        # The public page reads approved, not withdrawn rows newest first.
        Index("ix_published_summaries_approved_at", "approved_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    written_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship()
    written_by: Mapped[User] = relationship(foreign_keys=[written_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])
    withdrawn_by: Mapped[User | None] = relationship(foreign_keys=[withdrawn_by_id])

    @property
    def state(self) -> str:
        """pending (待审核) | published (已公开) | withdrawn (已撤回)."""
        if self.withdrawn_at is not None:
            return "withdrawn"
        return "published" if self.approved_at is not None else "pending"
