"""The organisation tree (单位 / 机构) and who in it receives complaints (DESIGN.md §2a).

An org is either a *discipline body* (纪检监察机构) — the county commission, a township's 纪委, a
派驻纪检监察组 — which receives, classifies and decides complaints, or a *unit* (department,
township government, village), which is complained about and handles only what a body transfers
to it. Each unit is supervised by one body: by default the nearest one at or above it (a
township's 纪委 sits below the township and supervises it and its villages), or one an admin sets
(a 派驻组 for a group of departments).
"""

from __future__ import annotations

import enum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.extensions import db


class OrgKind(enum.StrEnum):
    COMMISSION = "commission"  # 纪委监委 (a discipline body)
    DISCIPLINE_OFFICE = "discipline_office"  # 乡镇纪委 / 街道纪工委 (a discipline body)
    STATIONED_GROUP = "stationed_group"  # 派驻纪检监察组 (a discipline body)
    DEPARTMENT = "department"  # 部门 (a unit)
    TOWNSHIP = "township"  # 乡镇政府 / 街道办 (a unit)
    VILLAGE = "village"  # 村 / 社区 (a unit)


BODY_KINDS = frozenset({OrgKind.COMMISSION, OrgKind.DISCIPLINE_OFFICE, OrgKind.STATIONED_GROUP})
UNIT_KINDS = frozenset(OrgKind) - BODY_KINDS
KIND_VALUES = ", ".join(f"'{k.value}'" for k in OrgKind)


class Org(db.Model):
    __tablename__ = "orgs"
    __table_args__ = (CheckConstraint(f"kind IN ({KIND_VALUES})", name="kind_valid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"), index=True)
    # Materialised path "/1/4/9/": a subtree is one indexed prefix match, which keeps every
    # supervisor's query a single SQL condition instead of a recursive walk.
    path: Mapped[str] = mapped_column(String(500), index=True, default="")
    active: Mapped[bool] = mapped_column(default=True)
    # A unit's supervising body when an admin sets one (a 派驻组); None: the nearest one above.
    supervising_body_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))
    # 四眼原则: whoever drafts an answer may not publish it, unless a one-person office is allowed
    # to (an admin's audited choice, for bodies only).
    self_publish_allowed: Mapped[bool] = mapped_column(default=False, server_default="0")
    # 人口: residents of a township (its villages included) or a village, set by an admin or the
    # orgs import; the assessment's complaints per 1,000 residents is computed only where it is set.
    population: Mapped[int | None] = mapped_column(Integer)

    parent: Mapped[Org | None] = relationship(remote_side=[id], foreign_keys=[parent_id])
    supervising_body: Mapped[Org | None] = relationship(remote_side=[id], foreign_keys=[supervising_body_id])

    def __repr__(self) -> str:
        return f"<Org {self.code}>"

    @property
    def is_body(self) -> bool:
        """A discipline body (纪检监察机构): receives, classifies and decides complaints."""
        return self.kind in BODY_KINDS

    def contains(self, other: Org) -> bool:
        """True if `other` is this org or below it."""
        return other.path.startswith(self.path)

    @property
    def tree_key(self) -> tuple[int, ...]:
        """Sorts orgs in tree order (each parent before its children, siblings by id)."""
        return tuple(int(part) for part in self.path.strip("/").split("/") if part)

    @property
    def depth(self) -> int:
        return self.path.count("/") - 1
