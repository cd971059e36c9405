"""The one job wrapper: an app context around each job, the session removed afterwards, and the
log context (job id, the enqueuing request's id) set while it runs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask

P = ParamSpec("P")
R = TypeVar("R")

_app: Flask | None = None


def bind_app(app: Flask) -> None:
    """Use this app for jobs in this process (the worker command and tests call it)."""
    global _app
    _app = app


def job_app() -> Flask:
    global _app
    if _app is None:
        from supervise.app import create_app

        _app = create_app()
    return _app


def job(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from rq import get_current_job

        from supervise.extensions import db
        from supervise.logs import job_context

        # The log lines of the job carry its id and the id of the request that enqueued it.
        current = get_current_job()
        token = job_context.set(
            {"job_id": current.id, "request_id": (current.meta or {}).get("request_id")} if current else None
        )
        try:
            with job_app().app_context():
                try:
                    return func(*args, **kwargs)
                finally:
                    db.session.remove()
        finally:
            job_context.reset(token)

    return wrapper
