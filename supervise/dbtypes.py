"""Column types shared by every domain."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend.

    SQLite keeps no offset, so values are stored as naive UTC and handed back aware; a naive value
    given to us is a programming error, not something to guess about.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def dialect_insert(session, model):
    """An INSERT with ON CONFLICT support for the session's backend (PostgreSQL or SQLite)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(model)
