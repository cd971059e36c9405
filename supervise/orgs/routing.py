"""Who receives a complaint and who is told (DESIGN.md §2a): the discipline-body chain.

One in-memory view of the org tree (a county has hundreds of orgs, a province thousands) answers
the three questions every route needs: which body supervises a unit, which body sits above a body,
and which bodies can act at all (have an active intake account). Case routing, escalation targets
and the notification walk all use it, so whoever is told about a case is whoever can open it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise import refdata
from supervise.orgs.models import BODY_KINDS, Org, OrgKind
from supervise.staff.models import Role, User, UserRole


@dataclass(frozen=True)
class OrgNode:
    id: int
    parent_id: int | None
    kind: str
    supervising_body_id: int | None
    active: bool
    name: str
    code: str

    @property
    def is_body(self) -> bool:
        return self.kind in BODY_KINDS


class OrgTree:
    """The org tree with the roles that are staffed at each org, loaded in two queries."""

    def __init__(self, nodes: list[OrgNode], staffed: dict[int, set[str]]):
        self.nodes = {n.id: n for n in nodes}
        self.staffed = staffed
        self._offices: dict[int, int] = {}
        for n in sorted(nodes, key=lambda n: n.id):
            # A township's 纪委 hangs below the township: it supervises that township's subtree.
            if n.kind == OrgKind.DISCIPLINE_OFFICE and n.active and n.parent_id is not None:
                self._offices.setdefault(n.parent_id, n.id)
        self.root_id = min((n.id for n in nodes if n.parent_id is None), default=None)
        self.by_code = {n.code: n for n in nodes}

    @classmethod
    def load(cls, session: Session) -> OrgTree:
        nodes = [
            OrgNode(*row)
            for row in session.execute(
                select(
                    Org.id, Org.parent_id, Org.kind, Org.supervising_body_id, Org.active, Org.name, Org.code
                )
            )
        ]
        staffed: dict[int, set[str]] = defaultdict(set)
        for org_id, role in session.execute(
            select(User.org_id, UserRole.role).join(UserRole, UserRole.user_id == User.id).where(User.active)
        ):
            staffed[org_id].add(role)
        return cls(nodes, staffed)

    @classmethod
    def cached(cls, session: Session) -> OrgTree:
        """This process's copy, reloaded when orgs or staff change (supervise/refdata.py): a
        submission routes without reading the tree. Read-only: every thread shares it."""
        return refdata.cached("org_tree", lambda: cls.load(session))

    def is_body(self, org_id: int) -> bool:
        return self.nodes[org_id].is_body

    def can_receive(self, org_id: int) -> bool:
        """A body that can act on what arrives: active, with an active intake account."""
        node = self.nodes.get(org_id)
        return node is not None and node.active and node.is_body and Role.INTAKE in self.staffed[org_id]

    def has_role(self, org_id: int, role: str) -> bool:
        return role in self.staffed[org_id]

    def supervising_body(self, org_id: int) -> int:
        """The body that supervises an org: itself for a body; for a unit the one an admin set, else
        the nearest body at or above it (a 纪委 attached to an ancestor counts as at that level)."""
        node = self.nodes[org_id]
        if node.is_body:
            return org_id
        chosen = node.supervising_body_id
        if chosen is not None and chosen in self.nodes and self.nodes[chosen].active:
            return chosen
        current: int | None = org_id
        while current is not None:
            if self.nodes[current].is_body:
                return current
            if current in self._offices:
                return self._offices[current]
            current = self.nodes[current].parent_id
        return self.root_id if self.root_id is not None else org_id

    def body_above(self, body_id: int) -> int:
        """The next discipline body up from a body (督办 and 'one level up'); the top is its own."""
        current = self.nodes[body_id].parent_id
        while current is not None:
            if self.nodes[current].is_body:
                return current
            office = self._offices.get(current)
            if office is not None and office != body_id:
                return office
            current = self.nodes[current].parent_id
        return body_id

    def receiving_body(self, body_id: int) -> int:
        """`body_id`, or the first body above it that can receive: a case never waits where no one
        can accept it (a 纪委 without an intake account yet)."""
        current = body_id
        while not self.can_receive(current):
            above = self.body_above(current)
            if above == current:
                return current  # the top without intake: `supervise init` and the admin pages warn
            current = above
        return current

    def owner_for(self, subject_id: int, *, about_leadership: bool) -> int:
        """The body that receives a complaint about `subject_id` (DESIGN.md §2a): the subject's
        supervising body, one level up when the complaint is about the unit's leadership."""
        body = self.supervising_body(subject_id)
        if about_leadership:
            body = self.body_above(body)
        return self.receiving_body(body)

    def bodies_without_intake(self) -> list[OrgNode]:
        return [n for n in self.nodes.values() if n.is_body and n.active and not self.can_receive(n.id)]
