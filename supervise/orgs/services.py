"""Building the org tree."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from supervise.orgs.models import Org, OrgKind


def create_org(session: Session, code: str, name: str, kind: OrgKind | str, parent: Org | None = None) -> Org:
    org = Org(code=code, name=name, kind=str(kind), parent=parent)
    session.add(org)
    session.flush()  # the id is part of the path
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    return org


def get_org_by_code(session: Session, code: str) -> Org | None:
    return session.scalar(select(Org).where(Org.code == code))


def root_org(session: Session) -> Org | None:
    """The top commission: where cases with no point land."""
    return session.scalar(select(Org).where(Org.parent_id.is_(None)).order_by(Org.id).limit(1))
