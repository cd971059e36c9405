"""Outbox rows → RQ jobs: batches on enqueue, and the drain's view of which jobs are alive.

Job ids name the rows they hold: `outbox-<id>` (one row, RQ's Retry backs it off) or
`outbox-<first>-<last>` (a batch of up to BATCH_SIZE rows between those ids). The drain reads the
ids of live jobs, without fetching each job, to find rows nobody holds.

A started job is alive only while its worker is: RQ would notice a dead worker's job only at its
next maintenance (about ten minutes, plus the job's heartbeat TTL), which made an escalation mail
eleven minutes late after a deploy or an OOM kill. Here a worker is dead as soon as its heartbeat
key is gone, its last heartbeat is older than WORKER_SILENT, or (same host) its process is gone.
A wrong "dead" costs nothing: rows are locked and claimed, so a second job delivers nothing twice.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.utils import utcparse

from supervise.notify.outbox import BATCH_SIZE, job_id
from supervise.queueing import DELIVERY_RETRY

log = logging.getLogger(__name__)

DELIVERY_QUEUE = "default"
# A forking RQ worker heartbeats every job_monitoring_interval (30 s) while a job runs: 45 s is one
# beat missed by half an interval. Calling a live worker dead costs nothing (rows are claimed).
WORKER_SILENT = timedelta(seconds=45)


def batch_job_id(ids: list[int]) -> str:
    return f"outbox-{min(ids)}-{max(ids)}"


def delivery_jobs(ids: list[int], meta: dict | None = None) -> list:
    """RQ job data for these rows: one job per row when there is one, else batches."""
    ids = sorted(set(ids))
    if len(ids) == 1:
        return [
            Queue.prepare_data(
                "workers.jobs.deliver_outbox_message",
                (ids[0],),
                job_id=job_id(ids[0]),
                retry=DELIVERY_RETRY,
                meta=meta,
            )
        ]
    return [
        Queue.prepare_data(
            "workers.jobs.deliver_outbox_batch",
            (chunk,),
            job_id=batch_job_id(chunk),
            meta=meta,
        )
        for chunk in (ids[i : i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE))
    ]


def enqueue(ids: list[int], connection: Redis, meta: dict | None = None) -> None:
    """Enqueue delivery jobs for these rows (raises if Redis is away: callers decide)."""
    if ids:
        Queue(DELIVERY_QUEUE, connection=connection).enqueue_many(delivery_jobs(ids, meta))


def worker_alive(name: str, connection: Redis) -> bool:
    """Whether RQ worker `name` still runs, from its heartbeat key (see the module docstring)."""
    data = connection.hgetall(f"rq:worker:{name}")
    if not data:
        return False  # the heartbeat key expired (or the worker deregistered)
    fields = {k.decode(): v.decode() for k, v in data.items()}
    if fields.get("hostname") == socket.gethostname() and fields.get("pid", "").isdigit():
        try:
            os.kill(int(fields["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, another user's
    beat = fields.get("last_heartbeat")
    if beat:
        try:
            last = utcparse(beat)
        except ValueError:
            return True
        now = datetime.now(UTC)
        return (now if last.tzinfo else now.replace(tzinfo=None)) - last <= WORKER_SILENT
    return True


def _covered(job_ids: list[str]) -> tuple[set[int], list[tuple[int, int]]]:
    singles: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for jid in job_ids:
        parts = jid.split("-")
        if parts[0] != "outbox" or not all(p.isdigit() for p in parts[1:]):
            continue
        if len(parts) == 2:
            singles.add(int(parts[1]))
        elif len(parts) == 3:
            ranges.append((int(parts[1]), int(parts[2])))
    return singles, ranges


def live_job_ids(connection: Redis) -> list[str]:
    """Ids of delivery jobs that will still run: queued, scheduled (retry backoff), deferred, and
    started on a live worker. A started job whose worker is dead is taken out of the started
    registry here (RQ's own cleanup would retry or fail it minutes later)."""
    q = Queue(DELIVERY_QUEUE, connection=connection)
    alive = list(q.get_job_ids())
    alive += ScheduledJobRegistry(queue=q).get_job_ids(cleanup=False)
    alive += DeferredJobRegistry(queue=q).get_job_ids(cleanup=False)
    started = StartedJobRegistry(queue=q)
    for jid, execution_id in started.get_job_and_execution_ids(cleanup=False):
        if not jid.startswith("outbox-"):
            continue
        try:
            job = Job.fetch(jid, connection=connection)
        except NoSuchJobError:
            job = None
        if job is not None and job.worker_name and worker_alive(job.worker_name, connection):
            alive.append(jid)
            continue
        connection.zrem(started.key, f"{jid}:{execution_id}")
        log.warning(
            "delivery job %s: its worker %s is dead; its rows are re-enqueued", jid, job and job.worker_name
        )
    return alive


def requeue_lost(ids: list[int], connection: Redis, meta: dict | None = None) -> int:
    """Enqueue the rows no live job holds; returns how many rows."""
    singles, ranges = _covered(live_job_ids(connection))
    lost = [i for i in ids if i not in singles and not any(a <= i <= b for a, b in ranges)]
    enqueue(lost, connection, meta)
    if lost:
        log.info("outbox drain re-enqueued %s message(s)", len(lost))
    return len(lost)
