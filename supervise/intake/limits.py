"""Abuse limits for the citizen side, counted in Redis.

Submissions and lookups are limited per IP (Flask-Limiter). Failed lookups (a wrong access code or
an unknown tracking number: the same 404 either way) spend failure budgets (supervise/throttle.py),
shared by the web page and the API: per IP, a hard limit counted before the code is judged; per
tracking number, a limit that never locks the owner out — the right code always opens, only wrong
ones are refused once the number's budget is spent (so guessing someone's number cannot lock them
out of their own case).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import current_app, make_response, request
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address

from supervise.errors import NotFound, TooManyAttempts
from supervise.extensions import limiter
from supervise.i18n import N_
from supervise.throttle import Budget


def _setting(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name]


def tracking_no_key() -> str:
    source = request.form or request.get_json(silent=True) or {}
    value = source.get("tracking_no", "") if hasattr(source, "get") else ""  # a JSON list has no keys
    return "tracking:" + str(value).strip().upper()[:20]


limit_submissions = limiter.shared_limit(_setting("SUBMIT_RATE_LIMIT"), scope="submit", methods=["POST"])
_lookups = limiter.shared_limit(_setting("TRACK_RATE_LIMIT"), scope="track")
# The lookup rate alone, for pages that judge no access code (an SMS link's 256-bit token).
limit_lookup_rate = _lookups
FAILURES_BY_IP = Budget("track-ip", "TRACK_FAILURE_LIMIT")
FAILURES_BY_CASE = Budget("track-case", "TRACK_FAILURE_LIMIT")
TOO_MANY_FROM_HERE = N_("查询失败次数过多，请稍后再试")
TOO_MANY_FOR_NUMBER = N_("该查询编号的错误尝试过多；请核对查询码后再试")


def limit_lookups(view):
    """The lookup rate limit and both failure budgets on one view."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        ip, number = get_remote_address(), tracking_no_key()
        if not FAILURES_BY_IP.reserve(ip):
            raise TooManyAttempts(_(TOO_MANY_FROM_HERE), {"retry_after": FAILURES_BY_IP.retry_after()})
        number_ok = FAILURES_BY_CASE.reserve(number)
        try:
            response = make_response(view(*args, **kwargs))
        except NotFound:
            if not number_ok:
                raise TooManyAttempts(
                    _(TOO_MANY_FOR_NUMBER), {"retry_after": FAILURES_BY_CASE.retry_after()}
                ) from None
            raise
        if response.status_code != 404:
            FAILURES_BY_IP.refund(ip)
            FAILURES_BY_CASE.refund(number)
        elif not number_ok:
            raise TooManyAttempts(_(TOO_MANY_FOR_NUMBER), {"retry_after": FAILURES_BY_CASE.retry_after()})
        return response

    return _lookups(wrapper)
