"""Experiment, kept for comparison: a supervisor's subtree as a semi-join instead of an id list.

    python -m bench.scope_ids [queue_latency options, e.g. --roles county township]

The app (`supervise.cases.queries.scoped`, since the recommendation in bench/README.md was adopted)
looks the subtree's org ids up first and filters `cases.owner_org_id IN (…ids)`, with no filter at
all when the subtree is the whole tree. This runs `bench.queue_latency` with the way it was before:
`owner_org_id IN (SELECT id FROM orgs WHERE path LIKE …)` for supervisors and admins of a body.

Why the ids won: behind the semi-join PostgreSQL can only guess the subtree's share of cases from
its share of *orgs*, and may read and sort a whole subtree's cases instead of walking an index in
order and stopping after 51; given the ids, it estimates from `cases.owner_org_id`'s statistics.
(With discipline bodies owning cases, a township's 纪委 has no body below it, so its subtree is one
id; the county supervisor's is the whole tree. The difference now shows mostly for the county.)
"""

from __future__ import annotations

import sys


def install() -> None:
    from sqlalchemy import select

    from supervise.cases import queries
    from supervise.cases.models import Case
    from supervise.orgs.models import Org

    original = queries.scoped

    def scoped(session, stmt, actor, ids=None):
        if not (actor.at_body and actor.oversees_subtree):
            return original(session, stmt, actor, ids)
        subtree = select(Org.id).where(Org.path.startswith(actor.org_path, autoescape=True))
        return stmt.where(Case.owner_org_id.in_(subtree))

    queries.scoped = scoped


def main(argv: list[str] | None = None) -> int:
    from bench import common, queue_latency

    common.configure_env()
    install()
    args = sys.argv[1:] if argv is None else argv
    if "--label" not in args:
        args = [*args, "--label", "subtree as a semi-join (before)"]
    return queue_latency.main(args)


if __name__ == "__main__":
    sys.exit(main())
