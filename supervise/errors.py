"""Domain errors: raised by services, turned into HTTP answers in one place.

On `/api/` every error is JSON `{"error": {"code", "message", "details"}}`; elsewhere a friendly
page. Messages are Chinese first: citizens read them.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(DomainError):
    """Field errors: `details` maps a field name to a list of messages."""

    status = 422
    code = "invalid_input"


class NotFound(DomainError):
    """Also what a case outside the caller's scope looks like: no hint that it exists."""

    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class StaleVersion(Conflict):
    code = "stale_version"


class TooManyAttempts(DomainError):
    """A failure budget is spent (wrong codes, wrong passwords): 429, with when to try again."""

    status = 429
    code = "too_many_requests"
