"""The API object and the one place errors become responses.

Under `/api/` every error is `{"error": {"code", "message", "details"}}`; elsewhere a friendly page.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import Response, jsonify, render_template, request
from marshmallow import ValidationError
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
}


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
    return (
        render_template("error.html", status=status, message=message, details=details or {}),
        status,
        headers or {},
    )


class Api(flask_smorest.Api):
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
