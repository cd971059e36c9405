"""Abuse limits for the citizen side (Flask-Limiter, counted in Redis).

Submissions and lookups are limited per IP. Failed lookups (a wrong access code or an unknown
tracking number: the same 404 either way) are limited per IP and per tracking number, shared by the
web page and the API, so alternating between them gains an attacker nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, request

from supervise.extensions import limiter


def _setting(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name]


def tracking_no_key() -> str:
    source = request.form or request.get_json(silent=True) or {}
    value = source.get("tracking_no", "") if hasattr(source, "get") else ""  # a JSON list has no keys
    return "tracking:" + str(value).strip().upper()[:20]


def _failed(response: Response) -> bool:
    return response.status_code == 404


limit_submissions = limiter.shared_limit(_setting("SUBMIT_RATE_LIMIT"), scope="submit", methods=["POST"])
_lookups = limiter.shared_limit(_setting("TRACK_RATE_LIMIT"), scope="track")
_failures_by_ip = limiter.shared_limit(
    _setting("TRACK_FAILURE_LIMIT"), scope="track-fail-ip", deduct_when=_failed
)
_failures_by_case = limiter.shared_limit(
    _setting("TRACK_FAILURE_LIMIT"), scope="track-fail-case", key_func=tracking_no_key, deduct_when=_failed
)


def limit_lookups(view):
    """All three lookup limits on one view."""
    return _lookups(_failures_by_ip(_failures_by_case(view)))
