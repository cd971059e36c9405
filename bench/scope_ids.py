"""Experiment: a supervisor's subtree as an explicit list of org ids instead of a semi-join.

    python -m bench.scope_ids [queue_latency options, e.g. --roles supervisor]

Runs `bench.queue_latency` with `supervise.cases.queries.scoped` replaced, for supervisors and
admins, by: look the subtree's org ids up first (one indexed query on `orgs`), then filter
`cases.org_id IN (…ids)`; no filter at all when the subtree is the whole tree.

Why: with `org_id IN (SELECT id FROM orgs WHERE path LIKE …)` PostgreSQL can only guess the
subtree's share of cases from its share of *orgs* (16 of 359 orgs → 5 %), while the busiest
township's subtree holds 27 % of the cases. Believing the subtree small, it reads every one of the
subtree's cases of a (tab, priority) through `ix_cases_org_bucket_queue` and sorts them (54 000
rows, ~20 ms at 1M cases, growing with the data) instead of walking `ix_cases_bucket_queue` in
order and stopping after 51. Given the ids, it estimates from `cases.org_id`'s statistics and
chooses right. The full list costs more than it saves for the root supervisor (359 ids in every
branch), hence no filter for the whole tree.
"""

from __future__ import annotations

import sys


def install() -> None:
    from sqlalchemy import func, select

    from supervise.cases import queries
    from supervise.cases.models import Case
    from supervise.extensions import db
    from supervise.orgs.models import Org
    from supervise.staff.models import Role

    original = queries.scoped

    def scoped(stmt, actor):
        if actor.role not in (Role.SUPERVISOR, Role.ADMIN):
            return original(stmt, actor)
        ids = list(
            db.session.scalars(select(Org.id).where(Org.path.startswith(actor.org_path, autoescape=True)))
        )
        if len(ids) == db.session.scalar(select(func.count(Org.id))):
            return stmt  # the whole tree: nothing to filter
        return stmt.where(Case.org_id.in_(ids))

    queries.scoped = scoped


def main(argv: list[str] | None = None) -> int:
    from bench import common, queue_latency

    common.configure_env()
    install()
    args = sys.argv[1:] if argv is None else argv
    if "--label" not in args:
        args = [*args, "--label", "subtree as an id list"]
    return queue_latency.main(args)


if __name__ == "__main__":
    sys.exit(main())
