"""Open311 clients (a 12345 platform, an app) and the requests each submitted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from supervise.cases.models import Case
from supervise.cases.states import Channel, sql_in_values
from supervise.dbtypes import UTCDateTime, utcnow
from supervise.extensions import db
from supervise.orgs.models import Org

# The channels a client's cases may carry: a 12345 platform hands over hotline work orders, a
# citizen's app submits as the web does, another system's hand-off is an import.
CLIENT_CHANNELS = (Channel.HOTLINE, Channel.WEB, Channel.IMPORT)


class Open311Client(db.Model):
    """One caller of /open311/v2 with its own api_key. Only the key's SHA-256 is kept (the key is
    256 random bits, so no salt or slow hash is needed), with a short prefix to tell keys apart."""

    __tablename__ = "open311_clients"
    __table_args__ = (
        CheckConstraint(f"channel IN ({sql_in_values(CLIENT_CHANNELS)})", name="channel_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Its scope: a request without a subject unit is about this org, and one naming a unit must
    # name one in this org's subtree (a county's 12345 platform files about that county).
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    channel: Mapped[str] = mapped_column(String(16), default=Channel.HOTLINE)
    # 已核实来电人: the admin vouches that the platform verifies its callers' phone numbers, so a
    # request with a name and phone is filed real-name. Otherwise contacts are dropped (anonymous).
    verified_callers: Mapped[bool] = mapped_column(default=False)
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    org: Mapped[Org] = relationship()


class Open311Request(db.Model):
    """A case a client submitted: what its GETs may read, and the token its POST answered with."""

    __tablename__ = "open311_requests"
    __table_args__ = (Index("ix_open311_requests_client_created", "client_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("open311_clients.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
    client: Mapped[Open311Client] = relationship()
