"""Do the app's queue pages hold the right cases, in the right order, at 1 000 000 cases?

    python -m bench.verify [--cases N] [--pages 10]

For every benchmark role and tab, pages through `supervise.cases.queries.queue_page` (the fast,
merged per-priority reading) and through a reference written straight from the queue definitions
(DESIGN.md §3 and §2a: status sets, open states, the sweep's flags, owner scope by path, a unit's
transferred cases without accusations) as one plain
`ORDER BY priority, response_due_at, id` with the same keyset — slow, but obviously right — and
compares the tracking numbers page by page.
"""

from __future__ import annotations

import argparse
import sys

from bench import common

DONE = {"responded", "closed", "rejected", "merged"}
STATUS_TABS = {
    "intake": {"received"},
    "dispatch": {"accepted"},
    "in_progress": {"assigned", "processing", "reopened"},
    "review": {"feedback_pending_review"},
    "done": DONE,
}


def reference_page(session, actor, clocks, now, tab, cursor, limit):
    """The queue as first written: status IN (…), one ORDER BY, keyset on (priority, due, id) — for a
    unit on (rank, due, id), where real-name and anonymous cases share one rank after the ones a
    citizen just answered (its order must not tell it who gave their name)."""
    from datetime import timedelta

    from sqlalchemy import case, literal, select, tuple_

    from supervise.cases.models import Case
    from supervise.cases.states import OPEN_STATES
    from supervise.dbtypes import UTCDateTime
    from supervise.orgs.models import Org

    open_ = [s.value for s in OPEN_STATES]
    stmt = select(Case)
    if not actor.at_body:  # a unit: what was transferred to it, never a 检举控告 case
        stmt = stmt.where(Case.unit_org_id == actor.org_id, Case.kind.is_not(None), Case.kind != "accusation")
    elif actor.has("supervisor", "admin"):  # what the bodies at or below theirs own
        stmt = stmt.join(Org, Org.id == Case.owner_org_id).where(
            Org.path.startswith(actor.org_path, autoescape=True)
        )
    else:
        stmt = stmt.where(Case.owner_org_id == actor.org_id)
    if tab == "dispatch" and not actor.at_body:  # 待交办 at a unit: no handler picked yet
        stmt = stmt.where(Case.org_id == actor.org_id, Case.status == "assigned", Case.assignee_id.is_(None))
    elif tab in STATUS_TABS:
        stmt = stmt.where(Case.status.in_(sorted(STATUS_TABS[tab])))
    elif tab == "overdue":  # the flags the deadline sweep sets
        stmt = stmt.where(Case.status.in_(open_), Case.overdue.is_(True))
    elif tab == "due_soon":
        stmt = stmt.where(Case.status.in_(open_), Case.due_soon.is_(True), Case.overdue.is_(False))
    elif tab == "rejected":  # rejections still reversible (21 calendar days cover 10 working days)
        stmt = stmt.where(Case.status == "rejected", Case.closed_at >= now - timedelta(days=21))
    elif tab == "escalated":
        stmt = stmt.where(Case.status.in_(open_), Case.escalation_level > 0)
    elif tab == "mine":
        stmt = stmt.where(Case.assignee_id == actor.user_id, Case.status.in_(open_))
    rank = Case.priority if actor.at_body else case((Case.priority == -1, -1), else_=1)
    if cursor:
        after_rank, due, case_id = cursor
        stmt = stmt.where(
            tuple_(rank, Case.response_due_at, Case.id)
            > tuple_(literal(after_rank), literal(due, UTCDateTime), literal(case_id))
        )
    stmt = stmt.add_columns(rank).order_by(rank, Case.response_due_at, Case.id).limit(limit + 1)
    rows = list(session.execute(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return [c for c, _ in rows], ((last[1], last[0].response_due_at, last[0].id) if last else None)


def verify(pages: int, limit: int = 50) -> int:
    marker = common.read_marker()
    if not marker:
        raise SystemExit("no generated data set in the bench database: run `python -m bench.generate` first")
    app = common.make_app()
    from sqlalchemy import select

    from bench.queue_latency import benchmark_users
    from supervise.cases import queries, services
    from supervise.cases.workflow import Actor
    from supervise.extensions import db
    from supervise.staff.models import User

    usernames = list(benchmark_users(marker).values())
    failures = 0
    with app.test_request_context():
        ctx = services.make_context()
        for username in usernames:
            actor = Actor.staff(db.session.scalar(select(User).where(User.username == username)))
            for tab in queries.queues_for(actor):
                app_cursor, ref_cursor, compared, same = None, None, 0, True
                for page in range(pages):
                    got, app_cursor = queries.queue_page(
                        db.session,
                        actor,
                        ctx.clocks,
                        ctx.now,
                        queries.Filters(queue=tab),
                        cursor=app_cursor,
                        limit=limit,
                    )
                    want, ref_cursor = reference_page(
                        db.session, actor, ctx.clocks, ctx.now, tab, ref_cursor, limit
                    )
                    if [c.tracking_no for c in got] != [c.tracking_no for c in want] or (
                        (app_cursor is None) != (ref_cursor is None)
                    ):
                        same = False
                        print(f"DIFF {username} {tab} page {page + 1}")
                        break
                    compared += len(got)
                    if app_cursor is None:
                        break
                failures += not same
                print(
                    f"{'ok  ' if same else 'DIFF'} {username:26} {tab:12} {compared:6} cases compared",
                    flush=True,
                )
    print("every page identical to the reference" if not failures else f"{failures} tabs differ")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=10, help="pages per tab (default 10)")
    parser.add_argument(
        "--cases", type=int, help="generate this data set first unless the bench database holds it"
    )
    args = parser.parse_args(argv)
    if args.cases:
        from bench.generate import generate

        generate(args.cases)
    return verify(args.pages)


if __name__ == "__main__":
    sys.exit(main())
