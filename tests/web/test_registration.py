"""登记来信来访 (issue 16): staff register a complaint that came by phone, letter, visit or hotline,
its clock starts on the day it was received, the reporter gets a printed slip (回执) with codes that
work at /track, a reprint issues a new code, and the channel is a queue filter and a report figure.

The back-dated letter is received on Tuesday 2026-09-29, just before National Day (Oct 1–7 off,
Saturday Oct 10 worked), and registered on Monday 2026-10-12: its due day is counted here day by
day on the calendar, not by the code under test.
"""

# The fixtures imported below are used by name as test arguments, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from supervise.cases.models import Case, Event
from supervise.deadlines.calendar import SHANGHAI, get_calendar, local_date
from supervise.deadlines.models import CaseClock
from supervise.extensions import db
from supervise.reports import services as reports
from supervise.reports.weekly import Week, view_for
from supervise.settings import set_value
from supervise.staff.models import AuditEntry
from tests.conftest import ISSUED_ACCESS_CODES, VALID_SUBMISSION
from tests.web.test_staff import csrf_token, staff_client  # noqa: F401 - fixtures

JW_INTAKE = "demo-town-1-jw-intake"  # 城关镇纪委: intake and supervisor
VILLAGE = "demo-town-1-village-1"  # 东关村, supervised by 城关镇纪委
VILLAGE_LEADER = "demo-town-1-village-1-leader"
REGISTERED = datetime(2026, 10, 12, 10, 0, tzinfo=SHANGHAI)  # a Monday
LETTER = {
    "channel": "letter",
    "received_on": "2026-09-29",
    "category": "efficiency",
    "subject_unit": VILLAGE,
    "subject": "东关村村委会",
    "content": "村里的低保名单三个月没有公示，去问了两次都说还没定。",
    "location": "东关村",
    "name": "李四",
    "phone": "13900001111",
}
TRACKING = re.compile(r'id="receipt-tracking-no">([^<]+)<')
ACCESS = re.compile(r'id="receipt-access-code">([^<]+)<')


def register(client, **fields):
    data = {"csrf_token": csrf_token(client, "/staff/register"), **LETTER, **fields}
    return client.post("/staff/register", data=data)


def slip_codes(client, response) -> tuple[str, str]:
    """Follow the redirect to the slip; its tracking number and access code (shown this once)."""
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    page = client.get(response.location).get_data(as_text=True)
    tracking_no, code = TRACKING.search(page).group(1), ACCESS.search(page).group(1)
    ISSUED_ACCESS_CODES.append(code)
    return tracking_no, code


def track(client, tracking_no: str, code: str):
    return client.post("/track", data={"tracking_no": tracking_no, "access_code": code})


def working_day_after(start: date, n: int) -> date:
    """The n-th working day after `start` (the start itself not counted), walked day by day."""
    calendar = get_calendar(db.session)
    day, counted = start, 0
    while counted < n:
        day += timedelta(days=1)
        counted += calendar.is_working_day(day)
    return day


@pytest.fixture
def october(app):
    with time_machine.travel(REGISTERED, tick=True):
        yield


def test_a_back_dated_letter_gets_its_due_date_appears_in_that_week_and_its_slip_works(
    app, staff_client, october
):
    intake = staff_client(JW_INTAKE)
    form = intake.get("/staff/register").get_data(as_text=True)
    assert 'id="nav-register"' in form and 'value="2026-10-12"' in form  # today by default
    tracking_no, code = slip_codes(intake, register(intake))

    # 15 working days from Sep 29: Sep 30, Oct 8, 9, 10 (the worked Saturday), 12 … → Oct 26.
    due = working_day_after(date(2026, 9, 29), 15)
    assert due == date(2026, 10, 26)
    case = db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))
    assert local_date(case.response_due_at) == due and not case.due_provisional
    assert case.channel == "letter" and case.real_name and case.reporter_hash
    assert case.reporter_phone_enc and b"13900001111" not in case.reporter_phone_enc  # sealed
    # Received that day (00:00 in Shanghai), owned by the village's discipline body.
    assert case.received_at == datetime.combine(date(2026, 9, 29), time(0), tzinfo=SHANGHAI).astimezone(UTC)
    assert case.owner.code == "demo-town-1-jw" and case.subject_org.code == VILLAGE
    stage = db.session.scalar(
        select(CaseClock).where(CaseClock.case_id == case.id, CaseClock.kind == "stage")
    )
    assert local_date(stage.due_at) == working_day_after(date(2026, 9, 29), 5)
    first = db.session.scalar(select(Event).where(Event.case_id == case.id))
    assert first.action == "submit" and first.actor.username == JW_INTAKE and first.public
    assert first.data["received_on"] == "2026-09-29" and first.data["channel"] == "letter"
    assert datetime.fromisoformat(first.data["registered_at"]).astimezone(SHANGHAI).date() == date(
        2026, 10, 12
    )
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "case_registered"))
    assert audit.case_id == case.id and audit.detail["backdated_days"] == 13

    # The slip: codes, due day, how to follow; the codes open the case at /track.
    assert due.isoformat() in intake.get(f"/staff/cases/{tracking_no}").get_data(as_text=True)
    found = track(app.test_client(), tracking_no, code)
    assert found.status_code == 200 and tracking_no in found.get_data(as_text=True)
    assert due.isoformat() in found.get_data(as_text=True)

    # In the weekly report of the week it was received (W40: Sep 28 – Oct 4), by its channel.
    built = reports.build(Week.containing(date(2026, 9, 29)))
    view = view_for(built.data)  # the county, the village's body below it
    assert view["summary"]["received"] == 1 and view["channels"] == {"letter": 1}
    jw = next(o for o in view["orgs"] if o["code"] == "demo-town-1-jw")
    assert jw["own"]["received"] == 1 and jw["channels"] == {"letter": 1}
    later = view_for(reports.build(Week.containing(date(2026, 10, 5))).data)
    assert later["summary"]["received"] == 0  # not the week it was typed in
    page = intake.get("/staff/reports/2026-W40").get_data(as_text=True)
    assert 'id="report-channels"' in page


def test_the_slip_prints_without_the_code_once_shown(app, staff_client):
    intake = staff_client(JW_INTAKE)
    response = register(intake, received_on=local_date(datetime.now(UTC)).isoformat(), name="", phone="")
    tracking_no, code = slip_codes(intake, response)
    again = intake.get(f"/staff/receipt/{tracking_no}").get_data(as_text=True)
    assert tracking_no in again and code not in again and 'id="receipt-no-code"' in again
    assert 'id="reissue"' in again
    case = db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))
    # Received today: the moment of registration; anonymous, no reporter hash.
    assert abs((case.received_at - datetime.now(UTC)).total_seconds()) < 60
    assert not case.real_name and case.reporter_hash is None
    # The case page names the channel and links to the slip.
    page = intake.get(f"/staff/cases/{tracking_no}").get_data(as_text=True)
    assert re.search(r'id="channel">来信', page) and f"/staff/receipt/{tracking_no}" in page


def test_back_dating_beyond_the_limit_is_refused_and_what_was_typed_is_kept(app, staff_client, october):
    intake = staff_client(JW_INTAKE)
    too_early = register(intake, received_on="2026-09-11")  # 31 days before Oct 12; the limit is 30
    html = too_early.get_data(as_text=True)
    assert too_early.status_code == 422
    assert "收件日期最多可早于今天 30 天（不早于 2026-09-12）" in html
    assert LETTER["content"] in html and 'value="2026-09-11"' in html and 'value="东关村村委会"' in html
    assert f'<option value="{VILLAGE}" selected>' in html and '<option value="letter" selected>' in html
    future = register(intake, received_on="2026-10-13")
    assert future.status_code == 422 and "收件日期不能晚于今天" in future.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Case.id))) == 0
    # An admin may narrow the window.
    set_value("REGISTER_BACKDATE_DAYS", 5)
    db.session.commit()
    narrowed = register(intake, received_on="2026-10-06")
    assert narrowed.status_code == 422 and "最多可早于今天 5 天" in narrowed.get_data(as_text=True)
    assert register(intake, received_on="2026-10-07").status_code == 303


def test_a_unit_cannot_register(app, staff_client):
    leader = staff_client(VILLAGE_LEADER)
    assert leader.get("/staff/register").status_code == 403
    token = csrf_token(leader, "/staff/")
    assert leader.post("/staff/register", data={"csrf_token": token, **LETTER}).status_code == 403
    assert 'id="nav-register"' not in leader.get("/staff/").get_data(as_text=True)
    assert db.session.scalar(select(func.count(Case.id))) == 0
    denied = db.session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "access_denied")).all()
    assert {"path": "/staff/register"} in denied


def test_a_reprint_issues_a_new_code_and_the_old_one_stops_working(app, staff_client):
    intake = staff_client(JW_INTAKE)
    today = local_date(datetime.now(UTC)).isoformat()
    tracking_no, old = slip_codes(intake, register(intake, received_on=today))
    version = db.session.scalar(select(Case.version).where(Case.tracking_no == tracking_no))
    token = csrf_token(intake, f"/staff/receipt/{tracking_no}")
    reprinted = intake.post(f"/staff/receipt/{tracking_no}", data={"csrf_token": token})
    same, new = slip_codes(intake, reprinted)
    assert same == tracking_no and new != old
    citizen = app.test_client()
    assert track(citizen, tracking_no, old).status_code == 404
    assert track(citizen, tracking_no, new).status_code == 200
    db.session.expire_all()
    case = db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))
    assert case.version == version  # nobody's open case page turns stale
    last = case.events[-1]
    assert last.action == "reissue_code" and not last.public and last.actor.username == JW_INTAKE
    assert db.session.scalar(
        select(AuditEntry.case_id).where(AuditEntry.action == "access_code_reissued")
    ) == (case.id)
    history = intake.get(f"/staff/cases/{tracking_no}").get_data(as_text=True)
    assert "重新打印回执（更换查询码）" in history
    # A unit cannot reprint (nor see the slip).
    leader = staff_client(VILLAGE_LEADER)
    assert (
        leader.post(
            f"/staff/receipt/{tracking_no}", data={"csrf_token": csrf_token(leader, "/staff/")}
        ).status_code
        == 403
    )


def test_the_channel_is_a_queue_filter_and_shown_on_rows(app, client, staff_client, auth):
    web = client.post("/api/v1/cases", json=VALID_SUBMISSION).get_json()  # to the county commission
    ISSUED_ACCESS_CODES.append(web["access_code"])
    intake = staff_client("demo-intake")
    today = local_date(datetime.now(UTC)).isoformat()
    phone_no, _code = slip_codes(
        intake, register(intake, channel="phone", subject_unit="", received_on=today, name="", phone="")
    )
    everything = intake.get("/staff/?queue=intake").get_data(as_text=True)
    assert web["tracking_no"] in everything and phone_no in everything
    assert 'data-channel="phone">来电<' in everything and 'data-channel="web">网上<' in everything
    phoned = intake.get("/staff/?queue=intake&channel=phone").get_data(as_text=True)
    assert phone_no in phoned and web["tracking_no"] not in phoned
    assert '<option value="phone" selected>' in phoned
    online = intake.get("/staff/?queue=intake&channel=web").get_data(as_text=True)
    assert web["tracking_no"] in online and phone_no not in online
    assert intake.get("/staff/?queue=intake&channel=fax").status_code == 200  # shown as a filter error
    # The API's list takes the same filter and says each case's channel.
    api = client.get("/api/v1/cases?queue=intake&channel=phone", headers=auth("demo-intake")).get_json()
    assert [(i["tracking_no"], i["channel"]) for i in api["items"]] == [(phone_no, "phone")]
    bad = client.get("/api/v1/cases?channel=fax", headers=auth("demo-intake"))
    assert bad.status_code == 422


def test_an_admin_sets_the_back_dating_limit_and_the_phone_on_the_slip(app, staff_client):
    admin = staff_client("demo-admin")
    page = admin.get("/staff/admin/settings").get_data(as_text=True)
    assert 'name="REGISTER_BACKDATE_DAYS"' in page and 'value="30"' in page
    token = csrf_token(admin, "/staff/admin/settings")
    url = "/staff/admin/settings/registration"
    bad = admin.post(url, data={"csrf_token": token, "REGISTER_BACKDATE_DAYS": "400", "RECEIPT_PHONE": "x"})
    assert bad.status_code == 422 and "须在 0 到 366 之间" in bad.get_data(as_text=True)
    saved = admin.post(
        url, data={"csrf_token": token, "REGISTER_BACKDATE_DAYS": "10", "RECEIPT_PHONE": "0371-12388"}
    )
    assert saved.status_code == 302
    changed = db.session.scalar(select(AuditEntry.detail).where(AuditEntry.action == "admin_change"))
    assert changed["changes"] == {"REGISTER_BACKDATE_DAYS": [30, 10], "RECEIPT_PHONE": ["", "0371-12388"]}

    intake = staff_client(JW_INTAKE)
    assert "最多可早于今天 10 天" in intake.get("/staff/register").get_data(as_text=True)
    today = local_date(datetime.now(UTC)).isoformat()
    response = register(intake, received_on=today)
    slip = intake.get(response.location).get_data(as_text=True)
    assert "0371-12388" in slip and "/track" in slip
    ISSUED_ACCESS_CODES.append(ACCESS.search(slip).group(1))
