"""Queue API latency on the generated county: p50/p95/max per role × tab × first/deep page.

    python -m bench.generate --cases 1000000      # once (reused while it holds the same data set)
    python -m bench.queue_latency [--cases N] [--requests 200] [--roles …] [--tabs …] [--json out.json]

Every request goes through the real app and the real HTTP API (`app.test_client()`, in process: the
figures are app + SQL, without a network): Bearer token → flask-smorest argument parsing →
`queue_page` → four selectin loads → `summary_view` → JSON. The first page is
`GET /api/v1/cases?queue=TAB&limit=50`; the deep page is the same after following `next_cursor`
`--depth` pages (20) — or as deep as the queue goes — and measuring repeated requests at that cursor.

The queue's own SQL statement is captured with an engine event listener: its time is reported
next to the request's (column "sql p95"), and `EXPLAIN (ANALYZE, BUFFERS)` is printed for the
slowest shape (all shapes at or over the budget with `--explain all`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import common
from bench.figures import Figure
from supervise.cases.queries import QUEUES

TABS = list(QUEUES)  # every tab the app has; each role measures those it is given
BUDGET_MS = 30.0  # issue 15: p95 ≤ 30 ms for every role × tab, at 1,000,000 and 10,000,000 cases
COUNT_TIMES: dict[str, float] = {}  # role → ms for the staff desk's nine tab counts
QUEUE_SQL = re.compile(r"\b(?:FROM|JOIN) cases\b")  # the statements that read the queue itself


@dataclass
class Row:
    role: str
    username: str
    tab: str
    page: str  # "first" | "deep"
    depth: int  # pages followed before the measured request (0 on the first page)
    items: int  # rows on the measured page
    queue_size: int | None
    n: int
    p50: float
    p95: float
    max: float
    sql_p50: float
    sql_p95: float
    statements: int  # SQL statements per request
    load: float = 0.0  # 1-minute load average when the row finished (2 cores)
    statement: str = field(default="", repr=False)
    params: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def slow(self) -> bool:
        return self.p95 >= BUDGET_MS


class SqlRecorder:
    """Times every statement the app sends; remembers the queue statement of the last request."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.calls: list[tuple[str, Any, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        elapsed = (time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())) * 1000
        self.calls.append((statement, parameters, elapsed))

    def reset(self) -> None:
        self.calls.clear()

    def queue_call(self) -> tuple[str, Any, float]:
        """The request's slowest statement on `cases` (to EXPLAIN), and the time of all of them."""
        calls = [c for c in self.calls if QUEUE_SQL.search(c[0])]
        if not calls:
            raise RuntimeError("no queue statement captured")
        statement, parameters, _ = max(calls, key=lambda c: c[2])
        return statement, parameters, sum(c[2] for c in calls)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(client, recorder, url, headers, requests, warmup, max_seconds):
    for _ in range(warmup):
        response = client.get(url, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code} {response.get_data(as_text=True)[:300]}")
    totals, sqls, statements = [], [], []
    started = time.perf_counter()
    for i in range(requests):
        recorder.reset()
        t0 = time.perf_counter()
        response = client.get(url, headers=headers)
        totals.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}")
        sqls.append(recorder.queue_call()[2])
        statements.append(len(recorder.calls))
        if i >= 30 and time.perf_counter() - started > max_seconds:
            break  # a slow shape: enough samples for a p95, no need to sit through all of them
    statement, params, _ = recorder.queue_call()
    return totals, sqls, statistics.median(statements), statement, params, response.get_json()


def code_version() -> str:
    """The commit measured, and which app files differ from it (the tree may be mid-change)."""
    import subprocess

    def git(*a: str) -> str:
        root = common.BENCH_DIR.parent
        return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout  # noqa: S603, S607

    head = git("log", "-1", "--format=%h %s").strip()
    dirty = [
        line[3:] for line in git("status", "--porcelain").splitlines() if not line[3:].startswith("bench/")
    ]
    return head + (f" + uncommitted: {', '.join(dirty)}" if dirty else "")


def benchmark_users(marker: dict[str, Any]) -> dict[str, str]:
    """The measured roles (DESIGN.md §2a) → their usernames in the generated county (in a province:
    the demo county, the busiest, plus the province commission's supervisor)."""
    office = marker["busiest_office"]
    province = (
        # every case of the province (no owner condition at all)
        {"province supervisor": "bench-province-intake"} if marker.get("counties", 1) > 1 else {}
    )
    return {
        **province,
        # every case in the county (no owner condition; in a province, the county's ~400 orgs)
        "county supervisor": "demo-supervisor",
        # the busiest township's 纪委: one account receives and reviews (its subtree is itself)
        "township office intake+supervisor": f"{office}-intake",
        "township office handler": f"{office}-handler",
        # a small owner: the 派驻组 with its few departments (the planner must not walk the county)
        "stationed group intake+supervisor": "demo-group-1-intake",
        # the unit most service complaints were transferred to: its leader's tabs (unit_org_id)
        "unit leader": f"{marker['busiest_unit']}-leader",
    }


def tab_counts(app, username: str) -> tuple[dict[str, int], float]:
    """Every tab's size for this user, by the staff desk's own `queue_counts` (and how long it took)."""
    from sqlalchemy import select

    from supervise.cases import services
    from supervise.cases.queries import queue_counts
    from supervise.cases.workflow import Actor
    from supervise.extensions import db
    from supervise.staff.models import User

    with app.test_request_context():
        actor = Actor.staff(db.session.scalar(select(User).where(User.username == username)))
        ctx = services.make_context()
        queue_counts(db.session, actor, ctx.clocks, ctx.now)  # warm
        t0 = time.perf_counter()
        counts = queue_counts(db.session, actor, ctx.clocks, ctx.now)
        return counts, (time.perf_counter() - t0) * 1000


def explain(engine, statement: str, params) -> str:
    with engine.connect() as conn:
        cur = conn.connection.driver_connection.cursor()
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
        plan = "\n".join(r[0] for r in cur.fetchall())
        conn.rollback()
    return plan


def render(rows: list[Row]) -> str:
    lines = [
        "| role | tab | page | items | queue size | n | p50 ms | p95 ms | max ms | sql p50 | sql p95 | load | |",  # noqa: E501
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        page = r.page if r.page == "first" else f"deep ({r.depth})"
        size = "" if r.queue_size is None else f"{r.queue_size:,}"
        flag = f"**≥ {BUDGET_MS:g} ms**" if r.slow else ""
        lines.append(
            f"| {r.role} | {r.tab} | {page} | {r.items} | {size} | {r.n} | {r.p50:.1f} | {r.p95:.1f} | "
            f"{r.max:.1f} | {r.sql_p50:.1f} | {r.sql_p95:.1f} | {r.load:.1f} | {flag} |"
        )
    return "\n".join(lines)


def run(args) -> list[Row]:
    if args.cases:
        from bench.generate import generate

        generate(args.cases)  # reused when the bench database holds it already
    marker = common.read_marker() if common.database_exists() else None
    if not marker:
        raise SystemExit("no generated data set in the bench database: run `python -m bench.generate` first")
    if "busiest_office" not in marker:
        raise SystemExit("the bench database predates discipline bodies: python -m bench.generate --reset")
    print(
        f"data set: {marker['cases']:,} cases, seed {marker['seed']}, generated {marker['now']}; "
        f"busiest township 纪委 {marker['busiest_office']} (owns {marker['busiest_office_cases']:,} cases); "
        f"busiest unit {marker['busiest_unit']} ({marker['busiest_unit_cases']:,} transferred to it)"
    )
    from datetime import UTC, datetime

    age = datetime.now(UTC) - datetime.fromisoformat(marker["now"])
    if age.days >= 3:
        print(
            f"warning: the data set is {age.days} days old; open cases have aged into overdue since. "
            "Regenerate with `python -m bench.generate --reset` for figures comparable to the README."
        )
    app = common.make_app()
    from flask_migrate import upgrade
    from sqlalchemy import select
    from sqlalchemy import text as text_

    from supervise.cases.queries import queues_for
    from supervise.cases.workflow import Actor
    from supervise.extensions import db
    from supervise.staff.models import User
    from supervise.staff.services import issue_token

    roles = benchmark_users(marker)
    wanted_roles = [r for r in roles if not args.roles or any(w in r for w in args.roles)]
    tabs_of: dict[str, list[str]] = {}

    with app.app_context():
        if args.upgrade:
            upgrade(directory=app.extensions["migrate"].directory)
        else:
            from alembic.script import ScriptDirectory
            from sqlalchemy import text

            migrate_config = app.extensions["migrate"].migrate.get_config()
            head = ScriptDirectory.from_config(migrate_config).get_current_head()
            current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if current != head:
                raise SystemExit(
                    f"the bench database is at migration {current}, the code at {head}: regenerate "
                    "(python -m bench.generate --cases N --reset) or pass --upgrade to migrate it in place"
                )
        revision = db.session.execute(text_("SELECT version_num FROM alembic_version")).scalar()
        print(f"code: {code_version()}; bench database at migration {revision}")
        engine = db.engine
        tokens = {}
        for role in wanted_roles:
            user = db.session.scalar(select(User).where(User.username == roles[role]))
            tokens[role] = issue_token(db.session, user)
            mine = queues_for(Actor.staff(user))  # a unit's staff have no intake, escalated, rejected
            tabs_of[role] = [t for t in (args.tabs or TABS) if t in mine]
        db.session.commit()
        db.session.remove()
    recorder = SqlRecorder(engine)
    client = app.test_client()

    rows: list[Row] = []
    for role in wanted_roles:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        sizes: dict[str, int] = {}
        if not args.no_count:
            sizes, took = tab_counts(app, roles[role])
            COUNT_TIMES[role] = took
        for tab in tabs_of[role]:
            base = f"/api/v1/cases?queue={tab}&limit={args.limit}"
            first = measure(client, recorder, base, headers, args.requests, args.warmup, args.max_seconds)
            targets = [("first", 0, base, first)]
            # Follow next_cursor --depth pages (or to the last page) for the deep measurement.
            cursor, depth, body = None, 0, first[5]
            while body["next_cursor"] and depth < args.depth:
                cursor = body["next_cursor"]
                depth += 1
                body = client.get(f"{base}&cursor={cursor}", headers=headers).get_json()
            if cursor:
                url = f"{base}&cursor={cursor}"
                deep = measure(client, recorder, url, headers, args.requests, args.warmup, args.max_seconds)
                targets.append(("deep", depth, url, deep))
            size = sizes.get(tab)
            for page, d, _url, (totals, sqls, stmts, statement, params, payload) in targets:
                row = Row(
                    role=role,
                    username=roles[role],
                    tab=tab,
                    page=page,
                    depth=d,
                    items=len(payload["items"]),
                    queue_size=size,
                    n=len(totals),
                    p50=statistics.median(totals),
                    p95=percentile(totals, 0.95),
                    max=max(totals),
                    sql_p50=statistics.median(sqls),
                    sql_p95=percentile(sqls, 0.95),
                    statements=stmts,
                    statement=statement,
                    params=params,
                    load=os.getloadavg()[0],
                )
                rows.append(row)
                print(
                    f"  {role:34} {tab:12} {page:5} {d:2}  n={row.n:3}  p50 {row.p50:7.1f}  "
                    f"p95 {row.p95:7.1f}  max {row.max:7.1f} ms  (sql p95 {row.sql_p95:6.1f})"
                    + ("  << SLOW" if row.slow else ""),
                    flush=True,
                )
    return rows


def figures(cases: int, smoke: bool = False) -> list[Figure]:
    """Per role, the slowest row's p95 (goal ≤ 30 ms for every tab, first and deep page). The smoke
    run also compares the app's pages with `bench.verify`'s plain ORDER BY reference (a difference
    raises); the full run leaves that to `python -m bench.verify`, which takes minutes."""
    from bench.generate import buffer_hits, ensure_smoke, generate, hit_ratio
    from bench.verify import verify

    info = ensure_smoke() if smoke else generate(cases)
    argv = ["--requests", "3", "--warmup", "1", "--depth", "2"] if smoke else ["--requests", "100"]
    before = buffer_hits()
    rows = run(_parser().parse_args([*argv, "--no-count", "--cases", str(info["cases"])]))
    buffers = hit_ratio(before, buffer_hits())
    if smoke and verify(pages=3):
        raise RuntimeError("the queue pages differ from bench.verify's reference: see its output")
    out = []
    for role in dict.fromkeys(r.role for r in rows):
        mine = [r for r in rows if r.role == role]
        worst = max(mine, key=lambda r: r.p95)
        page = worst.page if worst.page == "first" else f"deep {worst.depth}"
        out.append(
            Figure(
                name=f"queue API p95 at {info['cases']:,} cases: {role} ({len(mine)} tab × page rows)",
                goal=f"p95 ≤ {BUDGET_MS:g} ms",
                measured=f"p95 {worst.p95:.1f} ms, worst {worst.tab} {page} (SQL p95 {worst.sql_p95:.1f} ms)",
                ok=worst.p95 <= BUDGET_MS,
                note=f"python -m bench.queue_latency {' '.join(argv)}; {buffers}",
            )
        )
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_latency", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cases", type=int, help="generate this data set first unless the bench database holds it"
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests per row (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests first (default 10)")
    parser.add_argument("--depth", type=int, default=20, help="pages to follow for the deep row (default 20)")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument(
        "--max-seconds", type=float, default=30, help="stop a row after this long (≥ 30 samples); default 30"
    )
    parser.add_argument(
        "--roles",
        nargs="*",
        help="substrings of: county, township office, stationed group, unit leader, handler …",
    )
    parser.add_argument("--tabs", nargs="*", choices=TABS)
    parser.add_argument("--explain", choices=["slowest", "all", "none"], default="slowest")
    parser.add_argument("--no-count", action="store_true", help="skip counting each tab (queue_counts)")
    parser.add_argument("--json", help="also write the rows (with their SQL) to this file")
    parser.add_argument(
        "--upgrade", action="store_true", help="migrate the bench database to the code's head first"
    )
    parser.add_argument("--label", default="", help="a name for this run in the output (e.g. before/after)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    started = time.perf_counter()
    rows = run(args)
    print(f"\n## queue latency {args.label}".rstrip() + f" ({time.perf_counter() - started:.0f} s)\n")
    print(render(rows))
    slow = [r for r in rows if r.slow]
    print(f"\n{len(slow)} of {len(rows)} rows have p95 ≥ {BUDGET_MS:g} ms")
    if COUNT_TIMES:
        print(
            "\nthe staff desk's live tab counts (queue_counts, nine COUNT(*)): "
            + "; ".join(f"{role} {ms:.0f} ms" for role, ms in COUNT_TIMES.items())
        )

    if args.explain != "none" and rows:
        app = common.make_app()
        from supervise.extensions import db

        picked = slow if args.explain == "all" else [max(rows, key=lambda r: r.p95)]
        seen = set()
        with app.app_context():
            for r in picked:
                shape = (r.role, r.tab, r.page)
                if shape in seen:
                    continue
                seen.add(shape)
                print(
                    f"\n### EXPLAIN (ANALYZE, BUFFERS): {r.role} / {r.tab} / {r.page} (p95 {r.p95:.1f} ms)\n"
                )
                print(r.statement.strip())
                print(f"-- params: {r.params}\n")
                print(explain(db.engine, r.statement, r.params))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {"label": args.label, "rows": [asdict(r) for r in rows]},
                fh,
                ensure_ascii=False,
                indent=1,
                default=str,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
