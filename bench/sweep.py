"""Time one deadline sweep over N cases of which 1 % have just become overdue.

    python -m bench.sweep [--cases 1000000] [--seed 1] [--newly-overdue N (1 % of the cases)] [--profile]

The goal (issues 4 and 15): the sweep of 1 % newly overdue finishes in under 10 s on PostgreSQL on
this machine — 10,000 among 1,000,000 cases, 100,000 among the province's 10,000,000 — and a
second (idle) sweep in under 50 ms.

1. `bench.clocks.ensure` (generates the cases and adds the clocks if the bench database lacks them);
2. resets the newly overdue clocks to their state before any sweep (deletes the escalations,
   events and outbox rows an earlier run made at the sweep moment, clears their RQ jobs from
   Redis db 15, sets `overdue_at` NULL and `next_check_at` back), so the benchmark can be re-run;
3. `EXPLAIN (ANALYZE, BUFFERS)` of the claim query (`sweep._claim`'s first batch, rolled back);
4. the sweep: `run_sweep(sweep_now)` in an app context, as `supervise sweep --now` runs it,
   timed with `time.perf_counter` (its SQL, and the RQ enqueues after each commit, timed too);
5. checks: exactly N level-1 escalations (and no level 2), 3 outbox rows and one event per clock,
   no duplicate outbox `dedupe_key`, every case flagged overdue, nothing left due;
6. a second sweep at the same moment: it must do nothing; its time is printed too.

`--profile` runs the timed sweep under cProfile (slower) and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench import common
from bench.figures import Figure

GOAL_SECONDS = 10.0
IDLE_GOAL_MS = 50.0
SMOKE_NEWLY_OVERDUE = 5  # the smoke data set has a few dozen open cases due a day

# The newly overdue clocks: the running response clocks due at the end of D (the others due then
# were extended, see bench.clocks). Milestones of other clocks may fall on the sweep moment too (a
# stage clock due on D, a level-2 or warning moment at that midnight): bench.clocks marked those
# reached, with escalation rows at the sweep moment, so everything below keys on these clocks.
NEWLY_CLOCKS = (
    "SELECT id FROM case_clocks "
    "WHERE met_at IS NULL AND kind IN ('response', 'reopened') AND due_at = %(due_at)s"
)
NEWLY_CASES = NEWLY_CLOCKS.replace("SELECT id", "SELECT case_id")

RESET_SQL = [
    # What a previous run made at the sweep moment.
    "DELETE FROM events WHERE at = %(now)s AND actor_kind = 'system' AND action IN ('escalate', 'warn') "  # noqa: S608 - constants
    f"AND case_id IN ({NEWLY_CASES})",
    "DELETE FROM outbox WHERE created_at = %(now)s AND dedupe_key LIKE 'clock-%%' "  # noqa: S608 - constants
    f"AND case_id IN ({NEWLY_CASES})",
    f"DELETE FROM escalations WHERE at = %(now)s AND clock_id IN ({NEWLY_CLOCKS})",  # noqa: S608 - constants
    # The newly overdue clocks as they were before any sweep saw them (warned days ago).
    """
    UPDATE case_clocks SET warned_at = warn_from, overdue_at = NULL, level2_at = NULL,
           next_check_at = due_at + interval '1 second'
    WHERE met_at IS NULL AND kind IN ('response', 'reopened') AND due_at = %(due_at)s
      AND (overdue_at IS NOT NULL OR level2_at IS NOT NULL OR warned_at IS DISTINCT FROM warn_from
           OR next_check_at IS DISTINCT FROM due_at + interval '1 second')
    """,
    # Their cases: due soon, not overdue, escalated only as far as their other clocks (stage) say.
    f"""
    UPDATE cases c SET due_soon = true, overdue = false, escalation_level = f.level
    FROM (
        SELECT k.case_id,
               max(CASE WHEN k.level2_at IS NOT NULL THEN 2 WHEN k.overdue_at IS NOT NULL THEN 1 ELSE 0 END)
                   AS level
        FROM case_clocks k
        WHERE k.met_at IS NULL
          AND k.case_id IN ({NEWLY_CASES})
        GROUP BY k.case_id
    ) f
    WHERE f.case_id = c.id
      AND (c.due_soon, c.overdue, c.escalation_level) IS DISTINCT FROM (true, false, f.level)
    """,  # noqa: S608 - constants
]


def _statement_kind(statement: str) -> str:
    words = statement.split()
    if words[0] == "SELECT":
        return "SELECT … FOR UPDATE (claim)" if "FOR UPDATE" in statement else "SELECT (other)"
    if words[0] == "UPDATE":
        return f"UPDATE {words[1]}"
    if words[0] == "INSERT":
        return f"INSERT INTO {words[2]}"
    return words[0]


class Timer:
    """Time spent in SQL statements (engine events) and in RQ enqueues (`rq.Queue.enqueue` wrapped)."""

    def __init__(self, engine):
        from rq import Queue
        from sqlalchemy import event

        self.reset()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        timer = self

        def timed(original, jobs):
            def wrapper(self_, *args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return original(self_, *args, **kwargs)
                finally:
                    timer.rq += time.perf_counter() - t0
                    timer.enqueued += jobs(args, kwargs)

            return wrapper

        Queue.enqueue = timed(Queue.enqueue, lambda a, k: 1)
        Queue.enqueue_many = timed(Queue.enqueue_many, lambda a, k: len(a[0]) if a else len(k["job_datas"]))

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        elapsed = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        self.sql += elapsed
        self.statements += 1
        key = _statement_kind(statement)
        seconds, count = self.by_kind.get(key, (0.0, 0))
        self.by_kind[key] = (seconds + elapsed, count + 1)

    def reset(self) -> None:
        self.by_kind = {}
        self.sql = self.rq = 0.0
        self.statements = self.enqueued = 0


def _reset(engine, params: dict[str, Any]) -> dict[str, int]:
    """Put the newly overdue clocks back; returns how many rows each step touched."""
    from psycopg import sql

    touched = {}
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            for statement in RESET_SQL:
                cur.execute(statement, params)
                touched[" ".join(statement.split()[:3])] = cur.rowcount
        raw.commit()
        if any(touched.values()):  # a re-run: leave no dead rows to the measurement
            raw.autocommit = True
            with raw.cursor() as cur:
                for table in ("case_clocks", "escalations", "events", "outbox", "cases"):
                    cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
            raw.autocommit = False
    # The delivery jobs the last run enqueued (no worker consumes the bench's Redis db 15).
    touched["rq jobs cleared"] = _clear_jobs(_default_queue())
    return touched


def _default_queue():
    from redis import Redis
    from rq import Queue

    return Queue("default", connection=Redis.from_url(common.REDIS_URL))


def _clear_jobs(queue) -> int:
    if queue.connection.connection_pool.connection_kwargs.get("db") != 15:  # pragma: no cover - guard
        raise RuntimeError("the bench clears RQ jobs in Redis db 15 only")
    count = queue.count
    queue.empty()
    return count


def _claim_plan(app, now: datetime) -> tuple[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim query exactly as `sweep._claim` sends it (rolled back)."""
    from sqlalchemy import event

    from supervise.deadlines import sweep as sweep_module
    from supervise.extensions import db

    captured: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FOR UPDATE" in statement:
            captured.append((statement, parameters))

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", capture)
        try:
            rows = sweep_module._claim(db.session, now, sweep_module.BATCH_SIZE)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
            db.session.rollback()
            db.session.remove()
        statement, params = captured[0]
        with engine.connect() as conn:
            cur = conn.connection.driver_connection.cursor()
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            plan = "\n".join(r[0] for r in cur.fetchall())
            conn.rollback()
    return statement, f"(claims {len(rows)} rows)\n{plan}"


def _timed_sweep(app, now: datetime, timer: Timer, profile: bool):
    from supervise.deadlines.services import run_sweep
    from supervise.extensions import db

    with app.app_context():
        timer.reset()
        profiler = cProfile.Profile() if profile else None
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        result = run_sweep(now)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - t0
        db.session.remove()
    return result, seconds, profiler


def _check(engine, params: dict[str, Any], newly: int) -> list[tuple[str, int, int]]:
    """(what, found, expected) after the first sweep."""
    checks = [
        (
            "level-1 escalations of the newly overdue clocks",
            "SELECT count(*) FROM escalations WHERE at = %(now)s AND level = 1 "  # noqa: S608 - constants
            f"AND clock_id IN ({NEWLY_CLOCKS})",
            newly,
        ),
        (
            "level-2 escalations of the newly overdue clocks",
            "SELECT count(*) FROM escalations WHERE at = %(now)s AND level = 2 "  # noqa: S608 - constants
            f"AND clock_id IN ({NEWLY_CLOCKS})",
            0,
        ),
        (
            "outbox rows at the sweep moment (overdue + 2 escalated)",
            "SELECT count(*) FROM outbox WHERE created_at = %(now)s",
            3 * newly,
        ),
        (
            "duplicate outbox dedupe keys",
            "SELECT count(*) FROM (SELECT dedupe_key FROM outbox WHERE dedupe_key IS NOT NULL "
            "GROUP BY dedupe_key HAVING count(*) > 1) d",
            0,
        ),
        (
            "escalation rows added by the sweep (all of them, not only the newly overdue clocks')",
            "SELECT count(*) - %(escalations_before)s FROM escalations",
            newly,
        ),
        (
            "escalate events at the sweep moment",
            "SELECT count(*) FROM events WHERE at = %(now)s AND action = 'escalate'",
            newly,
        ),
        (
            "newly overdue clocks marked overdue",
            "SELECT count(*) FROM case_clocks WHERE met_at IS NULL AND kind IN ('response', 'reopened') "
            "AND due_at = %(due_at)s AND overdue_at = %(now)s AND next_check_at > %(now)s",
            newly,
        ),
        (
            "their cases flagged overdue, not due soon, escalated",
            "SELECT count(*) FROM cases c JOIN case_clocks k ON k.case_id = c.id AND k.met_at IS NULL "
            "AND k.kind IN ('response', 'reopened') AND k.due_at = %(due_at)s "
            "WHERE c.overdue AND NOT c.due_soon AND c.escalation_level >= 1",
            newly,
        ),
        ("clocks still due", "SELECT count(*) FROM case_clocks WHERE next_check_at <= %(now)s", 0),
    ]
    out = []
    with engine.connect() as conn:
        cur = conn.connection.driver_connection.cursor()
        for what, query, expected in checks:
            cur.execute(query, params)
            out.append((what, cur.fetchone()[0], expected))
        conn.rollback()
    return out


def _pending(engine, params) -> tuple[int, int]:
    """Clocks due by the sweep moment, and escalation rows in all."""
    with engine.connect() as conn:
        cur = conn.connection.driver_connection.cursor()
        cur.execute(
            "SELECT (SELECT count(*) FROM case_clocks WHERE next_check_at <= %(now)s), "
            "(SELECT count(*) FROM escalations)",
            params,
        )
        pending, escalations = cur.fetchone()
        conn.rollback()
    return pending, escalations


def _check_migrations(app) -> str:
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from supervise.extensions import db

    with app.app_context():
        head = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config()).get_current_head()
        current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.remove()
    if current != head:
        raise SystemExit(
            f"the bench database is at migration {current}, the code at {head}: regenerate "
            "(python -m bench.generate --cases N --reset, then python -m bench.clocks)"
        )
    return current


@dataclass
class SweepRun:
    cases: int
    newly: int
    seconds: float  # the first sweep
    idle_ms: float  # the second, at the same moment
    sql_seconds: float  # of the first sweep
    failures: int  # checks that failed (the idle sweep's "did nothing" included)


def run(args) -> int:
    return 1 if sweep(args.cases, args.seed, args.newly_overdue, args.profile).failures else 0


def sweep(cases: int, seed: int = 1, newly: int | None = None, profile: bool = False) -> SweepRun:
    """Reset, sweep, check, sweep again (printing as it goes); the figures of the two sweeps."""
    from bench.clocks import ensure
    from bench.queue_latency import code_version

    marker = ensure(cases, seed, newly)
    info = marker["clocks"]
    now = datetime.fromisoformat(info["sweep_now"])
    due_at = datetime.fromisoformat(info["due_at"])
    newly = info["newly_overdue"]
    params = {"now": now.replace(tzinfo=None), "due_at": due_at.replace(tzinfo=None)}

    app = common.make_app()
    revision = _check_migrations(app)
    from supervise.extensions import db

    with app.app_context():
        engine = db.engine
    print(f"code: {code_version()}; bench database at migration {revision}")
    print(
        f"data: {marker['cases']:,} cases (seed {marker['seed']}, generated {marker['now']}), "
        f"{info['clocks']:,} clocks; sweep as of {info['sweep_now']} (00:00 Asia/Shanghai after "
        f"{info['due_day']}); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )

    t0 = time.perf_counter()
    touched = _reset(engine, params)
    print(f"reset in {time.perf_counter() - t0:.1f} s: {touched}")
    pending, params["escalations_before"] = _pending(engine, params)
    if pending != newly:
        raise SystemExit(f"{pending:,} clocks due before the sweep, expected {newly:,}")
    if params["escalations_before"] != info["escalations"]:
        raise SystemExit(
            f"{params['escalations_before']:,} escalation rows after the reset, bench.clocks made "
            f"{info['escalations']:,}: regenerate (python -m bench.generate --reset; python -m bench.clocks)"
        )
    print(f"clocks due before the sweep: {pending:,}")

    statement, plan = _claim_plan(app, now)
    print(
        "\nclaim query (sweep._claim, first batch):\n" + statement + "\n\nEXPLAIN (ANALYZE, BUFFERS) " + plan
    )
    if "ix_case_clocks_next_check" not in plan:
        print("WARNING: the claim does not use ix_case_clocks_next_check")

    timer = Timer(engine)
    load = os.getloadavg()[0]
    result, seconds, profiler = _timed_sweep(app, now, timer, profile)
    print(f"\nfirst sweep ({newly:,} newly overdue among {marker['cases']:,} cases), load {load:.2f}:")
    for line in result.lines():
        print(f"  {line}")
    other = seconds - timer.sql - timer.rq
    print(
        f"  => {seconds:.2f} s  (SQL {timer.sql:.2f} s in {timer.statements} statements, "
        f"RQ enqueue {timer.rq:.2f} s for {timer.enqueued:,} jobs, Python and the rest {other:.2f} s)"
        + ("  [under cProfile]" if profile else "")
    )
    for kind, (secs, count) in sorted(timer.by_kind.items(), key=lambda kv: -kv[1][0]):
        print(f"     SQL {secs:6.2f} s  {kind} ({count:,} statements)")
    first, first_sql = seconds, timer.sql

    failures = 0
    print("\nchecks:")
    for what, found, expected in _check(engine, params, newly):
        ok = found == expected
        failures += not ok
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {found:,} (expected {expected:,})")

    timer.reset()
    load = os.getloadavg()[0]
    again, seconds2, _ = _timed_sweep(app, now, timer, False)
    idle = again.level1 == again.level2 == again.warned == again.overdue == again.notifications == 0
    idle = idle and not again.cases
    failures += not idle
    print(f"\nsecond sweep, same moment, load {load:.2f}:")
    for line in again.lines():
        print(f"  {line}")
    print(f"  => {seconds2 * 1000:.1f} ms  (SQL {timer.sql * 1000:.1f} ms in {timer.statements} statements)")
    print(f"  {'ok  ' if idle else 'FAIL'} the second sweep did nothing")

    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)
        path = common.DATA_DIR / "sweep.prof"
        stats.dump_stats(path)
        print(f"\ncProfile (also in {path}):\n{out.getvalue()}")

    cleared = _clear_jobs(_default_queue())
    print(f"\ncleared {cleared:,} RQ jobs from Redis db 15 (no worker delivers the bench's messages)")
    verdict = "under" if first < GOAL_SECONDS else "OVER"
    print(
        f"\nsweep of {newly:,} newly overdue among {marker['cases']:,} cases: {first:.2f} s "
        f"({verdict} the {GOAL_SECONDS:.0f} s goal); second sweep {seconds2 * 1000:.1f} ms"
    )
    if failures:
        print(f"{failures} check(s) FAILED")
    return SweepRun(marker["cases"], newly, first, seconds2 * 1000, first_sql, failures)


def figures(cases: int, smoke: bool = False) -> list[Figure]:
    """The sweep of 1 % newly overdue (≤ 10 s) and the idle sweep after it (≤ 50 ms); a failed check
    (escalations, outbox rows, events, flags, an idle sweep that did something) raises."""
    from bench.generate import buffer_hits, ensure_smoke, hit_ratio

    if smoke:
        cases = ensure_smoke()["cases"]
    before = buffer_hits()
    run_ = sweep(cases, newly=SMOKE_NEWLY_OVERDUE if smoke else None)
    buffers = hit_ratio(before, buffer_hits())
    if run_.failures:
        raise RuntimeError(f"the sweep's checks failed ({run_.failures}): see its output above")
    command = f"python -m bench.sweep --cases {cases}; {buffers}"
    return [
        Figure(
            name=f"sweep: {run_.newly:,} newly overdue among {run_.cases:,} cases",
            goal=f"≤ {GOAL_SECONDS:g} s",
            measured=f"{run_.seconds:.2f} s (SQL {run_.sql_seconds:.2f} s)",
            ok=run_.seconds <= GOAL_SECONDS,
            note=command,
        ),
        Figure(
            name="sweep: idle (nothing due)",
            goal=f"≤ {IDLE_GOAL_MS:g} ms",
            measured=f"{run_.idle_ms:.1f} ms",
            ok=run_.idle_ms <= IDLE_GOAL_MS,
            note=command,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--newly-overdue", type=int, help="default: 1 %% of the cases")
    parser.add_argument("--profile", action="store_true", help="run the first sweep under cProfile")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
