"""Every periodic job, in one place. Loaded by `supervise cron` (RQ's own cron scheduler).

RQ's cron has no leader lock: run exactly one `supervise cron` process.
"""

from rq import cron

from workers.jobs import drain_outbox

cron.register(drain_outbox, "default", interval=60)
