"""The submit benchmark's baseline: the stack's speed with nothing of the project in it.

A bare Flask endpoint that parses the same JSON body and does one INSERT per request, through
SQLAlchemy's pool and psycopg, served by the same gunicorn shape as the app. What the project's
`POST /api/v1/cases` costs above this is the project's own work (checks, routing, clocks, the event,
the outbox row, rate limits). Run by bench/submit.py (`gunicorn bench.bare_app:app`), which creates
its table (`BARE_TABLE`).
"""

from __future__ import annotations

import os
import secrets

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text

engine = create_engine(os.environ["BARE_DATABASE_URL"], pool_size=4, max_overflow=0, pool_pre_ping=False)
app = Flask(__name__)


@app.post("/submit")
def submit():
    body = request.get_json()
    tracking_no = "MS-" + secrets.token_hex(5).upper()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO bare_submissions (tracking_no, category, subject, content, client) "
                "VALUES (:t, :c, :s, :b, :ip)"
            ),
            {
                "t": tracking_no,
                "c": body["category"],
                "s": body["subject"],
                "b": body["content"],
                "ip": request.headers.get("X-Forwarded-For", request.remote_addr),
            },
        )
    return jsonify(tracking_no=tracking_no), 201
