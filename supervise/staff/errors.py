"""Error pages under /staff in the staff layout (header, navigation, language switch), not the
citizen one: a colleague who follows a stale link or lacks a role stays on the desk.

The JSON API and the citizen pages keep their answers (api/base.py); only the template differs,
and only for 403 and 404, the two a person meets on the desk. NotFound and Forbidden handlers are
more specific than the app's DomainError handler, so they run first; for other paths they answer
exactly as it does.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from werkzeug.exceptions import HTTPException

from supervise.errors import DomainError, Forbidden, NotFound


def _on_the_desk() -> bool:
    return request.path == "/staff" or request.path.startswith("/staff/")


def _staff_page(status: int, message: str):
    return render_template("staff/error.html", status=status, message=message), status


def register(bp: Blueprint) -> None:
    @bp.app_errorhandler(NotFound)
    @bp.app_errorhandler(Forbidden)
    def _domain(exc: DomainError):
        from supervise.api.base import _audit_refusal, error_response
        from supervise.extensions import db

        db.session.rollback()  # as the app's DomainError handler: nothing half-done rides along
        if isinstance(exc, Forbidden):
            _audit_refusal(exc)
        if _on_the_desk():
            return _staff_page(exc.status, exc.message)
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @bp.app_errorhandler(404)
    @bp.app_errorhandler(403)
    def _http(exc: HTTPException):
        from supervise.api.base import HTTP_MESSAGES
        from supervise.extensions import api

        if _on_the_desk():
            return _staff_page(exc.code, HTTP_MESSAGES.get(exc.code, exc.name))
        return api.handle_http_exception(exc)
