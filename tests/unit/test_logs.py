"""Structured logs: JSON lines, request ids carried into jobs, no reporter identity (logs.py)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from rq import SimpleWorker

from supervise.app import create_app
from supervise.logs import JsonFormatter, TextFormatter
from supervise.queueing import redis_connection
from tests.conftest import REPORTER_NAMES, REPORTER_PHONES, REPORTER_SECRETS, app_config


class Lines(logging.Handler):
    """The run's records as the production handler would write them (JSON)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))

    def entries(self, logger: str | None = None) -> list[dict]:
        parsed = [json.loads(line) for line in self.lines]  # every line is one valid JSON object
        return [e for e in parsed if logger is None or e["logger"] == logger]


@pytest.fixture
def lines():
    handler = Lines()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def test_a_request_logs_json_with_its_id_and_echoes_it(app, client, lines):
    @app.get("/_log_probe")
    def probe():
        logging.getLogger("supervise.probe").warning("probe %s", "ok")
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("supervise.probe").exception("it failed")
        return "ok"

    response = client.get("/_log_probe", headers={"X-Request-ID": "edge-7f3a.1_b"})
    assert response.headers["X-Request-ID"] == "edge-7f3a.1_b"
    first, failed = lines.entries("supervise.probe")
    assert first["message"] == "probe ok" and first["level"] == "WARNING"
    assert first["request_id"] == "edge-7f3a.1_b" and "job_id" not in first
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["ts"])
    assert "KeyError: 'missing'" in failed["exc_info"]

    for bad in ("x" * 65, "a b", "<script>", ""):
        made = client.get("/_log_probe", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)  # a fresh id instead of the caller's


def test_a_requests_id_reaches_the_jobs_it_enqueued(app, client, submit, lines):
    submit()  # the outbox rows are enqueued after the commit, inside the request
    lines.lines.clear()
    response = client.post(
        "/api/v1/cases",
        json={"category": "efficiency", "subject": "县民政局", "content": "临时救助申请一个多月没有回音。"},
        headers={"X-Request-ID": "req-0042"},
    )
    assert response.status_code == 201 and response.headers["X-Request-ID"] == "req-0042"
    SimpleWorker(["default"], connection=redis_connection(app)).work(burst=True)

    delivered = [e for e in lines.entries("supervise.notify.outbox") if "delivered" in e["message"]]
    ours = [e for e in delivered if e["request_id"] == "req-0042"]
    assert ours, delivered
    for entry in ours:
        assert entry["job_id"].startswith("outbox-")
    # The first submission's jobs carry that request's own (generated) id, not this one.
    assert {e["request_id"] for e in delivered} - {"req-0042"}


def test_format_and_level_follow_the_settings_without_stacking_handlers(services, monkeypatch):
    def ours():
        return [h for h in logging.getLogger().handlers if getattr(h, "_supervise", False)]

    create_app(app_config(services, LOG_FORMAT="json"))
    create_app(app_config(services, LOG_FORMAT="text", LOG_LEVEL="WARNING"))
    assert len(ours()) == 1 and isinstance(ours()[0].formatter, TextFormatter)
    assert logging.getLogger().level == logging.WARNING
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    # Production logs JSON unless told otherwise.
    from supervise.config import load_config

    monkeypatch.setenv("SUPERVISE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "5d41402abc4b2a76b9719d911017c592a3b6c8e0f1d2c3b4a5968778695a4b3c")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("REDIS_URL", "redis://h:6379/0")
    from cryptography.fernet import Fernet

    monkeypatch.setenv("SUPERVISE_ENCRYPTION_KEY", Fernet.generate_key().decode())
    assert load_config()["LOG_FORMAT"] == "json"
    monkeypatch.setenv("SUPERVISE_ENV", "development")
    assert load_config()["LOG_FORMAT"] == "text"
    create_app(app_config(services, LOG_LEVEL="DEBUG"))  # back to the run's level
    assert len(ours()) == 1


def test_every_reporter_the_tests_submit_is_in_the_grepped_list():
    """The run's log is grepped for REPORTER_SECRETS: a test reporter missing there would not be."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in Path(__file__).parents[1].rglob("*.py"))
    phones = set(re.findall(r"(?<![\d*])1[3-9]\d{9}(?!\d)", sources))
    names = set(re.findall(r"""name=["']([^"']+)["'],\s*phone=""", sources))
    assert phones and names  # the patterns still find the tests' reporters
    assert phones <= set(REPORTER_PHONES), phones - set(REPORTER_PHONES)
    assert names <= set(REPORTER_NAMES), names - set(REPORTER_NAMES)
    assert len(REPORTER_SECRETS) == len(REPORTER_NAMES) + len(REPORTER_PHONES)


def test_rq_job_lines_are_dropped_but_not_the_workers_own_news():
    """Three INFO lines per job would bury the start-up banner and every warning under a backlog."""
    import logging

    from supervise.logs import RqJobLines

    def record(msg: str, *args, level: int = logging.INFO) -> logging.LogRecord:
        return logging.LogRecord("rq.worker", level, __file__, 1, msg, args, None)

    quiet = RqJobLines()
    assert not quiet.filter(record("Worker %s: %s: %s (%s)", "w", "default", "deliver(1)", "outbox-1"))
    assert not quiet.filter(record("Successfully completed %s job in %ss on worker %s", "d", 0.1, "w"))
    assert not quiet.filter(record("Worker %s: job %s result is kept for %s seconds", "w", "outbox-1", 500))
    assert quiet.filter(record("Worker %s: started with PID %d, version %s", "w", 1, "2"))
    tick = logging.LogRecord(
        "rq.cron", logging.INFO, __file__, 1, "Enqueued job drain_outbox to queue sweeps", (), None
    )
    assert not quiet.filter(tick)
    assert quiet.filter(record("Worker %s: %s: %s", "w", "default", "boom", level=logging.WARNING))
