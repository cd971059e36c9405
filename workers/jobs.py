"""RQ jobs. Arguments are ids only: they sit in Redis, and no personal data ever goes there."""

from __future__ import annotations

from supervise.extensions import db
from supervise.notify import outbox
from supervise.notify.channels import default_channels
from workers.context import job


@job
def deliver_outbox_message(message_id: int) -> str:
    """Deliver one outbox row; safe to run twice (the second run finds it delivered)."""
    return outbox.deliver(db.session, message_id, default_channels())


@job
def drain_outbox() -> int:
    """Re-enqueue pending rows whose job Redis no longer holds (Redis restarted, job lost)."""
    from supervise.queueing import redis_connection, requeue_lost

    return requeue_lost(outbox.stale_pending_ids(db.session), redis_connection())


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
