"""gunicorn entry point: `gunicorn -c gunicorn.conf.py supervise.wsgi:app`.

Behind a reverse proxy or load balancer, set how many proxies in front of the app append to each
`X-Forwarded-*` header, and the app takes the client's address, scheme, host, port and prefix from
them (werkzeug's ProxyFix): `PROXY_FIX_X_FOR` (the citizen's IP, which the per-IP rate limits and
the audit log use), `PROXY_FIX_X_PROTO` (https links and secure cookies), `PROXY_FIX_X_HOST`,
`PROXY_FIX_X_PORT`, `PROXY_FIX_X_PREFIX`. Each defaults to 0 (the header is ignored): trusting a
header that no proxy of yours sets lets anyone choose their own IP address.
"""

import gc
import os
from collections.abc import Mapping

from werkzeug.middleware.proxy_fix import ProxyFix

from supervise.app import create_app

PROXY_FIX_HEADERS = ("for", "proto", "host", "port", "prefix")


def proxy_fix_settings(environ: Mapping[str, str]) -> dict[str, int]:
    """ProxyFix's x_for, x_proto, … from PROXY_FIX_X_FOR, PROXY_FIX_X_PROTO, … (0 when unset)."""
    settings = {}
    for name in PROXY_FIX_HEADERS:
        raw = environ.get(f"PROXY_FIX_X_{name.upper()}", "").strip() or "0"
        if not raw.isdigit():
            raise ValueError(f"PROXY_FIX_X_{name.upper()} must be a number of proxies, not {raw!r}")
        settings[f"x_{name}"] = int(raw)
    return settings


def wrap_proxy_fix(wsgi_app, environ: Mapping[str, str]):
    """`wsgi_app` behind ProxyFix when any PROXY_FIX_X_* is set, else unchanged."""
    settings = proxy_fix_settings(environ)
    return ProxyFix(wsgi_app, **settings) if any(settings.values()) else wsgi_app


app = create_app()
app.wsgi_app = wrap_proxy_fix(app.wsgi_app, os.environ)
# What the app holds at start-up lives as long as the process: keep it out of the collector's
# full passes, which otherwise cost ~100 ms a request every few hundred (bench/README.md).
gc.collect()
gc.freeze()
