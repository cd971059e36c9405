"""gunicorn settings, from the environment (docs/deploy.md).

Used by `supervise serve` (`gunicorn -c python:supervise.gunicorn_conf`, with its own `-b`/`-w`
on top) and by the container (`gunicorn -c gunicorn.conf.py supervise.wsgi:app`; the file at the
repository root imports this module). Command-line options override everything here.

Variables (default) → gunicorn setting:

- `GUNICORN_BIND` (`0.0.0.0:8000`; comma-separated for several) → `bind`
- `WEB_CONCURRENCY` (0: 2 × CPUs + 1, at most `GUNICORN_MAX_WORKERS`, 8) → `workers` (processes)
- `GUNICORN_THREADS` (4) → `threads` per process: the gthread worker, so a slow phone upload ties
  up a thread, not a process
- `GUNICORN_TIMEOUT` (60) → `timeout`: a worker silent this long is killed and replaced
- `GUNICORN_GRACEFUL_TIMEOUT` (30) → `graceful_timeout`: on SIGTERM, requests in flight get this long
- `GUNICORN_KEEPALIVE` (5) → `keepalive` seconds (above a load balancer's idle timeout)
- `GUNICORN_MAX_REQUESTS` (10000, + up to 10 % jitter; 0 = never) → `max_requests`: recycle a worker
- `FORWARDED_ALLOW_IPS` (`127.0.0.1,::1`) → `forwarded_allow_ips`: proxies whose
  `X-Forwarded-Proto` gunicorn believes
- `GUNICORN_ACCESSLOG` (`-`: stdout; `off`: none) → `accesslog`
- `LOG_FORMAT` (`json` in production, else `text`) → access and server log lines as JSON or text

The client address, scheme and host the *application* sees behind a proxy are set by ProxyFix in
supervise/wsgi.py (`PROXY_FIX_X_FOR` …): per-IP rate limits need the citizen's address.

The access log's request id is the response's `X-Request-ID`: the app echoes a valid incoming one
(a proxy's) or makes one, and puts the same id on its own log lines (supervise/logs.py).

With `PROMETHEUS_MULTIPROC_DIR` set, the directory is emptied when gunicorn starts and a dead
worker's counters are merged away (prometheus_client's multiprocess mode; supervise/metrics.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path

from gunicorn import glogging

from supervise.logs import JsonFormatter as AppJsonFormatter


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def cpu_count() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (containers)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def _log_format() -> str:
    fmt = os.environ.get("LOG_FORMAT", "").strip().lower()
    if fmt in ("json", "text"):
        return fmt
    return "json" if os.environ.get("SUPERVISE_ENV") == "production" else "text"


bind = [b.strip() for b in os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").split(",") if b.strip()]
workers = _int("WEB_CONCURRENCY", 0) or min(2 * cpu_count() + 1, _int("GUNICORN_MAX_WORKERS", 8))
threads = _int("GUNICORN_THREADS", 4)
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = max_requests // 10
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Worker heartbeats on a RAM disk: an overlay or network /tmp can stall them into false timeouts.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = None if os.environ.get("GUNICORN_ACCESSLOG", "-").lower() in ("", "off", "none") else "-"
errorlog = "-"
# Combined log format + duration in ms + the request id (the response's X-Request-ID header).
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms rid=%({x-request-id}o)s'
)
proc_name = "supervise-web"


class JsonFormatter(AppJsonFormatter):
    """The app's JSON line shape (supervise/logs.py) plus the access record's `http` object."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        http = getattr(record, "http", None)
        if not http:
            return line
        return json.dumps({**json.loads(line), "http": http}, ensure_ascii=False, default=str)


class JsonLogger(glogging.Logger):
    """gunicorn's logger writing one JSON object a line (LOG_FORMAT=json)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        try:
            atoms = self.atoms(resp, req, environ, request_time)
            http = {
                "remote_addr": atoms["h"],
                "method": atoms["m"],
                "path": atoms["U"],
                "query": atoms["q"] or None,
                "status": int(atoms["s"]),
                "bytes": atoms["B"],
                "duration_ms": atoms["M"],
                "referer": atoms["f"],
                "user_agent": atoms["a"],
            }
            request_id = atoms.get("{x-request-id}o") or atoms.get("{x-request-id}i")
            self.access_log.info(
                "%s %s %s", atoms["m"], atoms["U"], atoms["s"], extra={"http": http, "request_id": request_id}
            )
        except Exception:
            self.exception("access log line failed")


# Text: the app's shape (supervise/gunicorn_logging.py), so every line starts with the same ISO 8601 UTC time.
logger_class = JsonLogger if _log_format() == "json" else "supervise.gunicorn_logging.TextLogger"


def on_starting(server) -> None:
    # Check the settings once in the master: a production start without its secrets stops here
    # with one line per missing item, instead of every worker failing to boot with a traceback.
    from supervise.config import ConfigError, load_config

    try:
        load_config()
    except ConfigError as exc:
        exc.show()
        raise SystemExit(1) from None
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
