"""One time shape on every log line: ISO 8601 in UTC with its offset (supervise/logs.py).

The cron process sets TZ=Asia/Shanghai for RQ's cron strings; its lines must still say UTC, as
the web's and the worker's do (tests/test_serve.py checks the lines of all three processes).
"""

from __future__ import annotations

import json
import logging
import os
import time

import pytest

from supervise.logs import JsonFormatter, TextFormatter

ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"


@pytest.fixture
def shanghai_zone():
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_text_and_json_lines_carry_the_same_utc_time_whatever_the_local_zone(shanghai_zone):
    record = logging.LogRecord("rq.cron", logging.INFO, __file__, 1, "tick", None, None)
    record.created = 1_764_590_400.25  # 2025-12-01 12:00:00.250 UTC, 20:00 in Shanghai
    text = TextFormatter().format(record)
    assert text.startswith("2025-12-01T12:00:00.250+00:00 INFO rq.cron [-]: tick"), text
    assert json.loads(JsonFormatter().format(record))["ts"] == "2025-12-01T12:00:00.250+00:00"


def test_gunicorn_lines_take_the_app_shape():
    from gunicorn.config import Config

    from supervise.gunicorn_logging import TextLogger

    cfg = Config()
    cfg.set("accesslog", "-")
    logger = TextLogger(cfg)
    handler = logger.access_log.handlers[0]
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(h)s", ({"h": "10.0.0.9"},), None
    )
    record.created = 1_764_590_400.0
    record.request_id = "abc"
    assert handler.format(record) == "2025-12-01T12:00:00.000+00:00 INFO gunicorn.access [abc]: 10.0.0.9"
