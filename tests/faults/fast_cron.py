"""A cron configuration for tests/faults/test_redis_outage.py: workers/cron.py's outbox drain,
every two seconds instead of every minute, so cron meets a short Redis outage at a tick."""

from rq import cron

from workers.jobs import drain_outbox

cron.register(drain_outbox, "default", interval=2)
