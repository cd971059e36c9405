"""Time the weekly report (每周超期件通报) over the generated data set (a county, or a province).

    python -m bench.weekly_report [--cases N] [--week 2026-W47] [--upgrade] [--explain 3] [--profile] [--keep]

The goal (issue): aggregation happens in SQL (GROUP BY), not by loading cases into Python; a report
over 1,000,000 cases builds in under 15 s on PostgreSQL on this machine.

Needs the data set of `bench.generate` with the clocks of `bench.clocks`: with `--cases N` it makes
sure of both (generating what is missing), without it it refuses, naming the commands, when the
bench database lacks them.

1. migrations: refuses a bench database behind the code, or with `--upgrade` migrates it in place
   (`flask_migrate.upgrade`, timed: the report's indexes are built on the existing data);
2. the week: `--week`, or the last complete ISO week before the data set's sweep moment
   (`bench.clocks`; the generation time without clocks) — the week before the generation, whose
   receipts, answers, overdue cases and escalations are all non-trivial;
3. `weekly.compute(session, clocks, week, thresholds, now)` in an app context, timed with
   `time.perf_counter`; every SQL statement timed with engine events and labelled with the figure
   it computes;
4. `services.build(week, now=…)` (compute again, store the snapshot, queue the mail rows, commit,
   enqueue into Redis db 15), timed; the stored snapshot must equal what `compute` returned; the
   bench's reports, their outbox rows and their RQ jobs are deleted afterwards (`--keep`: not);
5. checks: the whole tree's figures against plain SQL written independently of the app (received,
   accepted, answered on time / late, overdue at the week's end and the listed rows, working days
   overdue via `calendar_days`, due soon, escalations, reopened, rated, satisfied), a subtree's
   roll-up against a path-prefix count, the trend's last point; any difference fails the run;
6. `EXPLAIN (ANALYZE, BUFFERS)` of the `--explain` slowest statements of the timed `compute`.

`--profile` runs `compute` once more under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import common
from bench.figures import Figure

GOAL_SECONDS = 15.0
BENCH_REASON = "bench.weekly_report"  # marks the reports this script stores (and deletes)

# What each statement of `compute` computes, recognised from its SQL (first match wins).
FIGURES = [
    ("tracking_no", "overdue list (rows)"),
    ("events.action", "accepted"),
    ("case_clocks.outcome", "responded on time / late"),
    ("escalations.level = ", "escalated level 1 / 2"),
    ("case_clocks.due_at >= ", "due soon"),
    ("case_clocks.due_at < ", "open overdue at week end"),
    ("case_clocks.kind = ", "reopened"),
    ("cases.rated_at", "rated / satisfied"),
    ("cases.received_at >= ", "received"),
]


def figure_of(statement: str) -> str:
    if statement.rstrip().endswith("FROM orgs"):
        return "org tree"
    for needle, name in FIGURES:
        if needle in statement:
            return name
    words = statement.split()
    return " ".join(words[:3]) if words[0] != "INSERT" else f"INSERT INTO {words[2]}"


class Recorder:
    """Every statement's SQL time (planning included), labelled; the call chain inside weekly.py."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.calls: list[dict[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        elapsed = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        chain = []
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename.endswith(os.path.join("reports", "weekly.py")):
                chain.append(frame.f_code.co_name)
            frame = frame.f_back
        label = figure_of(statement)
        if "_trend_point" in chain:
            label = f"trend: {label} ({_week_of(parameters)})"
        self.calls.append(
            {
                "label": label,
                "statement": statement,
                "parameters": parameters,
                "seconds": elapsed,
                "rows": cursor.rowcount,
                "executemany": executemany,
                "in_compute": "compute" in chain,
            }
        )

    def reset(self) -> None:
        self.calls = []

    @property
    def sql(self) -> float:
        return sum(c["seconds"] for c in self.calls)


def _week_of(parameters: Any) -> str:
    """The week a trend statement is about: the one whose Sunday the latest bound falls on."""
    from supervise.deadlines.calendar import local_date
    from supervise.reports.weekly import Week

    moments = [v for v in (parameters or {}).values() if isinstance(v, datetime)]
    if not moments:
        return "?"
    latest = max(moments)
    latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
    return Week.containing(local_date(latest - timedelta(seconds=1))).label


# -- set-up ------------------------------------------------------------------------------------------


def _migrate(app, upgrade_in_place: bool) -> str:
    from alembic.script import ScriptDirectory
    from flask_migrate import upgrade
    from sqlalchemy import text

    from supervise.extensions import db

    with app.app_context():
        head = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config()).get_current_head()
        current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.remove()
        if current != head:
            if not upgrade_in_place:
                raise SystemExit(
                    f"the bench database is at migration {current}, the code at {head}: pass --upgrade "
                    "to migrate it in place, or regenerate (python -m bench.generate --cases N --reset, "
                    "then python -m bench.clocks)"
                )
            t0 = time.perf_counter()
            upgrade(directory=app.extensions["migrate"].directory)
            took = time.perf_counter() - t0
            print(f"migrated the bench database {current} → {head} in place in {took:.1f} s")
            with db.engine.connect() as conn:  # the new indexes are there; fresh statistics too
                raw = conn.connection.driver_connection
                with raw.cursor() as cur:
                    for table in ("cases", "events", "case_clocks", "escalations"):
                        cur.execute(f"ANALYZE {table}")
                raw.commit()
            current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
            db.session.remove()
    return current


def _default_week(marker: dict[str, Any]):
    from supervise.reports.weekly import Week

    info = marker.get("clocks") or {}
    now = datetime.fromisoformat(info.get("sweep_now") or marker["now"])
    return Week.last_complete(now), now


def _cleanup(engine) -> dict[str, int]:
    """Delete the reports this script stored, their outbox rows and their RQ jobs (Redis db 15)."""
    from redis import Redis
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from supervise.notify.outbox import job_id

    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute("SELECT id FROM weekly_reports WHERE reason = %s", (BENCH_REASON,))
            reports = [r[0] for r in cur.fetchall()]
            outbox: list[int] = []
            for report_id in reports:
                cur.execute(
                    "DELETE FROM outbox WHERE kind = 'weekly_report' AND dedupe_key LIKE %s RETURNING id",
                    (f"weekly-report-{report_id}-org-%",),
                )
                outbox += [r[0] for r in cur.fetchall()]
            cur.execute("DELETE FROM weekly_reports WHERE reason = %s", (BENCH_REASON,))
        raw.commit()
    redis = Redis.from_url(common.REDIS_URL)
    if redis.connection_pool.connection_kwargs.get("db") != 15:  # pragma: no cover - a guard
        raise RuntimeError("the bench deletes RQ jobs in Redis db 15 only")
    jobs = 0
    for message_id in outbox:
        try:
            Job.fetch(job_id(message_id), connection=redis).delete()
            jobs += 1
        except NoSuchJobError:
            pass
    return {"reports": len(reports), "outbox rows": len(outbox), "rq jobs": jobs}


# -- the measurements ---------------------------------------------------------------------------------


def _timed_compute(app, week, now: datetime, recorder: Recorder, profile: bool = False):
    from supervise.cases.services import make_context
    from supervise.extensions import db
    from supervise.reports.services import thresholds
    from supervise.reports.weekly import compute

    with app.app_context():
        ctx = make_context(now)  # the calendar (cached per process after the first call)
        limits = thresholds()
        db.session.rollback()
        recorder.reset()
        profiler = cProfile.Profile() if profile else None
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        data = compute(db.session, ctx.clocks, week, limits, ctx.now)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - t0
        calls = list(recorder.calls)
        db.session.rollback()
        db.session.remove()
        return data, seconds, calls, profiler, ctx.clocks


def _timed_build(app, week, now: datetime, recorder: Recorder):
    from sqlalchemy import text

    from supervise.extensions import db
    from supervise.reports import services

    with app.app_context():
        recorder.reset()
        t0 = time.perf_counter()
        report = services.build(week, now=now, reason=BENCH_REASON)
        seconds = time.perf_counter() - t0
        calls = list(recorder.calls)
        report_id, version = report.id, report.version
        stored, size = db.session.execute(
            text("SELECT data::text, length(data::text) FROM weekly_reports WHERE id = :id"),
            {"id": report_id},
        ).one()
        mails = db.session.execute(
            text("SELECT count(*) FROM outbox WHERE dedupe_key LIKE :k"),
            {"k": f"weekly-report-{report_id}-org-%"},
        ).scalar()
        db.session.remove()
    return (
        seconds,
        calls,
        {"id": report_id, "version": version, "data": json.loads(stored), "bytes": size, "mails": mails},
    )


# -- independent checks -------------------------------------------------------------------------------

RESPONSE = "('response', 'reopened', 'extension')"
RUNNING_AT_END = (
    f"k.kind IN {RESPONSE} AND k.started_at < %(end)s AND (k.met_at IS NULL OR k.met_at >= %(end)s)"
)
CHECK_SQL = {
    "received": "SELECT count(*) FROM cases WHERE received_at >= %(start)s AND received_at < %(end)s",
    "accepted": "SELECT count(DISTINCT case_id) FROM events WHERE action = 'accept' "
    "AND at >= %(start)s AND at < %(end)s",
    "responded_on_time": f"SELECT count(*) FROM case_clocks WHERE kind IN {RESPONSE} AND outcome = 'met' "  # noqa: S608
    "AND met_at >= %(start)s AND met_at < %(end)s AND met_at <= due_at",
    "responded_late": f"SELECT count(*) FROM case_clocks WHERE kind IN {RESPONSE} AND outcome = 'met' "  # noqa: S608
    "AND met_at >= %(start)s AND met_at < %(end)s AND met_at > due_at",
    "open_overdue": f"SELECT count(DISTINCT case_id) FROM case_clocks k WHERE {RUNNING_AT_END} "  # noqa: S608
    "AND k.due_at < %(end)s",
    "overdue_working_days": f"""
        WITH d AS (SELECT g::date AS day FROM generate_series(%(first_day)s::date, %(sunday)s::date,
                                                               interval '1 day') g),
             w AS (SELECT d.day, CASE WHEN c.kind = 'workday' THEN 1 WHEN c.kind = 'holiday' THEN 0
                                      WHEN extract(isodow FROM d.day) < 6 THEN 1 ELSE 0 END AS working
                   FROM d LEFT JOIN calendar_days c ON c.day = d.day),
             after AS (SELECT day, coalesce(sum(working) OVER (ORDER BY day DESC
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS n FROM w)
        SELECT coalesce(sum(a.n), 0) FROM case_clocks k
        JOIN after a ON a.day = (k.due_at + interval '8 hours')::date
        WHERE {RUNNING_AT_END} AND k.due_at < %(end)s
    """,  # noqa: S608 - constants
    "due_soon": f"SELECT count(DISTINCT case_id) FROM case_clocks k WHERE {RUNNING_AT_END} "  # noqa: S608
    "AND k.due_at >= %(end)s AND k.due_at <= %(horizon)s",
    "escalated_level1": "SELECT count(*) FROM escalations WHERE level = 1 "
    "AND at >= %(start)s AND at < %(end)s",
    "escalated_level2": "SELECT count(*) FROM escalations WHERE level = 2 "
    "AND at >= %(start)s AND at < %(end)s",
    "reopened": "SELECT count(*) FROM case_clocks WHERE kind = 'reopened' "
    "AND started_at >= %(start)s AND started_at < %(end)s",
    "rated": "SELECT count(*) FROM cases WHERE rating IS NOT NULL "
    "AND rated_at >= %(start)s AND rated_at < %(end)s",
    "satisfied": "SELECT count(*) FROM cases WHERE rating IN ('satisfied', 'basically_satisfied') "
    "AND rated_at >= %(start)s AND rated_at < %(end)s",
}
OVERDUE_CLOCKS_SQL = (
    f"SELECT count(*), min(due_at) FROM case_clocks k WHERE {RUNNING_AT_END} AND k.due_at < %(end)s"  # noqa: S608
)
# A township's 纪委 has no body below it: its row's total is what it owns (DESIGN.md §2a: the
# report counts cases for their owning body, wherever they sit).
OFFICE_RECEIVED_SQL = (
    "SELECT count(*) FROM cases c JOIN orgs o ON o.id = c.owner_org_id "
    "WHERE o.code = %(code)s AND c.received_at >= %(start)s AND c.received_at < %(end)s"
)
BODIES_SQL = "SELECT count(*) FROM orgs WHERE kind IN ('commission', 'discipline_office', 'stationed_group')"


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _checks(engine, week, clocks, data: dict[str, Any], marker: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(what, the report's figure, plain SQL's) for the whole tree and a few more."""
    from supervise.deadlines.calendar import end_of_day_utc
    from supervise.reports.weekly import DUE_SOON_DAYS, Week

    root = next(o for o in data["orgs"] if o["parent_id"] is None)
    # The due-soon horizon is the app calendar's (3 working days after Sunday, end of that day).
    horizon = end_of_day_utc(clocks.calendar.add_working_days(week.sunday, DUE_SOON_DAYS).day)
    params = {
        "start": _naive(week.start),
        "end": _naive(week.end),
        "horizon": _naive(horizon),
        "sunday": week.sunday,
    }
    out = []
    with engine.connect() as conn:
        cur = conn.connection.driver_connection.cursor()
        cur.execute(OVERDUE_CLOCKS_SQL, params)
        overdue_clocks, first_due = cur.fetchone()
        params["first_day"] = (first_due + timedelta(hours=8)).date() if first_due else week.sunday
        for name, query in CHECK_SQL.items():
            cur.execute(query, params)
            out.append((f"whole tree: {name}", root["total"][name], cur.fetchone()[0]))
        out.append(
            (
                "overdue list: rows listed = overdue response clocks",
                len(data["overdue_cases"]),
                overdue_clocks,
            )
        )
        own_sum = {
            name: sum(o["own"][name] for o in data["orgs"])
            for name in ("received", "open_overdue", "responded_late")
        }
        for name, value in own_sum.items():
            out.append(
                (f"roll-up: sum of every org's own {name} = the root's total", value, root["total"][name])
            )
        cur.execute(BODIES_SQL)
        out.append(("rows: one per discipline body", len(data["orgs"]), cur.fetchone()[0]))
        office = marker.get("busiest_office", "bench-town-01-jw")
        row = next((o for o in data["orgs"] if o["code"] == office), None)
        cur.execute(OFFICE_RECEIVED_SQL, {**params, "code": office})
        out.append(
            (
                f"body {office}: received (owner_org_id)",
                None if row is None else row["total"]["received"],
                cur.fetchone()[0],
            )
        )
        last = root["trend"][-1]
        out.append(("trend: last point's week", last["week"], week.label))
        out.append(
            (
                "trend: last point's open_overdue = the headline",
                last["open_overdue"],
                root["total"]["open_overdue"],
            )
        )
        first = root["trend"][0]
        first_week = Week.parse(first["week"])
        cur.execute(CHECK_SQL["open_overdue"], {"end": _naive(first_week.end)})
        out.append(
            (f"trend: open_overdue at the end of {first['week']}", first["open_overdue"], cur.fetchone()[0])
        )
        conn.rollback()
    return out


def _explain(engine, call: dict[str, Any]) -> str:
    with engine.connect() as conn:
        cur = conn.connection.driver_connection.cursor()
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + call["statement"], call["parameters"])
        plan = "\n".join(r[0] for r in cur.fetchall())
        conn.rollback()
    return plan


# -- output -----------------------------------------------------------------------------------------


def _shown(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _statement_table(calls: list[dict[str, Any]], total: float) -> str:
    lines = [f"  {'ms':>8}  {'rows':>7}  statement", f"  {'-' * 8}  {'-' * 7}  {'-' * 40}"]
    for c in sorted(calls, key=lambda c: -c["seconds"]):
        lines.append(f"  {c['seconds'] * 1000:8.1f}  {c['rows']:7,}  {c['label']}")
    sql = sum(c["seconds"] for c in calls)
    lines.append(
        f"  => SQL {sql:.2f} s in {len(calls)} statements; Python and the rest {total - sql:.2f} s "
        f"(of {total:.2f} s)"
    )
    return "\n".join(lines)


def _headline(data: dict[str, Any]) -> str:
    from supervise.reports.weekly import COUNTS, LABELS

    root = next(o for o in data["orgs"] if o["parent_id"] is None)
    total = root["total"]
    lines = [f"  {root['name']} ({root['code']}), whole tree of {len(data['orgs'])} orgs:"]
    for name in (*COUNTS, "on_time_rate", "satisfaction_rate"):
        value = total[name]
        shown = "–" if value is None else (f"{value:.2%}" if isinstance(value, float) else f"{value:,}")
        lines.append(f"    {name:<22} {shown:>10}   {LABELS[name]}")
    lines.append(f"    flags: {', '.join(root['flags']) or 'none'}")
    lines.append(
        "    trend (open overdue at week end / on-time rate): "
        + "; ".join(
            f"{p['week']} {p['open_overdue']:,}/"
            + ("–" if p["on_time_rate"] is None else f"{p['on_time_rate']:.1%}")
            for p in root["trend"]
        )
    )
    flagged = sum(1 for o in data["orgs"] if o["flags"])
    lines.append(f"  orgs flagged 需关注: {flagged} of {len(data['orgs'])}")
    lines.append(f"  overdue cases listed: {len(data['overdue_cases']):,}")
    return "\n".join(lines)


@dataclass
class ReportRun:
    cases: int
    week: str
    compute_seconds: float
    build_seconds: float
    snapshot_bytes: int
    overdue_rows: int
    checks: int
    failures: int


def run(args) -> int:
    if args.cases:
        from bench.clocks import ensure

        ensure(args.cases)
    return 1 if report(args.week, args.upgrade, args.explain, args.profile, args.keep).failures else 0


def report(
    week_label: str | None = None,
    upgrade: bool = False,
    explain: int = 3,
    profile: bool = False,
    keep: bool = False,
) -> ReportRun:
    """Compute and build the week's report on the bench database (printing as it goes), check its
    figures against plain SQL; the timings and how many checks failed."""
    from bench.queue_latency import code_version

    marker = common.read_marker() if common.database_exists() else None
    if not marker or "clocks" not in marker:
        raise SystemExit(
            "the bench database lacks the data set or its clocks: python -m bench.generate --cases 1000000, "
            "then python -m bench.clocks"
        )
    app = common.make_app()
    revision = _migrate(app, upgrade)
    from supervise.extensions import db
    from supervise.reports.weekly import Week

    with app.app_context():
        engine = db.engine
    week, now = _default_week(marker)
    if week_label:
        week = Week.parse(week_label)
    if week.end > now:
        raise SystemExit(
            f"{week.label} ends after the data set's moment {now.isoformat()}: pick an earlier week"
        )
    info = marker["clocks"]
    print(f"code: {code_version()}; bench database at migration {revision}")
    print(
        f"data: {marker['cases']:,} cases (seed {marker['seed']}, generated {marker['now']}), "
        f"{info['clocks']:,} clocks, {info['escalations']:,} past escalations; "
        f"report as of {now.isoformat()} "
        f"(the sweep moment); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    bounds = f"{week.start.isoformat()} – {week.end.isoformat()}"
    print(f"week: {week.label} ({week.monday} – {week.sunday}, {bounds})")

    cleaned = _cleanup(engine)
    if any(cleaned.values()):
        print(f"removed what an earlier run left: {cleaned}")

    recorder = Recorder(engine)
    load = os.getloadavg()[0]
    data, seconds, calls, _, clocks = _timed_compute(app, week, now, recorder)
    print(f"\ncompute(), load {load:.2f}: {seconds:.2f} s")
    print(_statement_table(calls, seconds))
    print("\nheadline figures:")
    print(_headline(data))

    load = os.getloadavg()[0]
    build_seconds, build_calls, stored = _timed_build(app, week, now, recorder)
    print(
        f"\nservices.build(), load {load:.2f}: {build_seconds:.2f} s — report {stored['id']} version "
        f"{stored['version']}, snapshot {stored['bytes'] / 1e6:.1f} MB of JSON, {stored['mails']} mail rows"
    )
    by_label: dict[str, list[float]] = {}
    for c in build_calls:
        key = "compute()'s statements" if c["in_compute"] else c["label"]
        by_label.setdefault(key, []).append(c["seconds"])
    for key, values in sorted(by_label.items(), key=lambda kv: -sum(kv[1])):
        print(f"  SQL {sum(values) * 1000:8.1f} ms  {key} ({len(values)} statements)")
    sql = sum(c["seconds"] for c in build_calls)
    rest = build_seconds - sql
    print(f"  => SQL {sql:.2f} s in {len(build_calls)} statements; Python and the rest {rest:.2f} s")

    failures, checks = 0, 1
    print("\nchecks (the report's figure vs plain SQL):")
    same = stored["data"] == json.loads(json.dumps(data))
    failures += not same
    print(f"  {'ok  ' if same else 'FAIL'} the stored snapshot equals compute()'s result")
    for what, found, expected in _checks(engine, week, clocks, data, marker):
        ok = found == expected
        failures += not ok
        checks += 1
        print(
            f"  {'ok  ' if ok else 'FAIL'} {what}: {_shown(found)}"
            + ("" if ok else f" (plain SQL: {_shown(expected)})")
        )

    if explain:
        for call in sorted(calls, key=lambda c: -c["seconds"])[:explain]:
            print(f"\n--- {call['label']}: {call['seconds'] * 1000:.0f} ms in compute()\n{call['statement']}")
            print(f"parameters: {call['parameters']}")
            print("\nEXPLAIN (ANALYZE, BUFFERS)\n" + _explain(engine, call))

    if profile:
        _, pseconds, _, profiler, _ = _timed_compute(app, week, now, recorder, profile=True)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
        path = common.DATA_DIR / "weekly_report.prof"
        stats.dump_stats(path)
        print(f"\ncompute() under cProfile: {pseconds:.2f} s (also in {path})\n{out.getvalue()}")

    if not keep:
        print(f"\ncleaned up: {_cleanup(engine)}")

    verdict = "under" if build_seconds < GOAL_SECONDS else "OVER"
    print(
        f"\nweekly report {week.label} over {marker['cases']:,} cases: compute {seconds:.2f} s, "
        f"build {build_seconds:.2f} s ({verdict} the {GOAL_SECONDS:.0f} s goal)"
    )
    if failures:
        print(f"{failures} check(s) FAILED")
    return ReportRun(
        cases=marker["cases"],
        week=week.label,
        compute_seconds=seconds,
        build_seconds=build_seconds,
        snapshot_bytes=stored["bytes"],
        overdue_rows=len(data["overdue_cases"]),
        checks=checks,
        failures=failures,
    )


def figures(cases: int, smoke: bool = False) -> list[Figure]:
    """The weekly report's build (≤ 15 s) over the whole tree — a province's report is one
    province-wide snapshot, each county's view a slice of it — with every figure checked against
    plain SQL (a difference raises)."""
    from bench.clocks import ensure
    from bench.generate import buffer_hits, ensure_smoke, hit_ratio
    from bench.sweep import SMOKE_NEWLY_OVERDUE

    if smoke:
        cases = ensure_smoke()["cases"]
    ensure(cases, newly=SMOKE_NEWLY_OVERDUE if smoke else None)
    before = buffer_hits()
    run_ = report(explain=0 if smoke else 3)
    buffers = hit_ratio(before, buffer_hits())
    if run_.failures:
        raise RuntimeError(
            f"{run_.failures} of the weekly report's {run_.checks} checks failed: see its output"
        )
    return [
        Figure(
            name=f"weekly report {run_.week}: services.build over {run_.cases:,} cases",
            goal=f"≤ {GOAL_SECONDS:g} s",
            measured=f"{run_.build_seconds:.2f} s (compute {run_.compute_seconds:.2f} s; "
            f"{run_.overdue_rows:,} overdue rows, {run_.snapshot_bytes / 1e6:.1f} MB snapshot)",
            ok=run_.build_seconds <= GOAL_SECONDS,
            note=f"python -m bench.weekly_report --week {run_.week} ({run_.checks} checks against plain "
            f"SQL); {buffers}",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.weekly_report", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cases",
        type=int,
        help="generate this data set and its clocks first unless the bench database holds them",
    )
    parser.add_argument("--week", help="YYYY-Www (default: the last complete week before the sweep moment)")
    parser.add_argument(
        "--upgrade", action="store_true", help="migrate the bench database to the code's head first"
    )
    parser.add_argument(
        "--explain", type=int, default=3, help="EXPLAIN (ANALYZE, BUFFERS) the N slowest statements"
    )
    parser.add_argument("--profile", action="store_true", help="run compute() once more under cProfile")
    parser.add_argument("--keep", action="store_true", help="leave the stored report and its outbox rows")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
