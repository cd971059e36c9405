"""Liveness, readiness and Prometheus metrics for load balancers, orchestrators and monitoring.

- `/healthz`: the process answers (no dependency is touched).
- `/readyz`: the database and Redis answer and the database schema is at the code's migration
  head; 503 naming what is not, so traffic goes elsewhere until `supervise init` has run.
- `/metrics`: Prometheus text (supervise/metrics.py). Not public: with `METRICS_TOKEN` set, only
  `Authorization: Bearer <token>`; without it, only from the loopback interface in development,
  and not at all (404) in production.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import text

from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.queueing import QUEUE_NAMES, redis_connection

bp = Blueprint("ops", __name__)

LOOPBACK = frozenset({"127.0.0.1", "::1"})


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        db.session.rollback()
        checks["database"] = f"error: {type(exc).__name__}"
    checks["migrations"] = _migrations_check() if checks["database"] == "ok" else "unknown: no database"
    try:
        redis_connection().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), (200 if ready else 503)


def _code_heads() -> tuple[frozenset[str], frozenset[str]]:
    """(the heads, every revision) of the migration scripts shipped with this code; read once."""
    cached = current_app.extensions.get("supervise.migration_heads")
    if cached is None:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", current_app.extensions["migrate"].directory)
        scripts = ScriptDirectory.from_config(config)
        cached = (
            frozenset(scripts.get_heads()),
            frozenset(rev.revision for rev in scripts.walk_revisions()),
        )
        current_app.extensions["supervise.migration_heads"] = cached
    return cached


def _migrations_check() -> str:
    heads, known = _code_heads()
    try:
        current = frozenset(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    except Exception as exc:
        db.session.rollback()
        return f"error: {type(exc).__name__} (run `supervise init`)"
    if current == heads:
        return "ok"
    db_text = ",".join(sorted(current)) or "none"
    code_text = ",".join(sorted(heads))
    if current <= known:
        return f"behind: db {db_text}, code {code_text}"
    # A revision this code does not know: the database was migrated by newer code.
    return f"ahead: db {db_text}, code {code_text}"


@bp.get("/metrics")
def metrics():
    refused = _metrics_refusal()
    if refused is not None:
        return refused
    from supervise import metrics as prom

    collector = prom.DomainCollector(db.session, redis_connection, QUEUE_NAMES, utcnow())
    response = Response(prom.exposition(collector), content_type=prom.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


def _metrics_refusal() -> Response | None:
    """None when this request may read the metrics; else the answer to give instead."""
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return None
        response = jsonify(error={"code": "unauthorized", "message": "metrics need a bearer token"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if current_app.config["SUPERVISE_ENV"] != "production" and request.remote_addr in LOOPBACK:
        return None
    abort(404)  # no token: off in production, local only in development
