"""Every periodic job, in one place. Loaded by `supervise cron` (RQ's own cron scheduler).

RQ's cron has no leader lock: run exactly one `supervise cron` process.
"""

from rq import cron

from workers.jobs import (
    build_weekly_reports,
    collect_sms_receipts,
    drain_outbox,
    flag_hot_spots,
    refresh_stats,
    sweep_deadlines,
    sweep_uploads,
)

# Every 15 s, on the queue workers take first: a job whose worker died is dead to the drain at once
# on the same host (its pid is gone), else WORKER_SILENT (45 s) after its last heartbeat
# (supervise/notify/dispatch.py), so its rows are back in a queue within a minute either way, even
# while a flood of notifications fills `default`.
cron.register(drain_outbox, "sweeps", interval=15)
# The sweep catches up by itself (it handles every clock due by now), so a missed run loses nothing.
cron.register(sweep_deadlines, "sweeps", interval=300)
# Mondays 08:00 Asia/Shanghai (`supervise cron` runs in that zone), for the week before. The
# hourly run catches up a Monday the scheduler missed; the job claims each week once.
cron.register(build_weekly_reports, "reports", cron="0 8 * * 1", name="weekly-report")
cron.register(build_weekly_reports, "reports", interval=3600, name="weekly-report-catch-up")
# 03:30 daily, and hourly to catch up a missed night: the job claims each day once, and removes
# only what is over a day old (supervise/intake/uploads.py).
cron.register(sweep_uploads, "sweeps", cron="30 3 * * *", name="upload-sweep")
cron.register(sweep_uploads, "sweeps", interval=3600, name="upload-sweep-catch-up")
# 热点: 06:30 daily for the 30 days up to yesterday, hourly to catch up a missed night; a unit is
# flagged once per day at most, and a rerun writes nothing (supervise/cases/hotspots.py).
cron.register(flag_hot_spots, "sweeps", cron="30 6 * * *", name="hot-spots")
cron.register(flag_hot_spots, "sweeps", interval=3600, name="hot-spots-catch-up")
# 统计分析: every 10 minutes, the months whose cases changed since the last run's mark; a run that
# overlaps the previous one rebuilds the same rows (supervise/stats/services.py).
cron.register(refresh_stats, "reports", interval=600)
# 短信回执: every 5 minutes; only rows without a receipt, within two days of sending, are asked
# about, so a missed or overlapping run records nothing twice (supervise/notify/sms.py).
cron.register(collect_sms_receipts, "sweeps", interval=300)
