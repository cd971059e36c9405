"""The application factory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, render_template

from supervise.config import load_config
from supervise.extensions import api, babel, csrf, db, limiter, login_manager, migrate
from supervise.logs import configure_logging

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=None,
    )
    app.config.from_mapping(load_config(overrides))
    Path(app.config["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    app.json.ensure_ascii = False
    configure_logging(app)  # JSON lines in production, text otherwise; request ids (logs.py)

    app.config.setdefault("RATELIMIT_STORAGE_URI", _limiter_storage(app.config["REDIS_URL"]))
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", _limiter_storage_options(app.config["REDIS_URL"]))

    from supervise import i18n, input_guard, metrics, security, static_assets

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    login_manager.init_app(app)
    csrf.init_app(app)
    # Flask-Limiter keeps one storage-options dict per Limiter and *updates* it at each init_app, so
    # a Sentinel app's options (db, use_replicas) would ride into the next app's plain Redis storage
    # and every limit would fail open. One app per process in production; many in the tests.
    limiter._storage_options.clear()
    limiter.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    # Before security: its no-store header decides what is compressed (hooks run in reverse).
    static_assets.install(app)  # content-hashed static URLs, their caching, gzip/brotli
    security.install(app)
    input_guard.install(app)  # NUL bytes, lone surrogates, absurd JSON nesting: 400, not 500
    metrics.install(app)  # request counts and latencies for /metrics
    _configure_engine(app)

    from supervise.api import ops, public, staff
    from supervise.api.base import register_error_handlers
    from supervise.cases.schemas import SubmitSchema
    from supervise.intake import files, views
    from supervise.registration import views as registration_views
    from supervise.reports import models as _report_models  # noqa: F401  (registers the tables)
    from supervise.reports import views as report_views
    from supervise.staff import admin as staff_admin
    from supervise.staff import views as staff_views
    from supervise.stats import views as stats_views

    api.init_app(app)
    api.spec.components.schema("Submit", schema=SubmitSchema)
    api.register_blueprint(public.blp)
    api.register_blueprint(staff.blp)
    for blueprint in (ops.bp, views.bp, files.bp, i18n.bp, staff_views.bp, staff_admin.bp, report_views.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(registration_views.bp)  # 登记来信来访 and the receipt slip (/staff/register)
    app.register_blueprint(stats_views.bp)  # 统计分析 (/staff/stats)
    from supervise.assessment import views as assessment_views

    app.register_blueprint(assessment_views.bp)  # 单位考核 (/staff/assessment)
    from supervise.accountability import views as accountability_views

    app.register_blueprint(accountability_views.bp)  # /public and the summaries staff publish on it
    from supervise import open311

    open311.init_app(app)  # /open311/v2 (GeoReport v2) and 系统管理 → Open311 接入
    # CSRF protects session-authenticated forms (the staff UI). The API authenticates by Bearer
    # token, and citizens have no session to abuse: their forms are guarded by rate limits and
    # the idempotency token instead, so a WeChat browser that drops cookies can still submit.
    for blueprint in (public.blp, staff.blp, views.bp):
        csrf.exempt(blueprint)
    register_error_handlers(app)
    _template_helpers(app)

    from supervise.staff import auth  # noqa: F401  (registers the Bearer token loader)

    @app.get("/")
    def index():
        return render_template("index.html")

    return app


def _template_helpers(app: Flask) -> None:
    from flask_babel import get_locale

    from supervise import i18n
    from supervise.cases.labels import (
        ACTION_LABELS,
        CHANNEL_LABELS,
        DISPOSAL_LABELS,
        KIND_LABELS,
        ORG_KIND_LABELS,
        REJECT_REASON_LABELS,
        STATUS_LABELS,
    )
    from supervise.deadlines.calendar import SHANGHAI, local_date

    app.jinja_env.globals.update(
        languages=i18n.LANGUAGES,
        status_labels=STATUS_LABELS,
        action_labels=ACTION_LABELS,
        channel_labels=CHANNEL_LABELS,
        kind_labels=KIND_LABELS,
        disposal_labels=DISPOSAL_LABELS,
        reject_reason_labels=REJECT_REASON_LABELS,
        org_kind_labels=ORG_KIND_LABELS,
        get_locale=get_locale,
    )
    app.jinja_env.filters["t"] = i18n.translated
    app.jinja_env.filters["local_date"] = lambda moment: local_date(moment).isoformat()
    app.jinja_env.filters["local_datetime"] = lambda moment: moment.astimezone(SHANGHAI).strftime(
        "%Y-%m-%d %H:%M"
    )


def _limiter_storage(redis_url: str) -> str:
    # limits spells a unix-socket Redis "redis+unix://".
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    if redis_url.startswith("redis+sentinel://"):
        # limits reads the whole path as the service name: the db number goes in the options.
        from supervise.queueing import parse_sentinel_url

        parts = parse_sentinel_url(redis_url)
        hosts = ",".join(f"{host}:{port}" for host, port in parts["sentinels"])
        return f"redis+sentinel://{hosts}/{parts['service']}"
    return redis_url


def _limiter_storage_options(redis_url: str) -> dict[str, Any]:
    from supervise.queueing import client_options, parse_sentinel_url

    if not redis_url.startswith("redis+sentinel://"):
        return client_options()
    parts = parse_sentinel_url(redis_url)
    # Counters on the master only: a lagging replica would let a burst through.
    options: dict[str, Any] = {**client_options(), "db": parts["db"], "use_replicas": False}
    if parts["password"]:
        options["password"] = parts["password"]
    return options


# psycopg converts a statement's %(name)s placeholders to PostgreSQL's $n once and caches the
# result, but only for statements of at most 50 parameters (and 4,096 characters). A submission's
# one statement (supervise/cases/inserts.py) has ~66: converted afresh every time it cost ~0.3 ms,
# 8 % of the request's CPU (issue 15). A bigger bound keeps it cached; the statements that repeat
# are the app's own, so the cache (psycopg's, 128 entries) stays small. tests/unit/test_refdata.py
# checks the submission's statement is served from the cache, so a psycopg that renames these
# fails a test rather than silently getting slower.
STATEMENT_CACHE_PARAMS = 200


def _cache_long_statements() -> None:
    from psycopg import _queries

    if getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", STATEMENT_CACHE_PARAMS) < STATEMENT_CACHE_PARAMS:
        _queries.MAX_CACHED_STATEMENT_PARAMS = STATEMENT_CACHE_PARAMS


def _configure_engine(app: Flask) -> None:
    """Per-backend connection settings; outbox enqueue and the reference-data stamp after each commit."""
    from sqlalchemy import event

    from supervise import refdata
    from supervise.notify.outbox import install_session_hooks
    from supervise.queueing import enqueue_outbox

    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=15000")
                cur.close()

        else:
            _cache_long_statements()
        # A forked RQ work-horse must not share its parent's connections.
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))

    install_session_hooks(db.session.session_factory.class_, enqueue_outbox)
    refdata.install_session_hooks(db.session.session_factory.class_)
    from supervise import readonly

    readonly.install(app)  # DATABASE_READ_URL: the replica that reports read
