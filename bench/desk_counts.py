"""The staff desk's live tab counts and the queue request's non-SQL time, per role (issue 15, item 4).

    python -m bench.desk_counts [--cases 1000000] [--views 50] [--requests 100] [--json out.json]
    python -m bench.desk_counts --profile --roles county --requests 100   # where the CPU goes

For each role `bench.queue_latency` measures (its `benchmark_users`), on the generated county:

1. **the counts of one page view**: `queue_counts` (every tab of the role, one statement) and, for a
   supervisor or an admin, the header's 督办 badge (`queue_count(…, "escalated")`), as the queue
   page runs them; p50/p95 over `--views` page views. Goal: ≤ 50 ms at 1,000,000 cases.
2. **the check**: every count against a plain `COUNT(*)` of what the tab's pages list (`filtered`,
   the queue page's own selection): equal, or `COUNT_CAP + 1` ("999+") when the tab holds more. The
   plain counts are timed too: they are what every page view cost before the cap.
3. **the queue request's non-SQL time**: `GET /api/v1/cases?queue=in_progress&limit=50` through the
   real app in process (Bearer token, flask-smorest, `queue_page`, `summary_view`, JSON), its SQL
   (the time inside `cursor.execute` of every statement it sends) and the rest; p50/p95 over
   `--requests` requests, and the request's CPU time in this process (on a busy machine the wall
   time waits for a core; the CPU time is the work). Goal: the rest ≤ 10 ms, half the ~20 ms the
   issue measured.

`figures(cases, smoke)` reports the slowest role's counts p95 and non-SQL p50; it makes sure the
bench database holds `cases` cases first (`bench.generate`). `smoke=True` takes a few samples per
role on whatever `cases` it is given (`python -m bench all --smoke` gives a tiny data set): it
checks the counts, never the time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from dataclasses import asdict, dataclass

from bench import common
from bench.figures import Figure
from bench.queue_latency import SqlRecorder, benchmark_users, percentile

COUNTS_GOAL_MS = 50.0
NON_SQL_GOAL_MS = 10.0  # half the ~20 ms issue 15 measured
QUEUE_URL = "/api/v1/cases?queue=in_progress&limit=50"


@dataclass
class RoleFigures:
    role: str
    username: str
    tabs: int
    counts: dict[str, int]
    plain: dict[str, int]  # plain COUNT(*) per tab
    plain_ms: float  # those plain counts, one page view's worth
    counts_p50: float
    counts_p95: float
    request_p50: float
    request_p95: float
    sql_p50: float
    non_sql_p50: float
    non_sql_p95: float
    cpu_p50: float  # the request's CPU time in this process (load on the machine hardly moves it)
    statements: float  # SQL statements per queue request


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _user(username: str):
    from sqlalchemy import select

    from supervise.extensions import db
    from supervise.staff.models import User

    return db.session.scalar(select(User).where(User.username == username))


def _actor(username: str):
    from supervise.cases.workflow import Actor

    return Actor.staff(_user(username))


def check_counts(actor, cap: int | None = None) -> tuple[dict[str, int], dict[str, int], float]:
    """The desk's counts, the plain COUNT(*) of each tab's selection and how long those took; raises
    if a count disagrees (it must equal the plain count, or be cap + 1 when the tab holds more)."""
    from sqlalchemy import func, select

    from supervise.cases import queries, services
    from supervise.extensions import db

    cap = queries.COUNT_CAP if cap is None else cap
    ctx = services.make_context()
    counts = queries.queue_counts(db.session, actor, ctx.clocks, ctx.now, cap=cap)
    t0 = time.perf_counter()
    plain = {}
    for queue in queries.queues_for(actor):
        listed = queries.filtered(db.session, actor, ctx.clocks, ctx.now, queries.Filters(queue=queue))
        plain[queue] = db.session.scalar(select(func.count()).select_from(listed.subquery()))
    took = _ms(t0)
    expected = {queue: min(n, cap + 1) for queue, n in plain.items()}
    if counts != expected:
        raise AssertionError(f"{actor.username}: tab counts {counts} != capped plain COUNTs {expected}")
    return counts, plain, took


def time_counts(actor, views: int) -> list[float]:
    """One page view's counts, `views` times: the tabs, and the 督办 badge where the header shows it."""
    from supervise.cases import queries, services
    from supervise.extensions import db
    from supervise.staff.models import Role

    badge = actor.has(Role.SUPERVISOR, Role.ADMIN)
    times = []
    for _ in range(views + 1):
        t0 = time.perf_counter()
        ctx = services.make_context()
        queries.queue_counts(db.session, actor, ctx.clocks, ctx.now)
        if badge:
            queries.queue_count(db.session, actor, "escalated", None, ctx.now)
        times.append(_ms(t0))
    return times[1:]  # the first warms the plan cache and the pages


def time_requests(client, recorder: SqlRecorder, headers: dict[str, str], requests: int):
    """Wall times, SQL times, CPU times and statements of `requests` queue requests (after 3 untimed)."""
    for _ in range(3):
        client.get(QUEUE_URL, headers=headers)
    totals, sqls, cpus, statements = [], [], [], []
    for _ in range(requests):
        recorder.reset()
        t0, cpu0 = time.perf_counter(), time.thread_time()
        response = client.get(QUEUE_URL, headers=headers)
        totals.append(_ms(t0))
        cpus.append((time.thread_time() - cpu0) * 1000)
        if response.status_code != 200:
            raise RuntimeError(
                f"{QUEUE_URL}: HTTP {response.status_code} {response.get_data(as_text=True)[:300]}"
            )
        sqls.append(sum(c[2] for c in recorder.calls))
        statements.append(len(recorder.calls))
    return totals, sqls, cpus, statements


def profile_requests(client, headers: dict[str, str], requests: int, top: int = 40) -> str:
    """The queue requests under cProfile: the top functions by their own CPU time (the SQL's wait
    is no CPU), so what is left is where the application spends the request."""
    for _ in range(3):
        client.get(QUEUE_URL, headers=headers)
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    for _ in range(requests):
        client.get(QUEUE_URL, headers=headers)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def run(
    views: int, requests: int, roles: list[str] | None = None, profile: bool = False
) -> list[RoleFigures]:
    """Every wanted role's figures, printed as they come; with `profile`, the cProfile output only."""
    marker = common.read_marker() if common.database_exists() else None
    if not marker or "busiest_office" not in marker:
        raise SystemExit("no generated data set in the bench database: run `python -m bench.generate` first")
    app = common.make_app()
    from supervise.cases.queries import queues_for
    from supervise.extensions import db
    from supervise.staff.services import issue_token

    users = benchmark_users(marker)
    wanted = [r for r in users if not roles or any(w in r for w in roles)]
    results = []
    with app.app_context():
        tokens = {role: issue_token(db.session, _user(users[role])) for role in wanted}
        db.session.commit()
        engine = db.engine
    recorder = SqlRecorder(engine)
    client = app.test_client()
    for role in wanted:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        if profile:
            print(f"\n## cProfile: {requests} × GET {QUEUE_URL} as {role} ({users[role]})\n")
            print(profile_requests(client, headers, requests))
            continue
        with app.app_context():
            actor = _actor(users[role])
            counts, plain, plain_ms = check_counts(actor)
            count_times = time_counts(actor, views)
            db.session.remove()
        totals, sqls, cpus, statements = time_requests(client, recorder, headers, requests)
        rest = [t - s for t, s in zip(totals, sqls, strict=True)]
        row = RoleFigures(
            role=role,
            username=users[role],
            tabs=len(queues_for(actor)),
            counts=counts,
            plain=plain,
            plain_ms=plain_ms,
            counts_p50=statistics.median(count_times),
            counts_p95=percentile(count_times, 0.95),
            request_p50=statistics.median(totals),
            request_p95=percentile(totals, 0.95),
            sql_p50=statistics.median(sqls),
            non_sql_p50=statistics.median(rest),
            non_sql_p95=percentile(rest, 0.95),
            cpu_p50=statistics.median(cpus),
            statements=statistics.median(statements),
        )
        results.append(row)
        print(
            f"  {role:34} counts p50 {row.counts_p50:6.1f} p95 {row.counts_p95:6.1f} ms "
            f"(plain COUNTs {row.plain_ms:6.0f} ms) | request p50 {row.request_p50:5.1f}: "
            f"sql {row.sql_p50:5.1f} + rest {row.non_sql_p50:5.1f} ms (p95 {row.non_sql_p95:5.1f}), "
            f"cpu {row.cpu_p50:5.1f} ms, "
            f"{row.statements:g} statements",
            flush=True,
        )
    return results


def render(rows: list[RoleFigures]) -> str:
    lines = [
        "| role | tabs | counts p50 ms | counts p95 ms | plain COUNTs ms | request p50 ms | sql p50 | "
        "non-SQL p50 | non-SQL p95 | CPU p50 | statements | biggest tab |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        tab, size = max(r.plain.items(), key=lambda kv: kv[1])
        lines.append(
            f"| {r.role} | {r.tabs} | {r.counts_p50:.1f} | {r.counts_p95:.1f} | {r.plain_ms:.0f} | "
            f"{r.request_p50:.1f} | {r.sql_p50:.1f} | {r.non_sql_p50:.1f} | {r.non_sql_p95:.1f} | "
            f"{r.cpu_p50:.1f} | {r.statements:g} | {tab} {size:,} (shown {r.counts[tab]:,}) |"
        )
    return "\n".join(lines)


def figures(cases: int, smoke: bool = False) -> list[Figure]:
    from bench.generate import generate

    generate(cases)
    rows = run(views=3, requests=3) if smoke else run(views=50, requests=100)
    command = f"python -m bench.desk_counts --cases {cases}"
    worst = max(rows, key=lambda r: r.counts_p95)
    heaviest = max(rows, key=lambda r: r.non_sql_p50)
    return [
        Figure(
            name="desk: tab counts per page view (worst role)",
            goal=f"≤ {COUNTS_GOAL_MS:g} ms",
            measured=f"p95 {worst.counts_p95:.1f} ms ({worst.role}; plain COUNTs {worst.plain_ms:.0f} ms)",
            ratio=worst.counts_p95 / worst.plain_ms if worst.plain_ms else None,
            ok=None if smoke else worst.counts_p95 <= COUNTS_GOAL_MS,
            note=command + " (ratio: to the plain COUNTs of the same tabs)",
        ),
        Figure(
            name="queue request: non-SQL time (worst role)",
            goal=f"≤ {NON_SQL_GOAL_MS:g} ms (½ of ~20 ms)",
            measured=f"p50 {heaviest.non_sql_p50:.1f} ms of {heaviest.request_p50:.1f} ms, "
            f"CPU {heaviest.cpu_p50:.1f} ms ({heaviest.role})",
            ok=None if smoke else heaviest.non_sql_p50 <= NON_SQL_GOAL_MS,
            note=command + " (wall time less the time inside cursor.execute; the CPU time hardly "
            "depends on the machine's load)",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.desk_counts", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, help="make sure the bench database holds this many cases first")
    parser.add_argument(
        "--views", type=int, default=50, help="page views' counts timed per role (default 50)"
    )
    parser.add_argument(
        "--requests", type=int, default=100, help="queue requests timed per role (default 100)"
    )
    parser.add_argument("--roles", nargs="*", help="substrings of the roles' names (default: all)")
    parser.add_argument("--profile", action="store_true", help="the queue requests under cProfile instead")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.cases:
        from bench.generate import generate

        generate(args.cases)
    started = time.perf_counter()
    rows = run(args.views, args.requests, args.roles, profile=args.profile)
    if args.profile:
        return 0
    print(f"\n## desk counts and queue request overhead ({time.perf_counter() - started:.0f} s)\n")
    print(render(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([asdict(r) for r in rows], fh, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
