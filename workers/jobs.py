"""RQ jobs. Arguments are ids only: they sit in Redis, and no personal data ever goes there."""

from __future__ import annotations

from supervise.extensions import db
from supervise.notify import outbox
from supervise.notify.channels import default_channels
from workers.context import job


def _worker_name() -> str | None:
    from rq import get_current_job

    current = get_current_job()
    return current.worker_name if current else None


@job
def deliver_outbox_message(message_id: int) -> str:
    """Deliver one outbox row; safe to run twice (the second run finds it delivered)."""
    return outbox.deliver(db.session, message_id, default_channels(), _worker_name())


@job
def deliver_outbox_batch(message_ids: list[int]) -> dict[str, int]:
    """Deliver a batch of outbox rows (one transaction for in-app notices). A row that failed is
    retried on its own job, with RQ's backoff, so one bad row does not hold back the batch."""
    from datetime import timedelta

    from supervise.notify import dispatch
    from supervise.queueing import DELIVERY_RETRY, job_meta, queue

    result = outbox.deliver_many(db.session, message_ids, default_channels(), _worker_name())
    failed = result.pop("failed")
    if failed:
        q = queue(dispatch.DELIVERY_QUEUE)
        for message_id in failed:
            q.enqueue_in(
                timedelta(seconds=DELIVERY_RETRY.intervals[0]),
                "workers.jobs.deliver_outbox_message",
                message_id,
                job_id=outbox.job_id(message_id),
                retry=DELIVERY_RETRY,
                meta=job_meta(),
            )
    return {**result, "failed": len(failed)}


@job
def drain_outbox() -> int:
    """Re-enqueue pending rows no live job holds (Redis lost it, or its worker died), and turn
    e-mails and SMS whose worker died mid-send into `unknown` rows for an admin."""
    from functools import partial

    from supervise.notify import dispatch
    from supervise.queueing import redis_connection, requeue_lost

    conn = redis_connection()
    outbox.settle_abandoned_claims(db.session, partial(dispatch.worker_alive, connection=conn))
    return requeue_lost(outbox.stale_pending_ids(db.session), conn)


@job
def sweep_deadlines() -> dict[str, int]:
    """The deadline sweep (DESIGN.md §5): warnings, overdue flags, escalations, auto-close."""
    from supervise.deadlines.services import run_sweep

    result = run_sweep()
    return {"warned": result.warned, "level1": result.level1, "level2": result.level2}


@job
def build_weekly_reports() -> list[str]:
    """每周超期件通报: build and mail every ended week that has no report yet (catching up)."""
    from supervise.reports.services import run_weekly

    return run_weekly()


@job
def sweep_uploads() -> dict[str, int] | None:
    """Daily: temp upload files and photo files no row names, older than a day (claimed once a day)."""
    from supervise.intake.uploads import sweep_uploads as run

    return run()


@job
def flag_hot_spots() -> list[int]:
    """Daily: units with ≥ HOTSPOT_THRESHOLD complaints in 30 days, flagged to their body once."""
    from supervise.cases.hotspots import flag_hot_spots as run

    return [f.unit_id for f in run()]


@job
def refresh_stats() -> int:
    """统计分析: rebuild the summary months whose cases changed since the last run (idempotent)."""
    from supervise.stats.services import refresh

    return len(refresh(db.session))


@job
def collect_sms_receipts() -> int:
    """短信回执: record the delivery receipts of sent SMS (Aliyun QuerySendDetails, Tencent
    PullSmsSendStatus); idempotent, bounded to a window after sending (supervise/notify/sms.py)."""
    from flask import current_app

    from supervise.cases.services import identity_box
    from supervise.notify.sms import collect_receipts

    return collect_receipts(db.session, current_app.config, identity_box())
