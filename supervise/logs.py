"""Logging: one JSON object a line in production, readable lines in development.

Every line carries the id of the request it belongs to. A request takes its id from a valid
incoming `X-Request-ID` (a proxy's) or makes one, and echoes it in the response; the jobs a
request enqueues carry it in their RQ meta, and `workers.context.job` puts it back into the log
context while the job runs, with the job's id. Only the standard library is used.

Every time on a line is ISO 8601 in UTC with its offset (2026-12-01T13:00:10.157+00:00), text or
JSON, whatever the process's local zone: the cron process runs in Asia/Shanghai for RQ's cron
strings, and lines of the web, worker and cron must sort and compare as they are. gunicorn's own
lines take the same shape in development (supervise/gunicorn_logging.py).

What is logged must never name a reporter: names and phones are encrypted at rest and shown
masked; access codes travel only in POST bodies and are never logged (the test suite greps the
log of a whole run for the test reporters' names, phones and codes: tests/conftest.py).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Set by workers.context.job while a job runs: {"job_id": …, "request_id": … or None}.
job_context: ContextVar[dict[str, str | None] | None] = ContextVar("supervise_job_context", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# Libraries that are chatty at DEBUG (Pillow prints every PNG chunk; redis-py a capability probe
# on every new connection to a Redis before 7.2) stay at INFO or above.
QUIET_LOGGERS = ("PIL", "asyncio", "urllib3", "botocore", "boto3", "s3transfer", "faker", "redis.connection")


def new_request_id(incoming: str | None = None) -> str:
    """A proxy's id when it is a sane token (≤ 64 of [A-Za-z0-9._-]), else a fresh one."""
    if incoming and _VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The id of the request being served, else of the request that enqueued the running job."""
    if has_request_context():
        found = g.get("request_id")
        if found:
            return found
    context = job_context.get()
    return context.get("request_id") if context else None


def current_job_id() -> str | None:
    context = job_context.get()
    return context.get("job_id") if context else None


class ContextFilter(logging.Filter):
    """Adds `request_id` and `job_id` to every record passing the handler (None when absent)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        if not hasattr(record, "job_id"):
            record.job_id = current_job_id()
        return True


def log_time(created: float) -> str:
    """A record's time as every line shows it: ISO 8601, UTC, milliseconds, with the offset."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601 UTC), level, logger, message, request_id, job_id,
    and exc_info / stack_info as text when present."""

    def format(self, record: logging.LogRecord) -> str:
        ContextFilter().filter(record)
        entry: dict[str, Any] = {
            "ts": log_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": record.request_id,
        }
        if record.job_id:
            entry["job_id"] = record.job_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # Not time.localtime: the cron process's zone is Asia/Shanghai, the others' UTC.
        return log_time(record.created)

    def format(self, record: logging.LogRecord) -> str:
        ContextFilter().filter(record)
        if record.request_id is None:
            record.request_id = "-"
            try:
                return super().format(record)
            finally:
                record.request_id = None
        return super().format(record)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (a test runner swaps it between tests)."""

    _supervise = True

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


# RQ's INFO lines for every job (taken, completed, OK, result kept) and every cron tick (the outbox
# drain every 15 s): at hundreds of outbox rows a second they bury everything else. Failures are
# WARNING and above, and each outcome is recorded on its outbox row; LOG_LEVEL=DEBUG shows them.
RQ_JOB_LINES = ("Worker %s: %s: %s", "Successfully completed ", "Worker %s: job %s result ", "Enqueued job ")


class RqJobLines(logging.Filter):
    def __init__(self, show: bool = False) -> None:
        super().__init__()
        self.show = show

    def filter(self, record: logging.LogRecord) -> bool:
        return self.show or not (
            record.name in ("rq.worker", "rq.cron")
            and record.levelno == logging.INFO
            and isinstance(record.msg, str)
            and record.msg.startswith(RQ_JOB_LINES)
        )


def configure_logging(app: Flask) -> None:
    """Install the one root handler (replacing ours from an earlier app, never stacking) and the
    request-id hooks. LOG_FORMAT: json | text; LOG_LEVEL: a level name."""
    fmt = app.config.get("LOG_FORMAT") or (
        "json" if app.config.get("SUPERVISE_ENV") == "production" else "text"
    )
    level = logging.getLevelName(str(app.config.get("LOG_LEVEL") or "INFO").upper())
    if not isinstance(level, int):
        level = logging.INFO
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_supervise", False)), None)
    if handler is None:
        handler = _StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())
    for old in [f for f in handler.filters if isinstance(f, RqJobLines)]:
        handler.removeFilter(old)
    handler.addFilter(RqJobLines(show=level <= logging.DEBUG))
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))

    @app.before_request
    def _assign_request_id() -> None:
        g.request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER))

    @app.after_request
    def _echo_request_id(response):
        if g.get("request_id"):
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response
