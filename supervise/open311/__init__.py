"""Open311 GeoReport v2 (/open311/v2) for 12345 platforms and apps, and its admin page.

models: the clients (api_key per client, hashed) and the requests each filed; services: a request
as a case, and what a client may read back; views: the endpoints in JSON and XML; admin:
系统管理 → Open311 接入."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from supervise.extensions import csrf
    from supervise.open311 import admin, models, views  # noqa: F401  (models: registers the tables)

    app.register_blueprint(views.bp)
    app.register_blueprint(admin.bp)
    # Machines POST here with an api_key, not a browser session: nothing for CSRF to protect.
    csrf.exempt(views.bp)
