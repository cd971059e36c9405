"""The desk's live tab counts (issue 15): capped counts in one statement that agree with a plain COUNT
of what each tab lists, for every account of the demo county; "N+" past the cap, in both languages,
on the tabs and on the header's 督办 badge alike."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from supervise.cases import queries, services
from supervise.cases.models import Case
from supervise.cases.queries import Filters, count_label, queue_count, queue_counts, queues_for
from supervise.cases.states import CaseKind, Status
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.demo import USERS
from supervise.extensions import db
from supervise.orgs.models import Org
from supervise.staff.models import User
from tests.web.test_staff import staff_client  # noqa: F401 - a fixture

POINT_ORGS = ("demo-county", "demo-dept-civil", "demo-town-1", "demo-town-2-village-1", "demo-dept-hrss")


def actor(username: str) -> Actor:
    return Actor.staff(db.session.scalar(select(User).where(User.username == username)))


def plain_counts(who: Actor) -> dict[str, int]:
    """COUNT(*) of each tab's own selection: what its pages list, uncapped."""
    ctx = services.make_context()
    return {
        queue: db.session.scalar(
            select(func.count()).select_from(
                queries.filtered(db.session, who, ctx.clocks, ctx.now, Filters(queue=queue)).subquery()
            )
        )
        for queue in queues_for(who)
    }


def spread_over_the_tabs(refs: list[str]) -> None:
    """Put the cases in every state a tab looks at: each status, at a unit or not, assigned to
    someone or not, due soon, overdue, under 督办, rejected lately or long ago, a 检举控告 or not."""
    rng = random.Random(15)
    orgs = {code: org_id for code, org_id in db.session.execute(select(Org.code, Org.id))}
    units = [orgs[c] for c in ("demo-dept-civil", "demo-town-1", "demo-town-2-village-1")]
    handlers = list(db.session.scalars(select(User.id).where(User.username.like("%handler%"))))
    statuses = list(Status)
    now = utcnow()
    for i, ref in enumerate(refs):
        status = statuses[i % len(statuses)]
        at_unit = rng.random() < 0.4
        db.session.execute(
            update(Case)
            .where(Case.tracking_no == ref)
            .values(
                status=status,
                kind=rng.choice([CaseKind.SERVICE, CaseKind.ACCUSATION, None]),
                unit_org_id=rng.choice(units) if at_unit else None,
                org_id=rng.choice(units) if at_unit else Case.owner_org_id,
                assignee_id=rng.choice([*handlers, None]),
                due_soon=rng.random() < 0.4,
                overdue=rng.random() < 0.3,
                escalation_level=rng.choice([0, 0, 1, 2]),
                closed_at=now - timedelta(days=rng.choice([1, 30])) if status == Status.REJECTED else None,
            )
        )
    db.session.commit()


@pytest.fixture
def many_cases(submit):
    refs = [submit(point=point)["tracking_no"] for point in _points() for _ in range(4)]
    spread_over_the_tabs(refs)
    return refs


def _points() -> list[str]:
    from supervise.intake.models import Point

    return [
        db.session.scalar(select(Point.token).join(Org, Org.id == Point.org_id).where(Org.code == code))
        for code in POINT_ORGS
    ]


def test_counts_agree_with_a_plain_count_of_each_tab_for_every_account(many_cases):
    ctx = services.make_context()
    seen_capped = seen_exact = 0
    for username, _roles, _org in USERS:
        who = actor(username)
        plain = plain_counts(who)
        assert queue_counts(db.session, who, ctx.clocks, ctx.now, cap=10_000) == plain, username
        # Capped at 2: a tab of more shows 3 ("2+"), the others their own number.
        capped = queue_counts(db.session, who, ctx.clocks, ctx.now, cap=2)
        assert capped == {q: min(n, 3) for q, n in plain.items()}, username
        seen_capped += sum(n > 2 for n in plain.values())
        seen_exact += sum(0 < n <= 2 for n in plain.values())
        # The header's 督办 badge and the tab are one definition.
        if "escalated" in plain:
            assert queue_count(db.session, who, "escalated", None, ctx.now, cap=2) == capped["escalated"]
    assert seen_capped and seen_exact  # the data set exercises both sides of the cap


def test_counts_are_one_statement(many_cases, app):
    from sqlalchemy import event

    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    ctx = services.make_context()
    who = actor("demo-supervisor")
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        queue_counts(db.session, who, ctx.clocks, ctx.now)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    # The supervisor's subtree is read from `orgs`; every tab is counted by one statement.
    assert len([s for s in statements if "FROM cases" in s]) == 1, statements


def test_count_label():
    assert count_label(0) == "0" and count_label(999) == "999" and count_label(1000) == "999+"
    assert count_label(3, cap=2) == "2+" and count_label(2, cap=2) == "2"


def tab_text(html: str, queue: str) -> str:
    return re.search(rf'data-queue="{queue}">[^<]*<span class="count">([^<]+)</span>', html).group(1)


def badge_text(html: str) -> str | None:
    found = re.search(r'id="nav-escalations">[^<]*<span class="badge">([^<]+)</span>', html)
    return found.group(1) if found else None


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_tab_past_the_cap_shows_cap_plus_on_the_tab_and_the_badge(monkeypatch, submit, staff_client, lang):  # noqa: F811
    monkeypatch.setattr(queries, "COUNT_CAP", 2)
    refs = [submit()["tracking_no"] for _ in range(3)]
    intake = staff_client("demo-intake")
    page = intake.get(f"/staff/?queue=intake&lang={lang}").get_data(as_text=True)
    assert tab_text(page, "intake") == "2+" and tab_text(page, "dispatch") == "0"
    assert all(ref in page for ref in refs)  # the page itself is not capped

    supervisor = staff_client("demo-supervisor")
    db.session.execute(update(Case).where(Case.tracking_no.in_(refs[:2])).values(escalation_level=1))
    db.session.commit()
    page = supervisor.get(f"/staff/?queue=escalated&lang={lang}").get_data(as_text=True)
    assert tab_text(page, "escalated") == "2" and badge_text(page) == "2"
    db.session.execute(update(Case).where(Case.tracking_no == refs[2]).values(escalation_level=2))
    db.session.commit()
    page = supervisor.get(f"/staff/?queue=escalated&lang={lang}").get_data(as_text=True)
    assert tab_text(page, "escalated") == "2+" and badge_text(page) == "2+"
    other_page = supervisor.get(f"/staff/notifications?lang={lang}").get_data(as_text=True)
    assert badge_text(other_page) == "2+"
