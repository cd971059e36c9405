"""`supervise demo --history`: eight weeks replayed through the real services (supervise/demo_history.py)."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from supervise.accountability.models import PublishedSummary
from supervise.cases.models import Case, Event
from supervise.cases.states import REGISTERED_CHANNELS, Action, CaseKind, Status
from supervise.deadlines.models import Escalation
from supervise.demo import load_demo
from supervise.demo_history import WEEKS, load_history
from supervise.extensions import db
from supervise.reports.models import WeeklyReport

# A Wednesday: the history runs from Monday 2026-09-28 (eight weeks before this week's Monday).
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_history_fills_every_page_through_the_services_once(app, client, auth):
    started = time.monotonic()
    summary = load_history(now=NOW)
    elapsed = time.monotonic() - started
    # Quick enough for `dev.py up`: 3–7 s on an idle laptop; the margin is for a loaded CI box.
    assert summary is not None and elapsed < 60, elapsed

    cases = db.session.scalars(select(Case)).all()
    statuses = {c.status for c in cases}
    # Every state a page shows has cases (accepted is a moment between 受理 and 转办/交办).
    wanted = set(Status) - {Status.ACCEPTED, Status.MERGED}
    assert wanted <= statuses, wanted - statuses
    assert all(c.received_at <= NOW for c in cases)  # nothing after the present
    # /public has approved summaries to show (issue 17), written and approved by two people.
    published = db.session.scalars(
        select(PublishedSummary).where(PublishedSummary.approved_at.is_not(None))
    ).all()
    assert published and all(s.written_by_id != s.approved_by_id for s in published)
    assert published[0].text in client.get("/public").get_data(as_text=True)

    # Made by the services, not inserted: every case starts with its submit event at its receipt,
    # and every history case was handled by staff actions the workflow recorded.
    first = dict(
        db.session.execute(
            select(Event.case_id, func.min(Event.at))
            .where(Event.action == Action.SUBMIT.value)
            .group_by(Event.case_id)
        ).all()
    )
    assert all(first[c.id] == c.received_at for c in cases)
    # Calls, letters and visits registered by intake sit beside the QR cases (issue 16).
    assert {c.channel for c in cases} & set(REGISTERED_CHANNELS) and {c.channel for c in cases} & {"qr"}

    # Overdue and escalated at both levels, still open now: the 已超期 and 督办 tabs have rows.
    levels = set(db.session.scalars(select(Escalation.level)))
    assert levels == {1, 2}
    open_overdue = [c for c in cases if c.overdue and c.status != Status.CLOSED]
    assert any(c.escalation_level == 2 for c in open_overdue)
    assert sum(1 for c in cases if c.reopen_count) >= 2
    assert sum(1 for c in cases if c.rated_at) >= 10
    assert db.session.scalar(select(func.count(Event.id)).where(Event.action == Action.AUTO_CLOSE.value))
    # The first rule holds in the history too: no 检举控告 case ever reached a unit.
    assert not [c for c in cases if c.kind == CaseKind.ACCUSATION and c.unit_org_id is not None]

    # One stored report for each past week, built on its Monday.
    weeks = db.session.scalars(select(WeeklyReport.week).order_by(WeeklyReport.week)).all()
    assert weeks == [f"2026-W{n}" for n in range(40, 40 + WEEKS)]
    headers = auth("demo-supervisor")
    for queue in ("overdue", "escalated", "due_soon", "review", "done"):
        response = client.get(f"/api/v1/cases?queue={queue}", headers=headers)
        assert response.status_code == 200 and response.get_json()["items"], queue
    report = client.get("/api/v1/reports/weekly?week=2026-W47", headers=headers)
    assert report.status_code == 200

    # Idempotent: a second run adds nothing.
    counts = (len(cases), len(weeks), db.session.scalar(select(func.count(Event.id))))
    assert load_history(now=NOW) is None
    load_demo()
    assert counts == (
        db.session.scalar(select(func.count(Case.id))),
        db.session.scalar(select(func.count(WeeklyReport.id))),
        db.session.scalar(select(func.count(Event.id))),
    )
