"""Who is calling: staff sessions (browser) and Bearer tokens (API).

Sessions live on the server (`staff_sessions`): the cookie carries a random token, so logout, a
password change or disabling an account ends them at once, and idle and absolute timeouts are
enforced here rather than trusted to the browser.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from functools import wraps

from flask import Request, Response, abort, current_app, g, redirect, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.errors import Forbidden, TooManyAttempts, Unauthorized
from supervise.extensions import csrf, db, login_manager
from supervise.i18n import N_
from supervise.staff import audit
from supervise.staff.models import Role, StaffSession, User
from supervise.staff.services import revoke_tokens, user_for_token
from supervise.staff.twofactor import services as twofactor
from supervise.throttle import Budget

_TOUCH_EVERY = timedelta(seconds=60)
_DUMMY_HASHES: dict[str, str] = {}
LOGIN_FAILURES_BY_IP = Budget("login-ip", "LOGIN_FAILURE_LIMIT_IP")
LOGIN_FAILURES_BY_USER = Budget("login-user", "LOGIN_FAILURE_LIMIT_USER")
DEVICE_COOKIE = "supervise_device"
DEVICE_DAYS = 180
DEVICE_NAMES_KEPT = 5


@login_manager.user_loader
def load_user_from_session(token: str) -> User | None:
    # The person and their org in the same round trip: every page asks for both (Actor.staff).
    row = db.session.scalar(
        select(StaffSession)
        .where(StaffSession.token == token)
        .options(
            joinedload(StaffSession.user).joinedload(User.org),
            # Whether 2FA is on, asked by every page of a person whose role requires it.
            joinedload(StaffSession.user).joinedload(User.two_factor),
        )
    )
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    idle = timedelta(minutes=current_app.config["STAFF_IDLE_MINUTES"])
    absolute = timedelta(hours=current_app.config["STAFF_SESSION_HOURS"])
    if now - row.last_seen_at > idle or now - row.created_at > absolute or not row.user.active:
        row.revoked_at = now
        db.session.commit()
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    user = row.user
    user.session_token = token
    g.auth_via = "session"
    return user


@login_manager.request_loader
def load_user_from_bearer(req: Request) -> User | None:
    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    user = user_for_token(db.session, token.strip())
    if user is not None:
        if db.session.dirty:
            db.session.commit()  # last_used_at
        g.auth_via = "bearer"
    return user


@login_manager.unauthorized_handler
def _unauthorized():
    if request.path.startswith("/api/"):
        raise Unauthorized(N_("需要登录或有效的 API 令牌"), {"auth": ["Authorization: Bearer <token>"]})
    return redirect(url_for("staff.login", next=request.path))


def _dummy_hash() -> str:
    """Checked when the username is unknown, hashed the way real accounts are (scrypt in
    production), so a wrong name costs exactly what a wrong password costs."""
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash(secrets.token_hex(16), method)
    return _DUMMY_HASHES[method]


def authenticate(username: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.username == username))
    ok = check_password_hash(user.password_hash if user else _dummy_hash(), password)
    return user if ok and user is not None and user.active else None


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="known-device")


def _device_names() -> list[str]:
    token = request.cookies.get(DEVICE_COOKIE)
    if not token:
        return []
    try:
        names = _device_serializer().loads(token, max_age=DEVICE_DAYS * 86400)
    except BadData:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def known_device(username: str) -> bool:
    """This browser signed in as `username` before (a signed cookie), or this address did (a past
    session's IP): its owner is not locked out by someone else's wrong guesses."""
    name = username.strip().lower()
    if name in _device_names():
        return True
    past = (
        select(StaffSession.id)
        .join(User, User.id == StaffSession.user_id)
        .where(func.lower(User.username) == name, StaffSession.ip == request.remote_addr)
        .limit(1)
    )
    return db.session.scalar(past) is not None


def remember_device(response: Response, username: str) -> None:
    names = [username.lower()] + [n for n in _device_names() if n != username.lower()]
    response.set_cookie(
        DEVICE_COOKIE,
        _device_serializer().dumps(names[:DEVICE_NAMES_KEPT]),
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )


def attempt_login(username: str, password: str) -> User | None:
    """Check a sign-in against both failure budgets, counted before the password is judged.

    Per address: a hard limit. Per account: a limit that locks out guessers but not the account's
    own browser or office (`known_device`), so five wrong guesses from elsewhere do not keep the
    right password out. Raises TooManyAttempts; returns the user, or None for a wrong password.
    """
    ip, name = get_remote_address(), username.strip().lower()[:64]
    if not LOGIN_FAILURES_BY_IP.reserve(ip):
        raise TooManyAttempts(N_("登录失败次数过多，请稍后再试"))
    familiar = known_device(name)
    if not familiar and not LOGIN_FAILURES_BY_USER.reserve(name):
        LOGIN_FAILURES_BY_IP.refund(ip)  # not judged: not a failure from this address
        raise TooManyAttempts(N_("该账号登录失败次数过多，请稍后再试，或在常用的电脑上登录"))
    user = authenticate(username, password)
    if user is not None:
        LOGIN_FAILURES_BY_IP.refund(ip)
        if not familiar:
            LOGIN_FAILURES_BY_USER.refund(name)
    return user


# -- the second step (two-factor sign-in, supervise/staff/twofactor) ------------------------------------
#
# Between a right password and a right code nobody is signed in: no StaffSession exists. The Flask
# session (a signed cookie) holds who passed the password and when, for SECOND_STEP_SECONDS.

SECOND_STEP_KEY = "second_step"
SECOND_STEP_SECONDS = 300


def hold_second_step(user: User, next_url: str | None) -> None:
    """The password was right and `user` has 2FA on: remember them for the code page."""
    session[SECOND_STEP_KEY] = {"user": user.id, "at": int(time.time()), "next": next_url or ""}


def pending_second_step() -> tuple[User, str] | None:
    """(the user, where to go after) while a second step is pending and fresh; else None."""
    held = session.get(SECOND_STEP_KEY)
    if (
        not isinstance(held, dict)
        or not isinstance(held.get("user"), int)
        or time.time() - held.get("at", 0) > SECOND_STEP_SECONDS
    ):
        session.pop(SECOND_STEP_KEY, None)
        return None
    user = db.session.get(User, held["user"])
    if user is None or not user.active or not twofactor.is_enabled(user):
        return None
    return user, held.get("next", "")


def attempt_code(user: User, code: str) -> str | None:
    """Judge a second-step code against the same budgets as a password, counted first.

    Both always apply here, the familiar-device exemption too: whoever reaches this step knows the
    password, and six digits must not be guessable at the per-address rate alone. A right code
    refunds both. Raises TooManyAttempts; returns "totp" or "recovery", or None for a wrong code.
    """
    ip, name = get_remote_address(), user.username.lower()
    if not LOGIN_FAILURES_BY_IP.reserve(ip):
        raise TooManyAttempts(N_("登录失败次数过多，请稍后再试"))
    if not LOGIN_FAILURES_BY_USER.reserve(name):
        LOGIN_FAILURES_BY_IP.refund(ip)
        raise TooManyAttempts(N_("该账号验证失败次数过多，请稍后再试"))
    how = twofactor.verify(user, code)
    if how is not None:
        LOGIN_FAILURES_BY_IP.refund(ip)
        LOGIN_FAILURES_BY_USER.refund(name)
    return how


def sign_in(user: User) -> None:
    """Start a new server-side session; the old cookie's session (if any) is revoked."""
    old = session.get("_user_id")
    if old:
        _revoke(StaffSession.token == old)
    session.clear()  # a fresh session id at login: nothing from before survives
    token = secrets.token_urlsafe(32)
    db.session.add(StaffSession(token=token, user=user, ip=request.remote_addr))
    audit.record("login", user=user)
    db.session.commit()
    user.session_token = token
    login_user(user)


def sign_out() -> None:
    if current_user.is_authenticated:
        _revoke(StaffSession.token == session.get("_user_id"))
        audit.record("logout", user=current_user)
        db.session.commit()
    logout_user()
    session.clear()


def end_sessions(user: User, keep_current: bool = False) -> None:
    """End every session and API token of `user` on the server (a password change or reset, a
    disabled account): whoever learnt the old password cannot keep a door it opened."""
    condition = StaffSession.user_id == user.id
    if keep_current and session.get("_user_id"):
        condition = condition & (StaffSession.token != session["_user_id"])
    _revoke(condition)
    revoke_tokens(db.session, user)


def _revoke(condition) -> None:
    db.session.execute(
        update(StaffSession).where(condition, StaffSession.revoked_at.is_(None)).values(revoked_at=utcnow())
    )


def current_actor() -> Actor:
    """The signed-in staff member as a workflow actor, or 401.

    A browser session calling the API with an unsafe method must carry the CSRF token (header
    X-CSRFToken); Bearer-token calls are not exposed to CSRF.
    """
    if not current_user.is_authenticated:
        raise Unauthorized(N_("需要登录或有效的 API 令牌"), {"auth": ["Authorization: Bearer <token>"]})
    if g.get("auth_via") == "session" and request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if g.get("auth_via") == "session" and twofactor.must_enrol(current_user):
        # As on the pages (staff_required); Bearer tokens are their own credential, issued by an admin.
        raise Forbidden(N_("请先开启两步验证"))
    return Actor.staff(current_user)


def is_system_admin(user: User) -> bool:
    """An admin of the top of the tree: system-wide sections (calendar, settings, jobs, report
    rebuilds) are theirs alone."""
    return user.has_role(Role.ADMIN) and user.org.parent_id is None


# The pages a person whose role requires 2FA may open before setting it up.
ENROLMENT_ENDPOINTS = frozenset(
    {"staff.password", "staff.two_factor", "staff.two_factor_start", "staff.two_factor_confirm"}
)


def staff_required(*roles: str):
    """For staff pages: sign-in required; with `roles`, only those roles (others: 403, audited)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("staff.login", next=request.path))
            if current_user.password_must_change and request.endpoint != "staff.password":
                return redirect(url_for("staff.password"))
            if request.endpoint not in ENROLMENT_ENDPOINTS and twofactor.must_enrol(current_user):
                return redirect(url_for("staff.two_factor"))
            if roles and not current_user.has_role(*roles):
                audit.record("access_denied", user=current_user, detail={"path": request.path})
                db.session.commit()
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator
