"""Background jobs (RQ; system-wide): queue depths, workers, failed jobs with retry and delete."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import abort, current_app, make_response, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from supervise.extensions import db
from supervise.i18n import N_
from supervise.queueing import QUEUE_NAMES, redis_connection
from supervise.staff.admin.common import bp, no_store, refused, saved, system_admin_required
from supervise.staff.auth import staff_required
from supervise.staff.models import Role

FAILED_JOBS_SHOWN = 100  # per queue, the latest failures first
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
WORKER_STATE_LABELS = {
    "busy": N_("忙碌"),
    "idle": N_("空闲"),
    "suspended": N_("已暂停"),
    "started": N_("启动中"),
}


def _aware(moment: datetime | None) -> datetime | None:
    # RQ hands back UTC datetimes; older job hashes may hold naive ones.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _exception_line(exc_string: str | None) -> str:
    """The final exception's own line ("ValueError: …") of a traceback, without what follows it
    (SQLAlchemy appends the statement and its parameters on later lines: never shown)."""
    lines = [line for line in (exc_string or "").splitlines() if line.strip()]
    last_frame = max((i for i, line in enumerate(lines) if line.startswith(" ")), default=-1)
    rest = lines[last_frame + 1 :]
    return (rest[0] if rest else (lines[-1] if lines else ""))[:300]


def _worker_state(worker) -> str:
    state = worker.get_state()
    state = str(getattr(state, "value", state))  # RQ's WorkerStatus, or the text read from Redis
    return _(WORKER_STATE_LABELS[state]) if state in WORKER_STATE_LABELS else state


def _failed_job_row(job, queue_name: str) -> dict[str, Any]:
    from rq.results import Result

    try:
        function = job.func_name
        # Job arguments are ids only (DESIGN.md §5); show them only when they are exactly that.
        args = job.args if not job.kwargs and all(type(a) is int for a in job.args) else None
    except Exception:  # a job whose data cannot be read is still listed, to be deleted
        function, args = "?", None
    result = job.latest_result()
    exc = result.exc_string if result is not None and result.type == Result.Type.FAILED else None
    return {
        "id": job.id,
        "queue": queue_name,
        "function": function,
        "args": args,
        "enqueued_at": _aware(job.enqueued_at),
        "ended_at": _aware(job.ended_at),
        "error": _exception_line(exc or job._exc_info),
    }


def _jobs_overview(conn) -> dict[str, Any]:
    """Counts per queue, the workers, the latest failed jobs; read without RQ's clean-ups (a GET
    changes nothing)."""
    from rq import Queue, Worker
    from rq.job import Job

    queues, failed = [], []
    for name in QUEUE_NAMES:
        q = Queue(name, connection=conn)
        registries = {
            "started": q.started_job_registry,
            "failed": q.failed_job_registry,
            "scheduled": q.scheduled_job_registry,
            "deferred": q.deferred_job_registry,
        }
        counts = {key: reg.get_job_count(cleanup=False) for key, reg in registries.items()}
        queues.append({"name": name, "queued": q.count, **counts})
        ids = registries["failed"].get_job_ids(0, FAILED_JOBS_SHOWN - 1, desc=True, cleanup=False)
        failed += [_failed_job_row(job, name) for job in Job.fetch_many(ids, connection=conn) if job]
    workers = [
        {
            "name": w.name,
            "state": _worker_state(w),
            "job": w.get_current_job_id(),
            "heartbeat": _aware(w.last_heartbeat),
            "queues": w.queue_names(),
        }
        for w in sorted(Worker.all(connection=conn), key=lambda w: w.name)
    ]
    return {"queues": queues, "workers": workers, "failed": failed}


@bp.get("/jobs")
@staff_required(Role.ADMIN)
@system_admin_required
def jobs() -> ResponseReturnValue:
    """What the RQ workers do: queue depths, workers, failed jobs with retry and delete."""
    try:
        overview, redis_error = _jobs_overview(redis_connection()), None
    except Exception as exc:
        current_app.logger.warning("jobs page: Redis unreadable (%s)", exc)
        overview, redis_error = {"queues": [], "workers": [], "failed": []}, type(exc).__name__
    response = make_response(
        render_template(
            "staff/admin/jobs.html", **overview, redis_error=redis_error, shown_limit=FAILED_JOBS_SHOWN
        )
    )
    return no_store(response)


def _failed_job_or_404(conn, job_id: str):
    """The failed job `job_id`, with its queue's failed registry; anything else is 404."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if not JOB_ID_RE.match(job_id):
        abort(404)
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        abort(404)
    if job.origin not in QUEUE_NAMES:
        abort(404)
    return job, job.failed_job_registry


def _job_action(job_id: str, what: str) -> ResponseReturnValue:
    from rq.exceptions import InvalidJobOperation

    conn = redis_connection()
    job, registry = _failed_job_or_404(conn, job_id)
    try:
        function = job.func_name
    except Exception:
        function = "?"
    gone = _("任务 %(job)s 已不在失败列表中", job=job_id)
    if job.id not in registry:
        return refused("admin.jobs", gone)
    if what == "retry":
        try:
            registry.requeue(job)
        except InvalidJobOperation:  # someone retried it a moment ago
            return refused("admin.jobs", gone)
        message = _("任务 %(job)s 已重新排队", job=job_id)
    else:
        job.delete()
        message = _("任务 %(job)s 已删除", job=job_id)
    return saved(f"job.{what}", message, "admin.jobs", job=job.id, queue=job.origin, function=function)


def _job_action_or_flash(job_id: str, what: str) -> ResponseReturnValue:
    from redis.exceptions import RedisError

    try:
        return _job_action(job_id, what)
    except RedisError as exc:
        db.session.rollback()
        current_app.logger.warning("jobs page: Redis unreachable (%s)", exc)
        return refused("admin.jobs", _("无法连接 Redis，请稍后再试"))


@bp.post("/jobs/<job_id>/retry")
@staff_required(Role.ADMIN)
@system_admin_required
def job_retry(job_id: str) -> ResponseReturnValue:
    return _job_action_or_flash(job_id, "retry")


@bp.post("/jobs/<job_id>/delete")
@staff_required(Role.ADMIN)
@system_admin_required
def job_delete(job_id: str) -> ResponseReturnValue:
    return _job_action_or_flash(job_id, "delete")
