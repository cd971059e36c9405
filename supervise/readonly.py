"""Reads that tolerate lag (reports and statistics) go to DATABASE_READ_URL, a read replica.

Unset, they use the primary's session exactly as before. Set, `reading()` lends a short-lived
session on the replica's engine: closed on exit, so no long snapshot holds back the replica's
replay. What is read there may be a moment behind the primary (a streaming replica's lag): only
figures that are already a week old or an estimate read through it; anything that decides a write
(version numbers, claims, permissions) stays on the primary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from supervise.extensions import db

EXTENSION = "supervise.read_engine"


def install(app: Flask) -> None:
    url = app.config.get("DATABASE_READ_URL")
    if not url:
        return
    # The primary's pool settings (pre_ping, recycle: config.py): a replica restarted or failed
    # over must not cost the next report page a 500 either.
    options = {"pool_pre_ping": True, **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})}
    engine = create_engine(url, **options)
    app.extensions[EXTENSION] = engine
    # A forked RQ work-horse must not share its parent's connections.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))


@contextmanager
def reading() -> Iterator[Session]:
    """A session for lag-tolerant reads: the replica's when DATABASE_READ_URL is set, else the
    primary's own `db.session` (left open: the caller's transaction goes on)."""
    engine = current_app.extensions.get(EXTENSION)
    if engine is None:
        yield db.session
        return
    with Session(engine) as session:
        yield session
