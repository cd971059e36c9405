"""Abuse limits for the citizen side, counted in Redis.

Submissions are limited per IP in two buckets, so an app hammering the API cannot lock out a
village office's form and the other way round: the API's (SUBMIT_RATE_LIMIT, then 429) and the
web forms' (the QR form and /report). A whole township can sit behind one address (a service
hall's Wi-Fi, a carrier NAT), so above the forms' limit a submission is not refused: it must
answer a simple question rendered in the form (no JavaScript, no third party), and only the
forms' ceiling (FORM_SUBMIT_CEILING) answers 429. Known addresses (SUBMIT_ALLOWLIST, CIDRs) get
their own limit in both buckets. The limits come from the settings table over the config
(系统管理 → 期限设置 → 限流设置), kept per process: see `current_limits`.

Lookups are limited per IP (Flask-Limiter). Failed lookups (a wrong access code or
an unknown tracking number: the same 404 either way) spend failure budgets (supervise/throttle.py),
shared by the web page and the API: per IP, a hard limit counted before the code is judged; per
tracking number, a limit that never locks the owner out — the right code always opens, only wrong
ones are refused once the number's budget is spent (so guessing someone's number cannot lock them
out of their own case).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import current_app, g, make_response, request
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from redis.exceptions import RedisError

from supervise import refdata
from supervise.errors import NotFound, TooManyAttempts
from supervise.extensions import limiter
from supervise.i18n import N_
from supervise.queueing import redis_connection
from supervise.settings import LIMIT_SETTINGS, text_settings
from supervise.throttle import Budget, count_windows

log = logging.getLogger(__name__)


def _setting(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name]


def tracking_no_key() -> str:
    source = request.form or request.get_json(silent=True) or {}
    value = source.get("tracking_no", "") if hasattr(source, "get") else ""  # a JSON list has no keys
    return "tracking:" + str(value).strip().upper()[:20]


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


# -- submissions -------------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SubmitLimits:
    api: tuple[RateLimitItem, ...]
    form: tuple[RateLimitItem, ...]
    form_ceiling: tuple[RateLimitItem, ...]
    allowlist: tuple[tuple[Network, tuple[RateLimitItem, ...]], ...]

    def for_address(self, ip: str) -> tuple[tuple[RateLimitItem, ...], tuple[RateLimitItem, ...]]:
        """(the API's limit, the forms' limit) for `ip`: the first allowlist entry holding it wins."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return self.api, self.form
        for network, items in self.allowlist:
            if address.version == network.version and address in network:
                return items, items
        return self.api, self.form


def parse_limit(text: str) -> tuple[RateLimitItem, ...]:
    """ "20/hour;60/day" → its windows; ValueError when it is not Flask-Limiter's syntax."""
    items = tuple(parse_many(text.strip())) if text.strip() else ()
    if not items:
        raise ValueError(text)
    return items


def parse_allowlist(text: str) -> tuple[tuple[Network, tuple[RateLimitItem, ...]], ...]:
    """ "10.20.0.0/16=200/hour;1000/day 192.0.2.7=100/hour" (entries separated by spaces or
    lines) → (network, windows) pairs; ValueError naming the entry that is not one."""
    entries = []
    for entry in text.split():
        network, sep, limit = entry.partition("=")
        try:
            if not sep:
                raise ValueError(entry)
            entries.append((ipaddress.ip_network(network, strict=False), parse_limit(limit)))
        except ValueError:
            raise ValueError(entry) from None
    return tuple(entries)


def _parse(values: Mapping[str, str], fallback: Mapping[str, Any]) -> SubmitLimits:
    def one(key: str, parser):
        try:
            return parser(values[key])
        except ValueError:  # a stored value the admin page would refuse: the configured one
            log.warning("setting %s=%r is not a limit; using the configured one", key, values[key])
            return parser(str(fallback.get(key) or ""))

    return SubmitLimits(
        api=one("SUBMIT_RATE_LIMIT", parse_limit),
        form=one("FORM_SUBMIT_RATE_LIMIT", parse_limit),
        form_ceiling=one("FORM_SUBMIT_CEILING", parse_limit),
        allowlist=one("SUBMIT_ALLOWLIST", parse_allowlist),
    )


def current_limits() -> SubmitLimits:
    """The submission limits, parsed once per process and again when the settings change
    (supervise/refdata.py: the admin page's commit bumps the stamp every process reads)."""
    return refdata.cached(
        "submit_limits", lambda: _parse(text_settings(LIMIT_SETTINGS, current_app.config), current_app.config)
    )


TOO_MANY_SUBMISSIONS = N_("从您所在网络提交的反映过多，请稍后再试")


def _refuse(seconds: int) -> TooManyAttempts:
    g.retry_after = max(1, seconds)  # the Retry-After header, on the API's JSON answer too
    return TooManyAttempts(_(TOO_MANY_SUBMISSIONS), {"retry_after": g.retry_after})


def limit_api_submissions(view):
    """The API's bucket: a hard per-IP limit, then 429 with Retry-After."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        ip = get_remote_address()
        items, _form = current_limits().for_address(ip)
        try:
            wait = count_windows("submit-api", ip, items)
        except (RedisError, StorageError):  # as the other limits: Redis away must not refuse a complaint
            # No address in the line: a citizen's IP beside a submission's time could name them.
            log.warning("API submission not counted: Redis unavailable")
            wait = None
        if wait is not None:
            raise _refuse(wait)
        return view(*args, **kwargs)

    return wrapper


def limit_form_submissions(view):
    """The web forms' bucket (QR form and /report). A POST counts against the ceiling (429 above
    it) and the limit (above it the submission must answer the question: `challenge_errors`); a
    GET only looks, so the form already asks the question when the next one would need it."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        ip = get_remote_address()
        limits = current_limits()
        _api, items = limits.for_address(ip)
        g.submit_challenge = False
        try:
            if request.method == "POST":
                wait = count_windows("submit-form-ceiling", ip, limits.form_ceiling)
                if wait is not None:
                    raise _refuse(wait)
                g.submit_challenge = count_windows("submit-form", ip, items) is not None
            else:
                g.submit_challenge = count_windows("submit-form", ip, items, hit=False) is not None
        except (RedisError, StorageError):
            log.warning("form submission not counted: Redis unavailable")
        return view(*args, **kwargs)

    return wrapper


CHALLENGE_TTL_SECONDS = 3600
CHALLENGE_WRONG = N_("请正确回答验证问题")


def _challenge_key(nonce: str) -> str:
    return f"supervise:challenge:{nonce}"


def form_challenge() -> dict[str, str] | None:
    """A new question for the form when this address is over the forms' limit, else None. The
    answer stays in Redis under a random nonce (the form carries only the nonce)."""
    if not g.get("submit_challenge"):
        return None
    # A previous question not yet answered (a wrong answer keeps it): the page keeps showing it,
    # since citizen.js keeps the page it has and shows only the errors of the server's answer.
    nonce = request.form.get("challenge_nonce", "")[:64] if request.method == "POST" else ""
    try:
        stored = redis_connection().get(_challenge_key(nonce)) if nonce else None
        if stored is not None:
            a, b = stored.decode().split()
        else:
            a, b = str(2 + secrets.randbelow(8)), str(2 + secrets.randbelow(8))
            nonce = secrets.token_urlsafe(16)
            redis_connection().set(_challenge_key(nonce), f"{a} {b}", ex=CHALLENGE_TTL_SECONDS)
    except RedisError:
        return None
    return {"nonce": nonce, "question": _("%(a)s 加 %(b)s 等于几？", a=a, b=b)}


def challenge_errors(form: Mapping[str, str]) -> dict[str, list[str]]:
    """{"challenge": [why]} when this submission had to answer the question and did not. A right
    answer is good once (the nonce is deleted); a wrong one may be corrected, and every try
    counts against the forms' ceiling anyway."""
    if not g.get("submit_challenge"):
        return {}
    nonce = form.get("challenge_nonce", "")[:64]
    # A Chinese keyboard may type full-width digits: "１２" is 12.
    answer = unicodedata.normalize("NFKC", form.get("challenge", "")).strip()
    try:
        connection = redis_connection()
        stored = connection.get(_challenge_key(nonce)) if nonce else None
        right = stored is not None and answer == str(sum(int(n) for n in stored.split()))
        if right and connection.delete(_challenge_key(nonce)) == 1:  # once, even when raced
            return {}
    except RedisError:
        return {}  # the counters are off too
    return {"challenge": [_(CHALLENGE_WRONG)]}
