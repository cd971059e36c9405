"""Hot spots (热点, issue 16): a unit with ≥ HOTSPOT_THRESHOLD complaints in 30 days is flagged once
to the discipline body that receives its complaints, and only to that body."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from supervise.cases import services
from supervise.cases.hotspots import HotSpot, flag_hot_spots
from supervise.cases.models import Case
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.notify import outbox
from supervise.notify.channels import default_channels
from supervise.notify.models import Notification, OutboxMessage
from supervise.orgs.services import get_org_by_code
from supervise.settings import set_value
from supervise.staff.models import User
from tests.conftest import ISSUED_ACCESS_CODES
from tests.jobs.conftest import JW, VILLAGE

OTHER_VILLAGE = "demo-town-1-village-2"
COMPLAINT = {
    "category": "efficiency",
    "subject": "村委会",
    "content": "村委会办公室工作日经常没人，开证明跑了三趟。",
}


def file(unit: str, days_ago: float, now) -> str:
    case, code = services.submit_case({**COMPLAINT, "subject_unit": unit}, now=now - timedelta(days=days_ago))
    ISSUED_ACCESS_CODES.append(code)
    return case.tracking_no


def deliver_everything() -> None:
    for message_id in db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "pending")):
        outbox.deliver(db.session, message_id, default_channels(), None)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_job_flags_a_hot_spot_once_and_tells_only_its_body(app, demo, client):
    now = utcnow()
    refs = [file(VILLAGE, day, now) for day in (1, 3, 8, 15, 29)]  # five in the last 30 days
    file(VILLAGE, 45, now)  # older: not counted
    for day in (2, 4, 6, 8):
        file(OTHER_VILLAGE, day, now)  # four: under the default threshold of 5
    file("demo-town-1", 2, now)  # another unit
    db.session.execute(OutboxMessage.__table__.delete())  # the submissions' own notices
    db.session.commit()

    flagged = flag_hot_spots(now)
    village, jw = get_org_by_code(db.session, VILLAGE), get_org_by_code(db.session, JW)
    assert [(f.unit_id, f.body_id, f.count) for f in flagged] == [(village.id, jw.id, 5)]
    spot = db.session.scalar(select(HotSpot))
    assert (spot.org_id, spot.body_id, spot.count) == (village.id, jw.id, 5)
    messages = db.session.scalars(select(OutboxMessage)).all()
    assert sorted(m.payload["role"] for m in messages) == ["intake", "supervisor"]
    assert {m.payload["org_id"] for m in messages} == {jw.id} and {m.kind for m in messages} == {"hot_spot"}
    assert {m.case.tracking_no for m in messages} == {refs[0]}  # the unit's newest case

    # A rerun (the hourly catch-up, or the same day again) changes nothing.
    assert flag_hot_spots(now) == []
    assert flag_hot_spots(now + timedelta(hours=5)) == []
    assert (count(HotSpot), count(OutboxMessage)) == (1, 2)

    # Delivered: 城关镇纪委's intake/supervisor is told; nobody at the village, the county or elsewhere.
    deliver_everything()
    told = db.session.scalars(
        select(User.username).join(Notification, Notification.user_id == User.id).distinct()
    ).all()
    assert told and all(u.startswith("demo-town-1-jw") for u in told), told
    assert "demo-town-1-jw-intake" in told and "demo-town-1-jw-handler" not in told
    notice = db.session.scalar(select(Notification).limit(1))
    assert "热点提示" in notice.title and refs[0] in notice.title

    # The badge: on the unit's case pages for the body, never for the unit.
    from tests.web.test_staff import login

    intake = app.test_client()
    assert login(intake, "demo-town-1-jw-intake").status_code == 302
    html = intake.get(f"/staff/cases/{refs[2]}").get_data(as_text=True)
    assert 'id="hot-spot"' in html and "被反映 5 件" in html and refs[0] in html
    ref = refs[2]
    jw_intake = Actor.staff(db.session.scalar(select(User).where(User.username == "demo-town-1-jw-intake")))
    services.perform_action(ref, jw_intake, {"action": "accept", "version": 1, "kind": "service"})
    services.perform_action(ref, jw_intake, {"action": "transfer", "version": 2, "org": VILLAGE})
    leader = app.test_client()
    assert login(leader, "demo-town-1-village-1-leader").status_code == 302
    page = leader.get(f"/staff/cases/{ref}")
    assert page.status_code == 200 and "热点" not in page.get_data(as_text=True)


def test_flagged_again_only_after_30_days_or_when_the_count_doubles(app, demo):
    now = utcnow()
    for day in range(1, 6):
        file(VILLAGE, day, now)
    assert len(flag_hot_spots(now)) == 1
    # Next day, six complaints: not again (the last flag is a day old and six is not ten).
    file(VILLAGE, 0.1, now)
    assert flag_hot_spots(now + timedelta(days=1)) == []
    # Ten in 30 days: twice as many as when flagged, so flagged again.
    for day in (0.2, 0.3, 0.4, 0.5):
        file(VILLAGE, day, now)
    again = flag_hot_spots(now + timedelta(days=1))
    assert [f.count for f in again] == [10]
    assert db.session.scalar(select(func.count(HotSpot.id))) == 2


def test_the_threshold_is_a_setting(app, demo):
    now = utcnow()
    for day in (1, 2, 3):
        file(OTHER_VILLAGE, day, now)
    assert flag_hot_spots(now) == []
    set_value("HOTSPOT_THRESHOLD", 3)
    db.session.commit()
    assert [f.count for f in flag_hot_spots(now)] == [3]
    assert db.session.scalar(select(func.count(Case.id))) == 3
