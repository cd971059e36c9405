"""Languages: Chinese first (zh-CN), English on request, remembered in a cookie.

Templates are written in Chinese; the `en` catalog translates them. The choice is the citizen's
(a link on every page), not the browser's Accept-Language: a county's forms speak Chinese.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, request


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown (`_()` in templates).

    Validation and service messages are built at import time, before any request has a language.
    """
    return message


def translated(message: object) -> str:
    """`{{ value|t }}`: a message held in a variable, in the reader's language, as plain text.

    Jinja's `_()` is for literals: it marks its result safe and %-formats it, so a message that
    carries data (a name, a typed value, "100%") must not go through it.
    """
    from flask_babel import gettext

    text = str(message)
    return gettext(text) if text else text


LANGUAGES = {"zh": "中文", "en": "English"}
COOKIE = "lang"

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    choice = request.args.get("lang") or request.cookies.get(COOKIE)
    return choice if choice in LANGUAGES else "zh"


@bp.get("/lang/<code>")
def switch(code: str):
    target = request.args.get("next", "/")
    parts = urlsplit(target)
    unsafe = any(ord(ch) < 32 or ch == "\\" for ch in target)  # header splitting; "/\\x" is //x to browsers
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or unsafe:
        target = "/"  # only our own pages: no open redirect
    response = redirect(target)
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response
