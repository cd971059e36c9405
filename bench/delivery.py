"""Outbox delivery throughput: 5,000 in-app rows, one RQ worker, rows per second.

    python -m bench.delivery --db sqlite            # a throw-away SQLite file
    python -m bench.delivery --db postgresql        # a throw-away `supervise_bench_delivery` database
    python -m bench.delivery --db postgresql --rows 30000 --recipients 3

The rows are written in one transaction (as a sweep writes them), so the commit hook enqueues them
as batch jobs (notify/dispatch.py); then one worker (RQ's SimpleWorker, in this process: the
figure is the job's work, not fork overhead) runs until the queue is empty. Each row notifies
`--recipients` users of one org. Everything is private to the run: a redis-server on a free
port, a temporary SQLite file or a PostgreSQL database created and dropped here (on the server
of BENCH_DATABASE_URL, default 127.0.0.1:5432), so it never meets the test suite's data or the
`bench` data set.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PG_DB = "supervise_bench_delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    from supervise.queueing import redis_server_binary

    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def _pg_urls() -> tuple[str, str]:
    base = urlsplit(
        os.environ.get("BENCH_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
    )
    app_url = urlunsplit((base.scheme, base.netloc, f"/{PG_DB}", "", ""))
    admin_url = urlunsplit(("postgresql", base.netloc, "/postgres", "", ""))
    return app_url, admin_url


def _pg_admin(admin_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(statement)


def run(backend: str, rows: int, recipients: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    redis_proc, redis_url = _start_redis(work)
    os.environ.pop("DATABASE_URL", None)
    os.environ |= {"SUPERVISE_DATA_DIR": str(work), "REDIS_URL": redis_url, "SUPERVISE_ENV": "development"}
    if backend == "postgresql":
        app_url, admin_url = _pg_urls()
        _pg_admin(admin_url, f"DROP DATABASE IF EXISTS {PG_DB}")
        _pg_admin(admin_url, f"CREATE DATABASE {PG_DB}")
        os.environ["DATABASE_URL"] = app_url
    try:
        return _measure(rows, recipients)
    finally:
        redis_proc.kill()
        if backend == "postgresql":
            _pg_admin(admin_url, f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


def _measure(rows: int, recipients: int) -> dict[str, float]:
    from flask_migrate import upgrade
    from rq import SimpleWorker
    from rq.registry import FinishedJobRegistry
    from sqlalchemy import func, select

    from supervise.app import create_app
    from supervise.extensions import db
    from supervise.notify.models import Notification, OutboxMessage
    from supervise.notify.outbox import queue_message
    from supervise.orgs.services import create_org
    from supervise.queueing import redis_connection
    from supervise.staff.services import create_user
    from workers.context import bind_app

    app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
    bind_app(app)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        org = create_org(db.session, "county", "某县纪委监委", "commission")
        for n in range(recipients):
            create_user(db.session, username=f"watcher-{n}", org=org, role="supervisor", password="x" * 12)
        db.session.commit()
        payload = {"org_id": org.id, "role": "supervisor"}
        for _ in range(rows):
            queue_message(db.session, kind="deadline_overdue", channel="inapp", payload=payload)
        db.session.commit()  # the hook enqueues the batch jobs
        db.session.remove()

        conn = redis_connection(app)
        started = time.perf_counter()
        SimpleWorker(["default"], connection=conn).work(burst=True, logging_level="WARNING")
        seconds = time.perf_counter() - started

        delivered = db.session.scalar(select(func.count()).where(OutboxMessage.status == "delivered"))
        notices = db.session.scalar(select(func.count(Notification.id)))
        jobs = len(FinishedJobRegistry("default", connection=conn).get_job_ids())
        db.session.remove()
    if delivered != rows or notices != rows * recipients:
        raise SystemExit(f"delivered {delivered}/{rows} rows, {notices} notices: not a valid run")
    return {"rows": rows, "jobs": jobs, "seconds": seconds, "rows_per_s": rows / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--recipients", type=int, default=1, help="users notified per row")
    args = parser.parse_args()
    result = run(args.db, args.rows, args.recipients)
    print(
        f"{args.db}: {result['rows']} in-app rows ({args.recipients} recipient(s) each) "
        f"in {result['jobs']} jobs, "
        f"{result['seconds']:.2f} s → {result['rows_per_s']:.0f} rows/s for one worker"
    )


if __name__ == "__main__":
    main()
