"""A generated file sent as a download: the weekly report, statistics, the assessment."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, make_response


def ascii_part(text: str) -> str:
    """`text` made safe for the ASCII fallback filename (anything else becomes `_`)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in text)


def attachment(body: bytes, name: str, fallback: str, mimetype: str) -> Response:
    """`body` as an attachment named `name` (RFC 6266 filename*, UTF-8) with an ASCII `fallback`;
    never cached on the way: these files carry names of units and handlers."""
    response = make_response(body)
    response.headers["Content-Type"] = mimetype
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
