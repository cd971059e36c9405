"""Give a generated bench database the case clocks the app would have, set-based, for `bench.sweep`.

    python -m bench.clocks [--cases 1000000] [--seed 1] [--newly-overdue N (default 1 % of the cases)]

Runs `bench.generate.generate(cases, seed)` first (which reuses a generated database), then, in one
transaction of `INSERT … SELECT`s:

- every case gets its response clock: running on open cases (kind `reopened` from the reopening
  day on reopened cases, whose first response clock is met), met on responded and closed cases
  (at `responded_at`), ended on rejected and merged ones; received cases also a running stage
  clock, responded cases a running rating clock (the 10-working-day rating window);
- due, warn and level-2 moments come from the app's own `Clocks.schedule` (working-day calendar,
  holidays and 调休 included), computed in Python per (start day, days) and joined in SQL, so a
  running response clock's `due_at` equals its case's `response_due_at`;
- the sweep moment `sweep_now` is 00:00:00 Asia/Shanghai right after a due day D a few days after
  the generation (the midnight run of the 5-minute sweep): every milestone passed by then is
  marked reached (`warned_at` / `overdue_at` / `level2_at`, with an escalation row per level
  reached, and the cases' `due_soon` / `overdue` / `escalation_level` to match), except the
  response clocks due at the end of D: those are **newly overdue** (`overdue_at` NULL,
  `next_check_at` = `sweep_now`), exactly `--newly-overdue` of them. D is the due day in the week
  after generation with at least that many open cases due; the surplus
  cases due on D were granted a 5-working-day extension (延期) the day before (their response clock
  `extended`, an `extension` clock running, the case's `response_due_at` moved), as the app does;
- responded cases whose rating window ran out before the sweep moment were closed by an earlier
  sweep (自动办结: `closed`, their rating clock ended) — without this a D late in the week after
  the generation leaves them due together with the newly overdue clocks;
- records what it did in the database's marker (`"clocks"`), so a second run reuses it.

Not generated: the real-name acknowledgement clock (`ack`, due with the response clock on received
real-name cases: it would add its own escalations to the newly overdue ones), the met stage and
rating clocks of finished cases, and the events and outbox rows of past milestones.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import common

CLOCKS_VERSION = 2  # 2: escalations go up the discipline bodies (issue 11)
NEWLY_OVERDUE_SHARE = 0.01  # of the cases: 10,000 at 1,000,000, the 100,000 at 10,000,000
EXTENSION_DAYS = 5  # the surplus clocks due on D were extended by this many working days
LOOKAHEAD_DAYS = 8  # D is chosen among the due days this close after the generation

# One row per clock: what started it, on which day, for how many working days, and how it ended.
SPEC_SQL = """
CREATE TEMP TABLE bench_clock_spec AS
-- the response clock of every case (the first one, on reopened cases)
SELECT c.id AS case_id, c.org_id, 'response'::text AS kind, c.received_at AS started_at,
       (c.received_at + interval '8 hours')::date AS start_day, %(response_days)s AS days,
       CASE WHEN c.status = 'reopened' THEN c.received_at + (c.rated_at - c.received_at) / 2
            WHEN c.status IN ('responded', 'closed') THEN c.responded_at
            WHEN c.status IN ('rejected', 'merged') THEN c.closed_at END AS met_at,
       CASE WHEN c.status IN ('reopened', 'responded', 'closed') THEN 'met'
            WHEN c.status IN ('rejected', 'merged') THEN 'ended' END AS outcome
FROM cases c
UNION ALL  -- 重办: a fresh response clock from the reopening (the unsatisfied rating)
SELECT c.id, c.org_id, 'reopened', c.rated_at, (c.rated_at + interval '8 hours')::date, %(response_days)s,
       NULL, NULL
FROM cases c WHERE c.status = 'reopened'
UNION ALL  -- awaiting intake: the org's 5 working days to accept, reject or transfer
SELECT c.id, c.org_id, 'stage', c.received_at, (c.received_at + interval '8 hours')::date, %(stage_days)s,
       NULL, NULL
FROM cases c WHERE c.status = 'received'
UNION ALL  -- answered: the citizen's rating window
SELECT c.id, c.org_id, 'rating', c.responded_at, (c.responded_at + interval '8 hours')::date,
       %(rating_days)s, NULL, NULL
FROM cases c WHERE c.status = 'responded'
"""

# The running response clocks due at the end of D: the first N (in a fixed pseudo-random order)
# stay newly overdue, the others were extended the day before.
CHOSEN_SQL = """
CREATE TEMP TABLE bench_due_on_d AS
SELECT s.case_id, s.kind, row_number() OVER (ORDER BY md5(s.case_id::text), s.case_id) <= %(newly)s AS newly
FROM bench_clock_spec s
JOIN bench_sched d ON d.start_day = s.start_day AND d.days = s.days
WHERE s.kind IN ('response', 'reopened') AND s.met_at IS NULL AND d.due_at = %(due_at)s
"""

EXTEND_SQL = """
UPDATE bench_clock_spec s SET met_at = %(extended_at)s, outcome = 'extended'
FROM bench_due_on_d x
WHERE x.case_id = s.case_id AND x.kind = s.kind AND NOT x.newly AND s.met_at IS NULL;

INSERT INTO bench_clock_spec
SELECT s.case_id, s.org_id, 'extension', %(extended_at)s, s.start_day, s.days + %(extension_days)s, NULL, NULL
FROM bench_clock_spec s
JOIN bench_due_on_d x ON x.case_id = s.case_id AND x.kind = s.kind AND NOT x.newly;
"""

# Milestones reached by the time the clock stopped (met) or by the sweep moment (running).
CLOCKS_SQL = """
INSERT INTO case_clocks (case_id, kind, org_id, started_at, start_day, days, due_at, due_provisional,
                         warn_from, level2_from, warned_at, overdue_at, level2_at, next_check_at,
                         met_at, outcome)
SELECT m.case_id, m.kind, m.org_id, m.started_at, m.start_day, m.days, m.due_at, m.due_provisional,
       m.warn_from, m.level2_from, m.warned_at, m.overdue_at, m.level2_at,
       CASE WHEN m.met_at IS NULL THEN least(
           CASE WHEN m.warned_at IS NULL THEN m.warn_from END,
           CASE WHEN m.overdue_at IS NULL THEN m.due_at + interval '1 second' END,
           CASE WHEN m.level2_at IS NULL THEN m.level2_from END) END,
       m.met_at, m.outcome
FROM (
    SELECT r.*,
           CASE WHEN r.overdue_at IS NOT NULL AND r.level2_from <= r.cutoff
                THEN r.level2_from END AS level2_at
    FROM (
        SELECT q.*,
               CASE WHEN q.warn_from <= q.cutoff THEN q.warn_from END AS warned_at,
               CASE WHEN q.due_at + interval '1 second' <= q.cutoff AND q.kind <> 'rating'
                         AND x.case_id IS NULL  -- the newly overdue: not seen by a sweep yet
                    THEN q.due_at + interval '1 second' END AS overdue_at
        FROM (
            SELECT s.*, d.due_at, d.provisional AS due_provisional,
                   CASE WHEN s.kind <> 'rating' THEN d.warn_from END AS warn_from,
                   CASE WHEN s.kind <> 'rating' THEN d.level2_from END AS level2_from,
                   coalesce(s.met_at, %(sweep_now)s) AS cutoff
            FROM bench_clock_spec s
            JOIN bench_sched d ON d.start_day = s.start_day AND d.days = s.days
        ) q
        LEFT JOIN bench_due_on_d x ON x.case_id = q.case_id AND x.kind = q.kind AND x.newly
                                  AND q.met_at IS NULL
    ) r
) m
ORDER BY m.case_id, m.started_at
"""

# The escalation rows of the milestones reached, to the bodies `sweep._escalation_targets` picks
# (DESIGN.md §2a: level 1 the owner when the case is late at a unit, else the body above the owner;
# level 2 the body above that), computed by that very function once per (where the case sits,
# owner) pair into `bench_esc_target`.
ESCALATIONS_SQL = """
INSERT INTO escalations (case_id, clock_id, level, org_id, at)
SELECT k.case_id, k.id, 1, t.level1, k.overdue_at
FROM case_clocks k JOIN cases c ON c.id = k.case_id
JOIN bench_esc_target t ON t.org_id = c.org_id AND t.owner_id = c.owner_org_id
WHERE k.overdue_at IS NOT NULL
UNION ALL
SELECT k.case_id, k.id, 2, t.level2, k.level2_at
FROM case_clocks k JOIN cases c ON c.id = k.case_id
JOIN bench_esc_target t ON t.org_id = c.org_id AND t.owner_id = c.owner_org_id
WHERE k.level2_at IS NOT NULL
ORDER BY 5
"""

# Rating windows that ran out before the sweep moment (answers from the days before the generation,
# when D falls late enough): an earlier sweep closed those cases without a rating (自动办结), as
# `sweep._rating_expired` does; left running they would be due with the newly overdue clocks.
EXPIRED_RATINGS_SQL = """
UPDATE cases c SET status = 'closed', closed_at = k.due_at + interval '1 second',
       updated_at = k.due_at + interval '1 second'
FROM case_clocks k
WHERE k.case_id = c.id AND k.kind = 'rating' AND k.met_at IS NULL
  AND k.due_at + interval '1 second' <= %(sweep_now)s AND c.status = 'responded';

UPDATE case_clocks SET met_at = due_at + interval '1 second', outcome = 'ended', next_check_at = NULL
WHERE kind = 'rating' AND met_at IS NULL AND due_at + interval '1 second' <= %(sweep_now)s;
"""

# The extended cases' copy of their response due moment, then every case's flags from its
# running clocks (only the rows that change are written).
CASES_SQL = """
UPDATE cases c SET response_due_at = k.due_at, due_provisional = k.due_provisional,
       extension_days = %(extension_days)s, extension_count = 1
FROM case_clocks k
WHERE k.case_id = c.id AND k.kind = 'extension' AND k.met_at IS NULL;

UPDATE cases c SET due_soon = f.due_soon, overdue = f.overdue, escalation_level = f.level
FROM (
    SELECT k.case_id,
           bool_or(k.kind IN ('response', 'reopened', 'extension') AND k.warned_at IS NOT NULL
                   AND k.overdue_at IS NULL) AS due_soon,
           bool_or(k.kind IN ('response', 'reopened', 'extension') AND k.overdue_at IS NOT NULL) AS overdue,
           max(CASE WHEN k.level2_at IS NOT NULL THEN 2 WHEN k.overdue_at IS NOT NULL THEN 1 ELSE 0 END)
               AS level
    FROM case_clocks k
    WHERE k.met_at IS NULL
    GROUP BY k.case_id
) f
WHERE f.case_id = c.id
  AND (c.due_soon, c.overdue, c.escalation_level) IS DISTINCT FROM (f.due_soon, f.overdue, f.level);

UPDATE cases SET due_soon = false, overdue = false, escalation_level = 0
WHERE NOT is_open AND (due_soon OR overdue OR escalation_level <> 0);
"""


def _statements(script: str) -> list[str]:
    """psycopg binds parameters server-side: one statement per execute."""
    return [s for s in (part.strip() for part in script.split(";")) if s]


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _schedules(session, first: date, last: date, day_counts: list[int]):
    """(start day, days, due at, provisional, warn from, level-2 from) by the app's `Clocks.schedule`."""
    from supervise.cases.services import policy
    from supervise.deadlines.calendar import get_calendar
    from supervise.deadlines.clocks import Clocks
    from supervise.deadlines.models import ClockKind

    clocks = Clocks(get_calendar(session), policy())
    rows = []
    day = first
    while day <= last:
        for days in day_counts:
            s = clocks.schedule(ClockKind.RESPONSE, day, days)  # every escalating kind: same rules
            rows.append(
                (day, days, _naive(s.due_at), s.due.provisional, _naive(s.warn_from), _naive(s.level2_from))
            )
        day += timedelta(days=1)
    return rows


def _escalation_targets(session, cur) -> list[tuple[int, int, int, int]]:
    """(org the case sits at, owner, level-1 body, level-2 body) for every pair in `cases`."""
    from types import SimpleNamespace

    from supervise.deadlines.sweep import _escalation_targets as targets
    from supervise.orgs.routing import OrgTree

    tree = OrgTree.load(session)
    cur.execute("SELECT DISTINCT org_id, owner_org_id FROM cases")
    rows = []
    for org_id, owner_id in cur.fetchall():
        level1, level2 = targets(tree, SimpleNamespace(org_id=org_id, owner_org_id=owner_id))
        rows.append((org_id, owner_id, level1, level2))
    return rows


def _choose_due_day(cur, gen_now: datetime, newly: int) -> tuple[datetime, int]:
    """The first due moment (end of a day D) after the generation with at least `newly` open cases
    due. The earliest, so that the responded cases' rating windows (10 working days from an answer
    up to 10 days before the generation) have not run out by the sweep moment."""
    cur.execute(
        """
        SELECT response_due_at, count(*) FROM cases
        WHERE is_open AND response_due_at > %s AND response_due_at <= %s
        GROUP BY 1 HAVING count(*) >= %s ORDER BY 1 LIMIT 1
        """,
        (_naive(gen_now), _naive(gen_now + timedelta(days=LOOKAHEAD_DAYS)), newly),
    )
    row = cur.fetchone()
    if row is None:
        raise SystemExit(
            f"no due day in the {LOOKAHEAD_DAYS} days after the generation has {newly:,} open cases due: "
            "generate more cases or ask for fewer newly overdue"
        )
    return row[0], row[1]


def newly_overdue_for(cases: int) -> int:
    return max(1, round(cases * NEWLY_OVERDUE_SHARE))


def add_clocks(info: dict[str, Any], newly: int | None = None) -> dict[str, Any]:
    """Add the clocks to the generated database described by `info` (its marker); returns the
    clocks' description (also stored in the marker). Reuses clocks already added the same way."""
    newly = newly or newly_overdue_for(info["cases"])
    done = info.get("clocks")
    if done and done.get("version") == CLOCKS_VERSION and done.get("newly_overdue") == newly:
        print(
            f"bench database already has its clocks ({done['newly_overdue']:,} newly overdue at "
            f"{done['sweep_now']}): reused"
        )
        return done
    if done:
        raise SystemExit(
            "the bench database has clocks made differently; regenerate: "
            "python -m bench.generate --cases N --reset, then python -m bench.clocks"
        )

    from psycopg import sql

    app = common.make_app()
    from supervise.cases.services import policy
    from supervise.extensions import db

    started = time.perf_counter()
    timings: dict[str, float] = {}
    gen_now = datetime.fromisoformat(info["now"])
    with app.app_context():
        p = policy()
        day_counts = sorted(
            {p.response_days, p.stage_days, p.auto_close_days, p.response_days + EXTENSION_DAYS}
        )
        session = db.session
        pooled = session.get_bind().raw_connection()
        raw = pooled.driver_connection
        raw.autocommit = False
        with raw.cursor() as cur:
            cur.execute("SELECT count(*) FROM case_clocks")
            if cur.fetchone()[0]:
                raise SystemExit(
                    "case_clocks is not empty but the marker records no clocks (a run of something "
                    "else?); regenerate: python -m bench.generate --cases N --reset"
                )
            cur.execute(
                "SELECT min(received_at), max(greatest(received_at, responded_at, rated_at)) FROM cases"
            )
            first, last = cur.fetchone()
            t = time.perf_counter()
            sched = _schedules(
                session,
                (first + timedelta(hours=8)).date() - timedelta(days=1),
                (last + timedelta(hours=8)).date() + timedelta(days=1),
                day_counts,
            )
            session.rollback()
            due_at, due_count = _choose_due_day(cur, gen_now, newly)
            sweep_now = due_at + timedelta(seconds=1)  # 00:00:00 Asia/Shanghai of the next day
            extended_at = due_at - timedelta(hours=36)  # 12:00 the day before D
            params = {
                "response_days": p.response_days,
                "stage_days": p.stage_days,
                "rating_days": p.auto_close_days,
                "extension_days": EXTENSION_DAYS,
                "newly": newly,
                "due_at": due_at,
                "sweep_now": sweep_now,
                "extended_at": extended_at,
            }
            cur.execute("SET LOCAL work_mem = '256MB'")
            cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute(
                "CREATE TEMP TABLE bench_sched (start_day date, days int, due_at timestamp, "
                "provisional bool, "
                "warn_from timestamp, level2_from timestamp, PRIMARY KEY (start_day, days))"
            )
            with cur.copy("COPY bench_sched FROM STDIN") as copy:
                for row in sched:
                    copy.write_row(row)
            esc_targets = _escalation_targets(session, cur)
            session.rollback()
            cur.execute(
                "CREATE TEMP TABLE bench_esc_target (org_id int, owner_id int, level1 int, level2 int, "
                "PRIMARY KEY (org_id, owner_id))"
            )
            with cur.copy("COPY bench_esc_target FROM STDIN") as copy:
                for row in esc_targets:
                    copy.write_row(row)
            cur.execute(SPEC_SQL, params)
            cur.execute(CHOSEN_SQL, params)
            cur.execute(
                "SELECT count(*) FILTER (WHERE newly), count(*) FILTER (WHERE NOT newly) FROM bench_due_on_d"
            )
            chosen, surplus = cur.fetchone()
            if chosen != newly or chosen + surplus != due_count:
                raise RuntimeError(
                    f"chose {chosen} + {surplus} clocks due at {due_at}, expected {newly} of {due_count}"
                )
            for statement in _statements(EXTEND_SQL):
                cur.execute(statement, params)
            cur.execute(
                "ANALYZE bench_sched; ANALYZE bench_clock_spec; ANALYZE bench_due_on_d; "
                "ANALYZE bench_esc_target"
            )
            timings["schedules and clock specs"] = time.perf_counter() - t

            t = time.perf_counter()
            indexes = _secondary_indexes(cur)
            for name, _ in indexes:
                cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            cur.execute(CLOCKS_SQL, params)
            clock_rows = cur.rowcount
            cur.execute(ESCALATIONS_SQL)
            escalation_rows = cur.rowcount
            for _, ddl in indexes:
                cur.execute(ddl)
            timings["insert clocks and escalations"] = time.perf_counter() - t

            t = time.perf_counter()
            close_cases, end_clocks = _statements(EXPIRED_RATINGS_SQL)
            cur.execute(close_cases, params)
            auto_closed = cur.rowcount
            cur.execute(end_clocks, params)
            for statement in _statements(CASES_SQL):
                cur.execute(statement, params)
            timings["cases: flags, extended due moments"] = time.perf_counter() - t

            # Self-checks: what bench.sweep relies on.
            cur.execute(
                """
                SELECT count(*), count(*) FILTER (WHERE kind IN ('response', 'reopened')
                                                   AND due_at = %(due_at)s
                                                   AND overdue_at IS NULL AND met_at IS NULL)
                FROM case_clocks WHERE next_check_at IS NOT NULL AND next_check_at <= %(sweep_now)s
                """,
                params,
            )
            pending, newly_found = cur.fetchone()
            if pending != newly or newly_found != newly:
                cur.execute(
                    "SELECT kind, count(*) FROM case_clocks WHERE next_check_at <= %(sweep_now)s GROUP BY 1",
                    params,
                )
                raise RuntimeError(
                    f"{pending} clocks due by {sweep_now} ({newly_found} newly overdue), expected {newly}: "
                    f"{dict(cur.fetchall())}"
                )
            cur.execute(
                """
                SELECT count(*) FROM cases c
                JOIN case_clocks k ON k.case_id = c.id AND k.met_at IS NULL
                                  AND k.kind IN ('response', 'reopened', 'extension')
                WHERE c.response_due_at <> k.due_at
                """
            )
            mismatched = cur.fetchone()[0]
            if mismatched:
                raise RuntimeError(f"{mismatched} cases' response_due_at differ from their running clock")
            cur.execute("SELECT count(*) FROM cases WHERE is_open")
            open_cases = cur.fetchone()[0]
            cur.execute(
                "SELECT count(DISTINCT case_id) FROM case_clocks "
                "WHERE met_at IS NULL AND kind IN ('response', 'reopened', 'extension')"
            )
            if cur.fetchone()[0] != open_cases:
                raise RuntimeError("not every open case has exactly one running response clock")
            cur.execute(
                "SELECT count(*) FILTER (WHERE due_soon AND NOT overdue), count(*) FILTER (WHERE overdue), "
                "count(*) FILTER (WHERE escalation_level = 1), count(*) FILTER (WHERE escalation_level = 2) "
                "FROM cases WHERE is_open"
            )
            due_soon, overdue, level1, level2 = cur.fetchone()
            cur.execute("SELECT kind, met_at IS NULL, count(*) FROM case_clocks GROUP BY 1, 2 ORDER BY 1, 2")
            by_kind = {f"{k} {'running' if running else 'stopped'}": n for k, running, n in cur.fetchall()}
            cur.execute("DROP TABLE bench_sched, bench_clock_spec, bench_due_on_d, bench_esc_target")

            clocks_info = {
                "version": CLOCKS_VERSION,
                "newly_overdue": newly,
                "due_at": due_at.replace(tzinfo=UTC).isoformat(),
                "due_day": (due_at + timedelta(hours=8)).date().isoformat(),
                "sweep_now": sweep_now.replace(tzinfo=UTC).isoformat(),
                "extended": surplus,
                "auto_closed": auto_closed,
                "clocks": clock_rows,
                "escalations": escalation_rows,
                "by_kind": by_kind,
                "open_due_soon": due_soon,
                "open_overdue": overdue,
                "open_level1": level1,
                "open_level2": level2,
            }
            # The marker is written in the same transaction (COMMENT is transactional): all or nothing.
            common.write_marker(raw, {**info, "clocks": clocks_info})
        raw.commit()

        t = time.perf_counter()
        raw.autocommit = True
        with raw.cursor() as cur:
            for table in ("case_clocks", "escalations", "cases"):
                cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        raw.autocommit = False
        pooled.close()
        timings["vacuum + analyze"] = time.perf_counter() - t
        db.session.remove()
        db.engine.dispose()

    clocks_info["seconds"] = round(time.perf_counter() - started, 1)
    for step, seconds in timings.items():
        print(f"  {seconds:8.1f} s  {step}")
    print(
        f"added {clock_rows:,} clocks and {escalation_rows:,} escalations in {clocks_info['seconds']} s; "
        f"sweep moment {clocks_info['sweep_now']} (00:00 Asia/Shanghai after {clocks_info['due_day']}): "
        f"{newly:,} newly overdue, {surplus:,} others due that day extended, {auto_closed:,} responded "
        "cases closed by an earlier sweep (rating window over)"
    )
    print(f"  clocks: {by_kind}")
    print(f"  open cases: {due_soon:,} due soon, {overdue:,} overdue, level 1 {level1:,}, level 2 {level2:,}")
    return clocks_info


def _secondary_indexes(cur) -> list[tuple[str, str]]:
    from bench.generate import _secondary_indexes as indexes

    return indexes(cur, ("case_clocks", "escalations"))


def ensure(cases: int = 1_000_000, seed: int = 1, newly: int | None = None) -> dict[str, Any]:
    """The generated data set with its clocks (generating and adding whatever is missing); the marker.
    `newly`: the newly overdue clocks, 1 % of the cases by default."""
    from bench.generate import generate

    info = generate(cases, seed)
    if "clocks" not in info:
        info = common.read_marker() or info
    clocks_info = add_clocks(info, newly)
    return {**info, "clocks": clocks_info}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clocks", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--newly-overdue", type=int, help="default: 1 %% of the cases")
    args = parser.parse_args(argv)
    ensure(args.cases, args.seed, args.newly_overdue)
    return 0


if __name__ == "__main__":
    sys.exit(main())
