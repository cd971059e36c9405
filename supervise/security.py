"""Headers on every response."""

from __future__ import annotations

from flask import Flask, Response, request

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Pages that show a case to its citizen: never kept by a shared phone's browser or a proxy.
NO_STORE_PREFIXES = ("/track", "/api/v1/track", "/s/", "/report", "/files/")
# Staff pages and every API answer (a case, a revealed name and phone, a new access code, a token):
# always no-store, whatever the view set; a shared office computer's cache keeps none of them.
ALWAYS_NO_STORE_PREFIXES = ("/staff/", "/api/")
HSTS = "max-age=31536000; includeSubDomains"  # a year; the HSTS setting turns it on (production)


def install(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        always = request.path.startswith(ALWAYS_NO_STORE_PREFIXES) or request.path == "/staff"
        if always or (request.path.startswith(NO_STORE_PREFIXES) and "Cache-Control" not in h):
            h["Cache-Control"] = "no-store"
        if app.config.get("HSTS"):
            h.setdefault("Strict-Transport-Security", HSTS)
        return response
