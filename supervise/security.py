"""Headers on every response."""

from __future__ import annotations

from flask import Flask, Response, request

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Pages that show a case to its citizen: never kept by a shared phone's browser or a proxy.
NO_STORE_PREFIXES = ("/track", "/api/v1/track", "/s/", "/report", "/files/")


def install(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        if request.path.startswith(NO_STORE_PREFIXES) and "Cache-Control" not in h:
            h["Cache-Control"] = "no-store"
        return response
