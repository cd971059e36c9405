"""The one job wrapper: an app context around each job, the session removed afterwards."""

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
        from supervise.extensions import db

        with job_app().app_context():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper
