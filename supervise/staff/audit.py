"""The audit log: every login, failed login, refusal, identity view and staff action."""

from __future__ import annotations

import logging
from typing import Any

from flask import has_request_context, request

from supervise.extensions import db
from supervise.staff.models import AuditEntry, User

log = logging.getLogger("supervise.audit")


def record(
    action: str,
    *,
    user: User | None = None,
    username: str | None = None,
    case_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit row to the current transaction (the caller commits with its change)."""
    ip = request.remote_addr if has_request_context() else None
    entry = AuditEntry(
        action=action,
        user_id=user.id if user else None,
        username=username or (user.username if user else None),
        case_id=case_id,
        ip=ip,
        detail=detail or {},
    )
    db.session.add(entry)
    # Names of staff, never of reporters: identity views log who looked, not what they saw.
    log.info("audit %s by %s case=%s ip=%s", action, entry.username, case_id, ip)
    return entry
