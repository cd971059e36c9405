"""The queue request's overhead (issue 15): what `GET /api/v1/cases` answers is what CasePageSchema
documents, and its statements do not grow with the orgs a page names: their names come from the
process's copies (supervise/refdata.py)."""

from __future__ import annotations

from sqlalchemy import event

from supervise.cases import services
from supervise.cases.queries import Filters, page_payload, queue_page
from supervise.cases.schemas import CasePageSchema, dump_case_page
from supervise.extensions import db
from tests.web.test_tab_counts import actor, many_cases  # noqa: F401 - a fixture


def test_the_fast_dump_is_the_schemas_dump(many_cases):  # noqa: F811
    ctx = services.make_context()
    for username in ("demo-supervisor", "demo-town-1-jw-intake", "demo-dept-civil-leader"):
        who = actor(username)
        for queue in ("in_progress", "done", "escalated", "mine"):
            rows, cursor = queue_page(db.session, who, ctx.clocks, ctx.now, Filters(queue=queue), limit=3)
            page = page_payload(
                rows, cursor, lambda c, who=who: services.summary_view(c, ctx.clocks, ctx.now, who)
            )
            assert dump_case_page(page) == CasePageSchema().dump(page), (username, queue)


def statements_of(client, url: str, headers: dict[str, str]) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = client.get(url, headers=headers)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.get_json()
    return seen


def test_a_page_reads_no_org_whatever_it_spans(client, auth, many_cases):  # noqa: F811
    headers = auth("demo-supervisor")
    client.get("/api/v1/cases?queue=done", headers=headers)  # the token's first use writes last_used_at
    one = statements_of(client, "/api/v1/cases?queue=done&limit=1", headers)
    many = statements_of(client, "/api/v1/cases?queue=done&limit=50", headers)
    page = client.get("/api/v1/cases?queue=done&limit=50", headers=headers).get_json()["items"]
    assert len({row["owner"] for row in page} | {row["subject_unit"] for row in page}) > 2
    # Fifty rows naming many orgs cost the statements one row does: no org, category or point is read.
    assert len(many) == len(one), many
    names = ("orgs.name", "categories.name", "points.name")
    assert not [s for s in many if any(name in s for name in names)], many
    # Everything a row shows came with the page: each org of the summary is the case's.
    for row in page:
        case = services.case_for_actor(row["tracking_no"], actor("demo-supervisor"))
        assert (row["owner"], row["subject_unit"], row["unit"]) == (
            case.owner.code if case.owner else None,
            case.subject_org.code if case.subject_org else None,
            case.unit.code if case.unit else None,
        )


def test_names_the_copy_lacks_are_read_from_the_database(many_cases):  # noqa: F811
    """An org, category or point made in another process while Redis was away is not in this
    process's copy yet: its row still shows the right names."""
    from supervise.orgs.routing import OrgTree

    ctx = services.make_context()
    who = actor("demo-supervisor")
    rows, _ = queue_page(db.session, who, ctx.clocks, ctx.now, Filters(queue="done"), limit=20)
    assert rows
    full = [services.summary_view(case, ctx.clocks, ctx.now, who) for case in rows]
    empty = services.RowNames(OrgTree([], {}), {}, {})
    assert [services.summary_view(case, ctx.clocks, ctx.now, who, empty) for case in rows] == full
    assert any(row["owner"] != row["org"] or row["subject_unit"] for row in full)
