"""Every periodic job, in one place. Loaded by `supervise cron` (RQ's own cron scheduler).

RQ's cron has no leader lock: run exactly one `supervise cron` process.
"""

from rq import cron

from workers.jobs import drain_outbox, sweep_deadlines

cron.register(drain_outbox, "default", interval=60)
# The sweep catches up by itself (it handles every clock due by now), so a missed run loses nothing.
cron.register(sweep_deadlines, "sweeps", interval=300)
