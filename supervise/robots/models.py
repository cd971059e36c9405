"""An org's group robots: where its escalations and review requests are posted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.dbtypes import UTCDateTime, utcnow
from supervise.extensions import db
from supervise.orgs.models import Org

KINDS = ("wecom", "dingtalk")


class OrgRobot(db.Model):
    """A WeCom group robot or a DingTalk custom robot of one discipline body's group.

    The webhook address carries the robot's credential (WeCom `key=`, DingTalk `access_token=`):
    anyone holding it posts to the group. It is sealed like a reporter's identity (Fernet, the
    ENCRYPTION_KEY), as is DingTalk's signing secret, and neither is shown whole nor logged.
    """

    __tablename__ = "org_robots"
    __table_args__ = (CheckConstraint("kind IN ('wecom', 'dingtalk')", name="kind_valid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))  # the group, as admins call it (督办工作群)
    webhook_enc: Mapped[bytes] = mapped_column(LargeBinary)
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # DingTalk 加签 (SEC…)
    # The end of the credential (4 characters), so admins tell robots apart without the address.
    hint: Mapped[str] = mapped_column(String(8), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    org: Mapped[Org] = relationship()

    def __repr__(self) -> str:
        return f"<OrgRobot {self.id} {self.kind} org={self.org_id}>"
