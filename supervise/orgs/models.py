"""The organisation tree (单位 / 机构): commission → department / township → village."""

from __future__ import annotations

import enum

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.extensions import db


class OrgKind(enum.StrEnum):
    COMMISSION = "commission"  # 纪委监委
    DEPARTMENT = "department"  # 部门
    TOWNSHIP = "township"  # 乡镇 / 街道
    VILLAGE = "village"  # 村 / 社区


class Org(db.Model):
    __tablename__ = "orgs"
    __table_args__ = (
        CheckConstraint("kind IN ('commission', 'department', 'township', 'village')", name="kind_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"), index=True)
    # Materialised path "/1/4/9/": a subtree is one indexed prefix match, which keeps every
    # supervisor's query a single SQL condition instead of a recursive walk.
    path: Mapped[str] = mapped_column(String(500), index=True, default="")
    active: Mapped[bool] = mapped_column(default=True)

    parent: Mapped[Org | None] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        return f"<Org {self.code}>"

    def contains(self, other: Org) -> bool:
        """True if `other` is this org or below it."""
        return other.path.startswith(self.path)

    @property
    def depth(self) -> int:
        return self.path.count("/") - 1
