"""The API object and the one place errors become responses.

Under `/api/` every error is `{"error": {"code", "message", "details"}}`; elsewhere a friendly page.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import Response, jsonify, render_template, request
from marshmallow import Schema, ValidationError, fields
from werkzeug.exceptions import HTTPException

from supervise.errors import DomainError, Forbidden
from supervise.i18n import N_

HTTP_MESSAGES = {
    400: N_("请求格式不正确"),
    401: N_("需要登录"),
    403: N_("没有权限"),
    404: N_("找不到该内容"),
    405: N_("不支持该请求方法"),
    409: N_("操作冲突"),
    413: N_("提交的内容过大"),
    422: N_("提交的内容有误，请检查标出的字段"),
    429: N_("请求过于频繁，请稍后再试"),
    500: N_("服务器内部错误"),
    503: N_("系统繁忙，暂时无法访问，请稍后再试"),
}
# Seconds a client is told to wait when the database is away (503 Retry-After).
UNAVAILABLE_RETRY_AFTER = 30


def _flatten(messages: Any) -> dict[str, Any]:
    """webargs nests field errors by location ({"json": {...}}); callers want the fields."""
    if not isinstance(messages, dict):
        return {"_schema": messages}
    flat: dict[str, Any] = {}
    for key, value in messages.items():
        if key in ("json", "form", "query", "json_or_form", "files") and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(
    status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None
) -> tuple[Response | str, int, dict]:
    if wants_json():
        body = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
        return body, status, headers or {}
    # On the desk, the desk's layout (header, navigation, language): a colleague who follows a stale
    # link or lacks a role stays on the desk.
    on_the_desk = request.path == "/staff" or request.path.startswith("/staff/")
    template = "staff/error.html" if on_the_desk else "error.html"
    return (
        render_template(template, status=status, message=message, details=details or {}),
        status,
        headers or {},
    )


class ErrorBodySchema(Schema):
    code = fields.String(
        required=True,
        metadata={"description": "machine-readable: invalid_input, not_found, stale_version, …"},
    )
    message = fields.String(required=True, metadata={"description": "for people (Chinese first)"})
    details = fields.Dict(
        keys=fields.String(),
        required=True,
        metadata={
            "description": "field name → list of messages for field errors (`_schema`, `_` for the "
            "whole body); `retry_after` (seconds) on some 429s; empty otherwise"
        },
    )


class ErrorSchema(Schema):
    """Every error under /api/ (`error_response` above): documentation only, never used to dump."""

    error = fields.Nested(ErrorBodySchema, required=True)


# The security requirements of the OpenAPI document (components.securitySchemes in Api below).
STAFF_SECURITY = [{"bearerAuth": []}, {"staffSession": []}]
PUBLIC_SECURITY: list[dict] = []

# What each error status means on this API; an operation may say it more precisely.
ERROR_DESCRIPTIONS = {
    400: "malformed request: the body is not JSON (or not a JSON object), holds NUL bytes or lone "
    "surrogates, or nests too deep",
    401: "no valid API token (`Authorization: Bearer …`) and no staff session",
    403: "your role may not do this",
    404: "not found (also what a case outside your scope looks like)",
    409: "conflict",
    413: "the request is larger than the server accepts",
    415: "the body's Content-Type is none of those documented",
    422: "field errors: `details` maps each field to its messages",
    429: "too many requests or too many failed attempts: try again later",
    503: "the server is busy: try again in a moment",
}


def documented(blp: flask_smorest.Blueprint, *statuses: int, security: list[dict], **descriptions: str):
    """Document an operation's security requirement and the error statuses it really answers,
    each with the real error body (ErrorSchema). `descriptions` (e.g. `e409="…"`) refine the
    general wording of ERROR_DESCRIPTIONS."""

    def decorator(func):
        for status in statuses:
            description = descriptions.get(f"e{status}", ERROR_DESCRIPTIONS[status])
            func = blp.alt_response(status, schema=ErrorSchema, description=description)(func)
        return blp.doc(security=security)(func)

    return decorator


class Api(flask_smorest.Api):
    # The documented error body is the one error_response writes, and every operation lists its
    # error statuses itself (see `documented`): no catch-all "default" response hiding them.
    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def init_app(self, app, *, spec_kwargs=None):
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.spec.components.security_scheme(
            "bearerAuth",
            {
                "type": "http",
                "scheme": "bearer",
                "description": "A staff member's API token, issued by `supervise user token <username>` "
                "(listed by `supervise user tokens`, ended by `supervise user revoke`, by expiry or by "
                "a password change).",
            },
        )
        self.spec.components.security_scheme(
            "staffSession",
            {
                "type": "apiKey",
                "in": "cookie",
                "name": app.config.get("SESSION_COOKIE_NAME", "session"),
                "description": "The staff web UI's session cookie (sign in at /staff/login). A POST made "
                "with it must also carry the page's CSRF token in the `X-CSRFToken` header.",
            },
        )

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        details = _flatten(data.get("messages") or data.get("errors") or {})
        code = error.name.lower().replace(" ", "_")
        if error.code == 400 and details:
            code = "malformed_request"
        message = data.get("message") or HTTP_MESSAGES.get(error.code, error.description or error.name)
        return error_response(error.code or 500, code, message, details, data.get("headers"))


def _audit_refusal(exc: DomainError) -> None:
    from flask_login import current_user

    from supervise.extensions import db
    from supervise.staff import audit

    if current_user.is_authenticated:
        audit.record(
            "access_denied", user=current_user, detail={"path": request.path, "message": exc.message}
        )
        db.session.commit()


def register_error_handlers(app) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        from supervise.extensions import db

        db.session.rollback()  # whatever the failed service added must not ride on a later commit
        if isinstance(exc, Forbidden):
            _audit_refusal(exc)
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        return error_response(422, "invalid_input", HTTP_MESSAGES[422], _flatten(exc.messages))

    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DisconnectionError)
    @app.errorhandler(PoolTimeout)
    def _database_unavailable(exc: Exception):
        """The database is away (down, restarting, unreachable, pool exhausted): 503 with when to
        retry, never 500. Nothing was committed: the transaction that failed is rolled back."""
        _database_unavailable_cleanup()
        app.logger.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
        retry = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER)}
        return error_response(503, "unavailable", HTTP_MESSAGES[503], None, retry)


def _database_unavailable_cleanup() -> None:
    from flask import g

    from supervise.extensions import db, login_manager

    try:
        db.session.rollback()
    except Exception:  # the connection is gone: the session is reset either way
        db.session.close()
    # The error page's layout must not ask the database again (who is signed in, unread counts):
    # it is drawn as for a visitor.
    g._login_user = login_manager.anonymous_user()
