"""Reference data kept per process: the org tree with its staffing, the categories, the QR points,
the settings and the working calendar.

They change when an admin edits them, a few times a month, and are read by every submission and
every staff action; reading them from the database each time cost a citizen's submission seven of
its twelve statements. Each process keeps a copy (per app, in `app.extensions`) and reloads it when
the version stamp in Redis moves: one GET per request, read once and shared by every cached value.

Any commit that writes one of the watched tables bumps the stamp (`install_session_hooks`: ORM
objects and ORM-level INSERT/UPDATE/DELETE statements on those tables are seen), so every process
sees the change at its next request. The bump happens after the commit, so a process that reads the
new stamp reads the new rows. A change made outside this app's sessions (psql, a migration) is
seen within STALE_AFTER_SECONDS, as is any change while Redis is away (the stamp cannot be read or
bumped then; the copy simply expires sooner).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, has_request_context, request
from redis.exceptions import RedisError
from sqlalchemy import Delete, Insert, Update, event
from sqlalchemy.orm import Session

from supervise.extensions import db
from supervise.queueing import redis_connection

log = logging.getLogger(__name__)

VERSION_KEY = "supervise:refdata-version"
STALE_AFTER_SECONDS = 300.0  # a backstop for changes that bumped nothing
STALE_WITHOUT_REDIS_SECONDS = 30.0
REDIS_RETRY_SECONDS = 5.0
WATCHED_TABLES = frozenset(
    {"orgs", "users", "user_roles", "categories", "points", "settings", "calendar_days", "calendar_years"}
    # Which point an old QR sticker names (a reissued code): written with `points`, or alone by an import.
    | {"retired_point_tokens"}
)
_EXTENSION = "supervise.refdata"
_CHANGED = "supervise.refdata_changed"
_STAMP = "supervise.refdata_stamp"
_UNREAD = object()

T = TypeVar("T")


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: Any = _UNREAD
        self.loaded_at = 0.0
        self.values: dict[str, Any] = {}
        self.redis_retry_at = 0.0  # monotonic time before which Redis is not asked for the stamp

    def clear(self) -> None:
        with self.lock:
            self.values.clear()
            self.version = _UNREAD


def _cache() -> _Cache:
    cache = current_app.extensions.get(_EXTENSION)
    if cache is None:
        cache = current_app.extensions.setdefault(_EXTENSION, _Cache())
    return cache


def _read_stamp() -> tuple[bool, Any]:
    """(True, stamp) — the stamp may be None before the first bump — or (False, None) without Redis.

    After a failure Redis is not asked again for REDIS_RETRY_SECONDS: an unreachable host costs a
    connect timeout, and every request of the process would pay it."""
    cache = _cache()
    if time.monotonic() < cache.redis_retry_at:
        return False, None
    try:
        return True, redis_connection().get(VERSION_KEY)
    except RedisError:
        cache.redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        return False, None


def _stamp() -> tuple[bool, Any]:
    # Once per request (kept in the WSGI environ, which is the request's own: `g` outlives it
    # where an app context is shared): a submission reads five cached values in one round trip.
    if has_request_context():
        environ = request.environ
        if _STAMP not in environ:
            environ[_STAMP] = _read_stamp()
        return environ[_STAMP]
    return _read_stamp()


def cached(name: str, load: Callable[[], T]) -> T:
    """The value `load()` gives, from this process's copy while the version stamp stands still.

    `load` must return plain data (never ORM objects: they belong to one session) that is not
    changed afterwards, since every thread of the process shares it. A transaction that has itself
    written reference data reads its own version, uncached (a calendar import recomputes the
    deadlines on the new calendar before it commits)."""
    if _writes_reference_data(db.session()):
        return load()
    cache = _cache()
    readable, version = _stamp()
    now = time.monotonic()
    ttl = STALE_AFTER_SECONDS if readable else STALE_WITHOUT_REDIS_SECONDS
    with cache.lock:
        if not readable:
            version = cache.version  # no news: keep the copy until it is too old
        if version != cache.version or now - cache.loaded_at > ttl:
            cache.values.clear()
            cache.version, cache.loaded_at = version, now
        if name in cache.values:
            return cache.values[name]
    value = load()
    with cache.lock:
        if cache.version == version:  # not cleared meanwhile by a change in this process
            cache.values[name] = value
    return value


def changed() -> None:
    """Forget this process's copy and bump the stamp so that the others forget theirs: called after a
    commit that wrote reference data (the session hooks do it; call it after raw SQL writes)."""
    _cache().clear()
    if has_request_context():
        request.environ.pop(_STAMP, None)
    try:
        redis_connection().incr(VERSION_KEY)
    except RedisError:
        log.warning("reference data changed; other processes see it within %d s", STALE_WITHOUT_REDIS_SECONDS)


def _writes_reference_data(session: Session) -> bool:
    """Whether this transaction wrote reference data, or is about to at its next flush."""
    if session.info.get(_CHANGED):
        return True
    return any(
        getattr(obj, "__tablename__", None) in WATCHED_TABLES
        for obj in (*session.new, *session.dirty, *session.deleted)
    )


def _mark_flushed(session: Session, flush_context) -> None:
    # Still the pre-flush lists here: what this flush wrote.
    if _writes_reference_data(session):
        session.info[_CHANGED] = True


def _mark_statement(state) -> None:
    statement = state.statement
    if isinstance(statement, Insert | Update | Delete) and statement.table.name in WATCHED_TABLES:
        state.session.info[_CHANGED] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        # Without an app context (a session used outside Flask) nothing is cached to forget.
        with contextlib.suppress(RuntimeError):
            changed()


def _forget(session: Session, *args) -> None:
    session.info.pop(_CHANGED, None)


def install_session_hooks(session_class: type[Session]) -> None:
    """Bump the stamp after each commit that wrote reference data. Once per process (class hooks)."""
    if getattr(session_class, "_supervise_refdata_hooks", False):
        return
    session_class._supervise_refdata_hooks = True
    event.listen(session_class, "after_flush", _mark_flushed)
    event.listen(session_class, "do_orm_execute", _mark_statement)
    event.listen(session_class, "after_commit", _after_commit)
    event.listen(session_class, "after_soft_rollback", _forget)
