"""Static files and page weight: content-hashed URLs, caching by URL kind, compression.

- Every ``url_for('static', filename=...)`` gets ``?v=<content hash>`` (a ``url_defaults`` hook), so
  templates need no change and a deploy that changes a file changes its URL.
- A static response asked for by its current hash is cached for a year as ``immutable``; any other
  static URL (no hash, or a page from before a deploy asking for an old one) for five minutes.
- Static text files are compressed once per content hash at the best levels (brotli 11, gzip 9) and
  kept in memory; dynamic pages go through Flask-Compress, except those that must not be compressed
  (see ``_compressible_page``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from functools import lru_cache
from typing import Any

import brotli
from flask import Flask, Response, abort, request
from flask_compress import Compress
from werkzeug.security import safe_join

VERSION_ARG = "v"
IMMUTABLE = "public, max-age=31536000, immutable"
# Short: a URL without the hash is only used by something that outlived a deploy or by hand; five
# minutes bounds how long a changed file may look stale, the ETag makes the refetch a 304.
SHORT = "public, max-age=300"
COMPRESSIBLE_STATIC = {"text/css", "text/javascript", "application/javascript", "application/json",
                       "image/svg+xml", "text/plain"}  # fmt: skip
# The ECharts build recipe lives beside the file it builds; it is not for browsers, and a local
# `npm ci` there puts node_modules under static/.
PRIVATE_STATIC_PREFIXES = ("vendor/echarts/build/",)

compress = Compress()


def install(app: Flask) -> None:
    """Wire fingerprints, caching and compression. Call before ``security.install``: after_request
    hooks run in reverse order, and compression must see the final Cache-Control header."""
    # Registered by hand (below) so static files and private pages can be left out.
    app.config.setdefault("COMPRESS_REGISTER", False)
    compress.init_app(app)
    static_folder = app.static_folder
    assert static_folder is not None

    @app.url_defaults
    def _fingerprint(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and VERSION_ARG not in values and "filename" in values:
            digest = file_digest(static_folder, values["filename"])
            if digest:
                values[VERSION_ARG] = digest

    @app.before_request
    def _private_static() -> None:
        if request.endpoint == "static" and (request.view_args or {}).get("filename", "").startswith(
            PRIVATE_STATIC_PREFIXES
        ):
            abort(404)

    @app.after_request
    def _weight(response: Response) -> Response:
        if request.endpoint == "static":
            return _static_response(static_folder, response)
        if _compressible_page(response):
            return compress.after_request(response)
        return response


def file_digest(static_folder: str, filename: str) -> str | None:
    """The first 12 hex digits of the file's SHA-256, or None when there is no such file."""
    path = safe_join(static_folder, filename)
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    # Keyed by mtime and size too, so an edited file (development) gets a new hash at once.
    return _digest(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _digest(path: str, _mtime_ns: int, _size: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:12]


def _static_response(static_folder: str, response: Response) -> Response:
    filename = (request.view_args or {}).get("filename", "")
    digest = file_digest(static_folder, filename)
    if response.status_code in (200, 304):
        current = digest is not None and request.args.get(VERSION_ARG) == digest
        response.headers["Cache-Control"] = IMMUTABLE if current else SHORT
    if response.mimetype not in COMPRESSIBLE_STATIC:
        return response
    response.vary.add("Accept-Encoding")
    # Ranges (206) and 304s pass as they are; a file changed on disk mid-request is not compressed.
    if response.status_code != 200 or digest is None or "Content-Encoding" in response.headers:
        return response
    encoding = _static_encoding()
    if encoding is None:
        return response
    path = safe_join(static_folder, filename)
    assert path is not None
    body = _compressed_file(path, digest, encoding)
    response.direct_passthrough = False
    response.set_data(body)
    response.headers["Content-Encoding"] = encoding
    etag, weak = response.get_etag()
    if etag:
        # A different body needs a different validator; then answer If-None-Match for this one.
        response.set_etag(f"{etag}:{encoding}", weak=weak)
        response.make_conditional(request)
    return response


def _static_encoding() -> str | None:
    accepted = request.accept_encodings
    for encoding in ("br", "gzip"):
        if accepted[encoding] > 0:  # q=0 means "not this one"
            return encoding
    return None


@lru_cache(maxsize=64)
def _compressed_file(path: str, _digest: str, encoding: str) -> bytes:
    # The best (slowest) levels: each version of a file is compressed once per process (ECharts:
    # under a second with brotli 11) and then served from memory.
    with open(path, "rb") as handle:
        data = handle.read()
    return brotli.compress(data, quality=11) if encoding == "br" else gzip.compress(data, 9, mtime=0)


def _compressible_page(response: Response) -> bool:
    """Pages marked no-store (security.py: the staff desk, the API, tracking, the report form) carry
    a secret, a CSRF token, an access code or a reporter's identity, next to text the requester
    chose (a search, a form's content). Compressed, their length would tell a network observer who
    can make the browser send such requests whether a guess matches the secret (BREACH), so they
    stay uncompressed; they are a few KB of HTML or JSON. Everything else is compressed."""
    return "no-store" not in response.headers.get("Cache-Control", "")
