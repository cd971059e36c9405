"""Reporter hashes (identity.reporter_hash) for cases that were written before they existed."""

from __future__ import annotations

import logging

from cryptography.fernet import InvalidToken
from sqlalchemy import Connection, bindparam, column, select, table, update

from supervise.cases.identity import IdentityBox, reporter_hash

log = logging.getLogger(__name__)

_cases = table("cases", column("id"), column("reporter_phone_enc"), column("reporter_hash"))
BATCH = 1000


def rehash_reporters(connection: Connection) -> int:
    """Fill `reporter_hash` where a phone is sealed and no hash is stored; returns how many.

    Needs the app's keys (run inside the app, as `supervise init` runs migrations); without them
    it says so and changes nothing. Idempotent: a second run finds nothing to do."""
    from flask import current_app, has_app_context

    if not has_app_context():
        log.warning("reporter hashes not filled: no app context (run `supervise init` to fill them)")
        return 0
    box = IdentityBox(current_app.config["ENCRYPTION_KEY"])
    secret = current_app.config["SECRET_KEY"]
    set_hash = (
        update(_cases).where(_cases.c.id == bindparam("case_id")).values(reporter_hash=bindparam("digest"))
    )
    done, last = 0, 0
    while True:
        rows = connection.execute(
            select(_cases.c.id, _cases.c.reporter_phone_enc)
            .where(
                _cases.c.id > last,
                _cases.c.reporter_phone_enc.is_not(None),
                _cases.c.reporter_hash.is_(None),
            )
            .order_by(_cases.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return done
        last = rows[-1].id
        values = [{"case_id": r.id, "digest": _digest(box, secret, r.reporter_phone_enc)} for r in rows]
        values = [v for v in values if v["digest"]]
        if values:
            connection.execute(set_hash, values)
        done += len(values)


def _digest(box: IdentityBox, secret: str, sealed: bytes) -> str | None:
    try:
        return reporter_hash(secret, box.open(sealed))
    except InvalidToken:
        # Sealed under another key (a restore without its keys): left unhashed, not fatal.
        log.warning("a reporter's phone could not be opened with this deployment's key")
        return None
