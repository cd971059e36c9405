"""Deadlines that enforce themselves (DESIGN.md §4–§5): clocks, the sweep, escalation, exactly once.

Time is moved with time-machine, so every "now" the code asks for (submission, actions, the sweep,
delivery) is the travelled one; notifications are delivered by a real RQ worker on real Redis.
"""

from __future__ import annotations

import email
import email.policy
import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rq import SimpleWorker
from sqlalchemy import delete, func, select

from supervise.cases import services
from supervise.cases.models import Case, Event
from supervise.cases.workflow import Actor, find_case
from supervise.deadlines.calendar import local_date, seed_from_chinesecalendar
from supervise.deadlines.models import CalendarDay, CalendarYear, CaseClock, ClockKind, Escalation
from supervise.deadlines.services import import_calendar_year, run_sweep
from supervise.deadlines.sweep import sweep
from supervise.errors import InvalidInput
from supervise.extensions import db
from supervise.notify.models import Notification, OutboxMessage
from supervise.orgs.services import get_org_by_code
from supervise.queueing import redis_connection
from supervise.settings import set_value
from supervise.staff.models import User
from tests.conftest import VALID_SUBMISSION, verified
from tests.jobs.conftest import JW, JW_HANDLER, JW_INTAKE, VILLAGE, VILLAGE_LEADER

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(y: int, m: int, d: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI)


def actor(username: str) -> Actor:
    return Actor.staff(db.session.scalar(select(User).where(User.username == username)))


def act(ref: str, username: str, action: str, **args) -> Case:
    case = find_case(db.session, ref)
    return services.perform_action(ref, actor(username), {"action": action, "version": case.version, **args})


def file_case(village_org=None, **fields) -> str:
    """Submit through the service at the current (travelled) time; returns the tracking number."""
    from supervise.intake.models import Point

    data = verified({**VALID_SUBMISSION, **fields})  # a name and phone with their SMS code
    if village_org is not None:
        data["point"] = db.session.scalar(select(Point.token).where(Point.org_id == village_org.id))
    case, _code = services.submit_case(data)
    return case.tracking_no


def clock(ref: str, kind: ClockKind) -> CaseClock:
    db.session.expire_all()
    case = find_case(db.session, ref)
    return db.session.scalars(
        select(CaseClock)
        .where(CaseClock.case_id == case.id, CaseClock.kind == kind.value)
        .order_by(CaseClock.id)
    ).all()[-1]


def counts(result) -> tuple[int, int, int, int]:
    return result.warned, result.overdue, result.level1, result.level2


def deliver_all(app) -> None:
    SimpleWorker(["default"], connection=redis_connection(app)).work(burst=True)
    db.session.expire_all()


def titles_for(username: str) -> list[str]:
    user_id = db.session.scalar(select(User.id).where(User.username == username))
    return list(db.session.scalars(select(Notification.title).where(Notification.user_id == user_id)))


# -- the walk: received → due soon → overdue → level 1 → level 2 ----------------------------------


def transfer_to_village(ref: str) -> None:
    """城关镇纪委 accepts a service complaint and transfers it to 东关村; its leader assigns it to
    the village's handler, who starts (the unit's stage deadline is met)."""
    act(ref, JW_INTAKE, "accept")
    act(ref, JW_INTAKE, "transfer", org=VILLAGE)
    act(ref, VILLAGE_LEADER, "assign", user="v-handler")
    act(ref, "v-handler", "start")


def escalation_titles(username: str) -> list[str]:
    return [t for t in titles_for(username) if t.startswith("督办")]


def test_a_case_walks_to_level_two_escalation_and_each_notice_goes_out_once(app, village):
    """A service complaint transferred to a village and late there: level 1 goes to the body that
    owns it (城关镇纪委), level 2 one body further up (the county), never to a unit."""
    with time_machine.travel(at(2026, 11, 2), tick=False):  # Monday
        ref = file_case(village, category="efficiency")
        transfer_to_village(ref)
    response = clock(ref, ClockKind.RESPONSE)
    assert local_date(response.due_at) == date(2026, 11, 23)  # 15 working days, day of receipt not counted
    assert response.warn_from == at(2026, 11, 18, 0)  # 3 working days left from then
    assert response.level2_from == at(2026, 12, 1, 0)  # 5 working days after the due day, passed
    assert clock(ref, ClockKind.STAGE).outcome == "met"  # the village started within 5 working days

    steps = [
        (at(2026, 11, 17, 12), (0, 0, 0, 0)),
        (at(2026, 11, 18, 9), (1, 0, 0, 0)),  # 即将超期
        (at(2026, 11, 18, 9, 5), (0, 0, 0, 0)),  # the next run: nothing twice
        (at(2026, 11, 23, 23, 59), (0, 0, 0, 0)),  # still the due day
        (at(2026, 11, 24, 0, 5), (0, 1, 1, 0)),  # 已超期, 一级督办
        (at(2026, 11, 30, 23, 0), (0, 0, 0, 0)),
        (at(2026, 12, 1, 9), (0, 0, 0, 1)),  # 二级督办
        (at(2026, 12, 1, 9, 5), (0, 0, 0, 0)),
    ]
    flags = []
    for moment, expected in steps:
        with time_machine.travel(moment, tick=False):
            assert counts(run_sweep()) == expected, moment
        db.session.expire_all()
        case = find_case(db.session, ref)
        flags.append((case.due_soon, case.overdue, case.escalation_level))
    assert flags[1] == (True, False, 0) and flags[4] == (False, True, 1) and flags[6] == (False, True, 2)

    case = find_case(db.session, ref)
    assert case.org.code == VILLAGE  # late at the unit it was transferred to
    escalations = db.session.execute(
        select(Escalation.level, Escalation.org_id)
        .where(Escalation.case_id == case.id)
        .order_by(Escalation.level)
    ).all()
    assert escalations == [
        (1, get_org_by_code(db.session, JW).id),  # the owning body
        (2, get_org_by_code(db.session, "demo-county").id),  # the body above it
    ]
    system_events = [e.action for e in case.events if e.actor_kind == "system"]
    assert system_events == ["warn", "escalate", "escalate"]

    deliver_all(app)
    assert set(db.session.scalars(select(OutboxMessage.status))) == {"delivered"}
    assert sorted(t for t in titles_for("v-handler") if "期限" in t) == [
        f"诉求件 {ref} 的答复期限即将届满",
        f"诉求件 {ref} 的答复期限已超期",
    ]
    assert escalation_titles(JW_INTAKE) == [f"督办（一级）：诉求件 {ref} 的答复期限已超期"]
    assert escalation_titles("demo-supervisor") == [f"督办（二级）：诉求件 {ref} 的答复期限已超期"]
    for unit_user in (VILLAGE_LEADER, "demo-town-1-leader", "demo-town-1-handler"):
        assert escalation_titles(unit_user) == [], unit_user  # 督办 never goes to a unit
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in (app.config_data_dir / "mail").glob("*.eml")
    ]
    assert sorted((m["To"], m["Subject"]) for m in mails) == [
        ("demo-supervisor@example.org", f"督办（二级）：诉求件 {ref} 的答复期限已超期"),
        (f"{JW_INTAKE}@example.org", f"督办（一级）：诉求件 {ref} 的答复期限已超期"),
    ]
    assert "2026-11-23" in mails[0].get_content()

    # Answered late: the unit's answer goes back to the owner, who publishes it; the clock records
    # when and that it was late; the flags go.
    with time_machine.travel(at(2026, 12, 2), tick=False):
        act(ref, "v-handler", "feedback", text="经核查，已责令整改。")
        act(ref, JW_INTAKE, "publish")
        assert counts(run_sweep()) == (0, 0, 0, 0)
    response = clock(ref, ClockKind.RESPONSE)
    assert response.outcome == "met" and response.met_late is True and response.next_check_at is None
    case = find_case(db.session, ref)
    assert (case.due_soon, case.overdue, case.escalation_level) == (False, False, 0)


def _kept_at_the_township_body(ref: str) -> None:
    act(ref, JW_INTAKE, "accept", user=JW_HANDLER)  # 受理并交办 inside 城关镇纪委
    act(ref, JW_HANDLER, "start")


def _transferred_to_the_village(ref: str) -> None:
    transfer_to_village(ref)


def _kept_at_the_stationed_group(ref: str) -> None:
    act(ref, "demo-group-1-intake", "accept", user="demo-group-1-handler")
    act(ref, "demo-group-1-handler", "start")


@pytest.mark.parametrize(
    ("point_org", "category", "handle", "where", "level1", "level2", "told1"),
    [
        # A service complaint transferred to a village and late there: its owning 纪委, then the county.
        (VILLAGE, "efficiency", _transferred_to_the_village, VILLAGE, JW, "demo-county", JW_INTAKE),
        # Late at 城关镇纪委 itself: the county (the body above), not the township government unit
        # 城关镇 it hangs below; the county is the top, so level 2 stays there.
        (
            VILLAGE,
            "petty_corruption",
            _kept_at_the_township_body,
            JW,
            "demo-county",
            "demo-county",
            "demo-supervisor",
        ),
        # A department's 派驻组 (set by an admin, not the department's parent): the county above it.
        (
            "demo-dept-civil",
            "petty_corruption",
            _kept_at_the_stationed_group,
            "demo-county-group-1",
            "demo-county",
            "demo-county",
            "demo-supervisor",
        ),
    ],
    ids=["transferred-to-village", "owned-by-township-jw", "owned-by-stationed-group"],
)
def test_escalation_goes_up_the_discipline_bodies(
    app, village, point_org, category, handle, where, level1, level2, told1
):
    with time_machine.travel(at(2026, 11, 2), tick=False):
        ref = file_case(get_org_by_code(db.session, point_org), category=category)
        handle(ref)
    with time_machine.travel(at(2026, 12, 1, 9), tick=False):  # past the due day and level 2's
        assert counts(run_sweep()) == (1, 1, 1, 1)  # first seen late: warned, but no "due soon" notice
    case = find_case(db.session, ref)
    assert case.org.code == where and case.escalation_level == 2
    escalations = db.session.execute(
        select(Escalation.level, Escalation.org_id)
        .where(Escalation.case_id == case.id)
        .order_by(Escalation.level)
    ).all()
    ids = {code: get_org_by_code(db.session, code).id for code in (level1, level2)}
    assert escalations == [(1, ids[level1]), (2, ids[level2])]
    assert get_org_by_code(db.session, "demo-town-1").id not in {org_id for _, org_id in escalations}

    deliver_all(app)
    level1_title = f"督办（一级）：诉求件 {ref} 的答复期限已超期"
    level2_title = f"督办（二级）：诉求件 {ref} 的答复期限已超期"
    assert level1_title in escalation_titles(told1) and level2_title in escalation_titles("demo-supervisor")
    assert escalation_titles(JW_INTAKE) == ([level1_title] if told1 == JW_INTAKE else [])
    for unit_user in (VILLAGE_LEADER, "v-handler", "demo-town-1-leader", "demo-dept-civil-leader"):
        assert escalation_titles(unit_user) == [], unit_user


@pytest.fixture
def data_dir(app, tmp_path):
    app.config["DATA_DIR"] = str(tmp_path)
    app.config_data_dir = tmp_path
    return tmp_path


@pytest.fixture(autouse=True)
def _mail_sink(data_dir):
    """Development mail sink in a fresh folder per test."""


# -- deadlines across holidays --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "response_due", "stage_due", "warn_day", "level2_day"),
    [
        # Spring Festival 2026 (Feb 15–23 off; Sat Feb 14 and Sat Feb 28 worked): the stage clock
        # counts Feb 11–14 (the Saturday included) and resumes after the holiday.
        (at(2026, 2, 10), date(2026, 3, 9), date(2026, 2, 24), date(2026, 3, 4), date(2026, 3, 16)),
        # National Day 2026 (Oct 1–7 off; Sat Oct 10 worked): stage due on the swapped Saturday.
        (at(2026, 9, 28), date(2026, 10, 23), date(2026, 10, 10), date(2026, 10, 20), date(2026, 10, 30)),
        # Received on a holiday (Oct 3): counting starts on the first working day after it.
        (at(2026, 10, 3), date(2026, 10, 27), date(2026, 10, 13), date(2026, 10, 22), date(2026, 11, 3)),
        # Received on a Sunday at 23:30 Shanghai (15:30 UTC): the Shanghai day counts, not UTC's.
        (at(2026, 6, 7, 23, 30), date(2026, 6, 29), date(2026, 6, 12), date(2026, 6, 24), date(2026, 7, 6)),
    ],
)
def test_clocks_across_holidays_and_swapped_saturdays(
    app, demo, received, response_due, stage_due, warn_day, level2_day
):
    with time_machine.travel(received, tick=False):
        ref = file_case()
    response, stage = clock(ref, ClockKind.RESPONSE), clock(ref, ClockKind.STAGE)
    assert local_date(response.due_at) == response_due and not response.due_provisional
    assert local_date(stage.due_at) == stage_due
    assert response.warn_from == at(warn_day.year, warn_day.month, warn_day.day, 0)
    assert local_date(response.level2_from - timedelta(seconds=1)) == level2_day
    case = find_case(db.session, ref)
    assert (case.response_due_at, case.stage_due_at) == (response.due_at, stage.due_at)


@pytest.fixture
def no_official_2027(app):
    """2027 as it is before the State Council's notice: no official data. Restored afterwards
    (the calendar tables are kept between tests)."""

    def forget() -> None:
        db.session.execute(
            delete(CalendarDay).where(CalendarDay.day.between(date(2027, 1, 1), date(2027, 12, 31)))
        )
        db.session.execute(delete(CalendarYear).where(CalendarYear.year == 2027))
        db.session.commit()

    forget()
    yield
    forget()
    seed_from_chinesecalendar(db.session)  # back to what the package knows, if anything
    db.session.commit()


CSV_2027 = """date,kind,name
2027-01-01,holiday,元旦
2027-01-04,holiday,元旦（测试数据：假设通知多放一天）
2027-02-20,workday,春节调休
"""


def test_a_deadline_in_2027_is_provisional_until_the_year_is_imported(app, demo, no_official_2027, tmp_path):
    with time_machine.travel(at(2026, 12, 20), tick=False):  # Sunday
        ref = file_case()
    response = clock(ref, ClockKind.RESPONSE)
    # Dec 21–31 give 9 working days; Jan 1 is a holiday by rule; Jan 4–8 and 11 make 15.
    assert local_date(response.due_at) == date(2027, 1, 11) and response.due_provisional
    case = find_case(db.session, ref)
    assert case.due_provisional

    from supervise.deadlines.calendar import parse_calendar_csv

    with time_machine.travel(at(2026, 12, 22), tick=False):
        changed = import_calendar_year(2027, parse_calendar_csv(CSV_2027), source="import")
    assert changed >= 1
    response = clock(ref, ClockKind.RESPONSE)
    assert local_date(response.due_at) == date(2027, 1, 12) and not response.due_provisional
    case = find_case(db.session, ref)
    assert local_date(case.response_due_at) == date(2027, 1, 12) and not case.due_provisional
    moved = [e for e in case.events if e.action == "deadline_changed"]
    assert len(moved) == 1 and "由 2027-01-11 调整为 2027-01-12" in moved[0].note and moved[0].public
    # The sweep looks at the clock again on the new schedule.
    assert response.next_check_at == response.warn_from

    # Importing the same year again moves nothing and records nothing.
    assert import_calendar_year(2027, parse_calendar_csv(CSV_2027), source="import") == 0


def test_calendar_import_command_recomputes_open_cases(app, demo, no_official_2027, tmp_path):
    from tests.test_cli import main

    with time_machine.travel(at(2026, 12, 20), tick=False):
        ref = file_case()
    path = tmp_path / "2027.csv"
    path.write_text(CSV_2027, encoding="utf-8")
    result = app.test_cli_runner().invoke(main, ["calendar", "import", str(path)], catch_exceptions=False)
    assert "3 dates loaded" in result.output and "recomputed" in result.output
    assert local_date(clock(ref, ClockKind.RESPONSE).due_at) == date(2027, 1, 12)


# -- the other clocks -----------------------------------------------------------------------------


def test_real_name_acceptance_notice_clock_and_sms(app, village):
    with time_machine.travel(at(2026, 11, 2), tick=False):
        named = file_case(village, name="张三", phone="13812345678")
        anonymous = file_case(village)
    assert clock(named, ClockKind.ACK).days == 15
    assert not db.session.scalar(
        select(func.count(CaseClock.id)).where(
            CaseClock.case_id == find_case(db.session, anonymous).id, CaseClock.kind == "ack"
        )
    )
    with time_machine.travel(at(2026, 11, 3), tick=False):
        act(named, JW_INTAKE, "accept")
    ack = clock(named, ClockKind.ACK)
    assert ack.outcome == "met" and not ack.met_late
    sms = db.session.scalars(
        # The case's SMS: the number's verification code (issue 18) came before, with no case.
        select(OutboxMessage.kind).where(OutboxMessage.channel == "sms", OutboxMessage.case_id.is_not(None))
    ).all()
    assert sms == ["case_accepted"]

    # Nobody took the anonymous case on at 城关镇纪委: its stage clock (5 working days) escalates
    # to the body above it, the county (not to the township government it hangs below).
    with time_machine.travel(at(2026, 11, 10, 0, 5), tick=False):
        result = run_sweep()
    assert result.level1 == 1
    stage = clock(anonymous, ClockKind.STAGE)
    assert stage.overdue_at is not None and stage.level == 1
    assert db.session.scalar(select(Escalation.org_id).where(Escalation.clock_id == stage.id)) == (
        get_org_by_code(db.session, "demo-county").id
    )
    case = find_case(db.session, anonymous)
    assert case.escalation_level == 1 and not case.overdue  # 督办, but the 15 days still run
    with time_machine.travel(at(2026, 11, 10, 9), tick=False):
        act(anonymous, JW_INTAKE, "accept")
    case = find_case(db.session, anonymous)
    assert case.escalation_level == 0 and clock(anonymous, ClockKind.STAGE).met_late


def test_extension_once_per_case_unless_an_admin_allows_more(app, village):
    with time_machine.travel(at(2026, 11, 2), tick=False):
        ref = file_case(village, category="efficiency")
        act(ref, JW_INTAKE, "accept")
        act(ref, JW_INTAKE, "transfer", org=VILLAGE)  # the unit asks, the owner's supervisor decides
        act(ref, VILLAGE_LEADER, "assign", user="v-handler")
        act(ref, "v-handler", "start")  # meets the unit's stage deadline
        act(ref, "v-handler", "request_extension", days=5, reason="需要调取三年账目")
        act(ref, "demo-supervisor", "extend", days=5, reason="同意延期")
    extension = clock(ref, ClockKind.EXTENSION)
    assert local_date(extension.due_at) == date(2026, 11, 30)  # Nov 23 + 5 working days
    assert clock(ref, ClockKind.RESPONSE).outcome == "extended"
    assert local_date(find_case(db.session, ref).response_due_at) == date(2026, 11, 30)

    with time_machine.travel(at(2026, 11, 3), tick=False):
        with pytest.raises(InvalidInput, match="达到上限"):
            act(ref, "demo-supervisor", "extend", days=2, reason="再延")
        with pytest.raises(InvalidInput, match="达到上限"):
            act(ref, "v-handler", "request_extension", days=2, reason="再延")
        set_value("MAX_EXTENSIONS", 2)  # an admin allows a second one
        db.session.commit()
        act(ref, "demo-supervisor", "extend", days=2, reason="特殊情况")
    assert local_date(clock(ref, ClockKind.EXTENSION).due_at) == date(2026, 12, 2)
    case = find_case(db.session, ref)
    assert (case.extension_count, case.extension_days) == (2, 7)

    # The extended deadline is the one the sweep enforces.
    with time_machine.travel(at(2026, 11, 24, 9), tick=False):
        assert run_sweep().overdue == 0
    with time_machine.travel(at(2026, 12, 3, 9), tick=False):
        assert run_sweep().level1 == 1


def test_reopened_case_gets_a_fresh_fifteen_days_and_unrated_cases_close(app, village, client):
    with time_machine.travel(at(2026, 11, 2), tick=False):
        ref = file_case(village, category="efficiency")
        for username, action, extra in [
            (JW_INTAKE, "accept", {}),
            (JW_INTAKE, "assign", {"user": JW_HANDLER}),
            (JW_HANDLER, "start", {}),
            (JW_HANDLER, "feedback", {"text": "已处理。"}),
            ("demo-supervisor", "publish", {}),
        ]:
            act(ref, username, action, **extra)
    rating = clock(ref, ClockKind.RATING)
    assert local_date(rating.due_at) == date(2026, 11, 16)  # 10 working days to rate
    with time_machine.travel(at(2026, 11, 5), tick=False):
        act(ref, "demo-supervisor", "reopen", reason="核查不彻底")
    reopened = clock(ref, ClockKind.REOPENED)
    assert local_date(reopened.due_at) == date(2026, 11, 26)  # 15 from the reopening day
    assert clock(ref, ClockKind.RATING).outcome == "ended"

    with time_machine.travel(at(2026, 11, 6), tick=False):
        act(ref, JW_HANDLER, "start")
        act(ref, JW_HANDLER, "feedback", text="已重新核查并整改。")
        act(ref, "demo-supervisor", "publish")
    assert clock(ref, ClockKind.REOPENED).outcome == "met"
    with time_machine.travel(at(2026, 11, 20, 12), tick=False):
        assert run_sweep().auto_closed == 0
    with time_machine.travel(at(2026, 11, 21, 0, 5), tick=False):  # 10 working days after Nov 6
        assert run_sweep().auto_closed == 1
        assert run_sweep().auto_closed == 0
    case = find_case(db.session, ref)
    assert case.status == "closed" and case.events[-1].action == "auto_close"


# -- exactly once -------------------------------------------------------------------------------------


def test_two_sweeps_at_the_same_moment_escalate_and_notify_once(app, demo):
    """Two sweeps in two connections at once (SKIP LOCKED on PostgreSQL, the write lock on SQLite)."""
    cases = 60
    with time_machine.travel(at(2026, 9, 1), tick=False):
        for _ in range(cases):
            file_case()
    # Stage clocks (due Sep 8) are past level 2 (Sep 15); response clocks (due Sep 22) at level 1.
    now = at(2026, 9, 23, 9).astimezone(ZoneInfo("UTC"))
    clocks = services.make_context(now).clocks
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run() -> None:
        try:
            with app.app_context():
                barrier.wait()
                results.append(sweep(db.session, clocks, now, batch_size=7))
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    db.session.expire_all()
    assert sum(r.level1 for r in results) == 2 * cases  # a response and a stage clock each
    assert sum(r.level2 for r in results) == cases  # the stage clocks
    assert db.session.scalar(select(func.count(Escalation.id))) == 3 * cases
    assert db.session.scalar(select(func.count(Event.id)).where(Event.action == "escalate")) == 3 * cases
    keys = db.session.scalars(
        select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.is_not(None))
    ).all()
    # Per level 1: the handler (or intake) and the supervisors above, in-app and by mail; level 2: the
    # supervisors. Already late when first seen: no "due soon" notice.
    assert len(keys) == len(set(keys)) == cases * (3 + 3 + 2)
    assert db.session.scalar(select(func.count(Case.id)).where(Case.overdue.is_(True))) == cases
    assert db.session.scalar(select(func.count(Event.id)).where(Event.action == "warn")) == 0
    # And again, sequentially: nothing left to do.
    assert counts(sweep(db.session, clocks, now)) == (0, 0, 0, 0)


def test_redis_flushed_between_commit_and_delivery_loses_nothing(app, demo):
    from datetime import UTC

    from workers.jobs import drain_outbox

    with time_machine.travel(at(2026, 9, 1), tick=False):
        for _ in range(3):
            file_case()
    with time_machine.travel(at(2026, 10, 1, 9), tick=False):
        run_sweep()
    conn = redis_connection(app)
    conn.flushdb()  # Redis restarted without its data after the sweep committed
    pending = db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "pending"))
    assert pending > 0
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=2)):
        drain_outbox()  # the cron job: re-enqueues what Redis lost
        drain_outbox()  # twice: still one job each
    deliver_all(app)
    statuses = db.session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ).all()
    assert dict(statuses) == {"delivered": pending}
    per_row = db.session.execute(
        select(Notification.outbox_id, Notification.user_id, func.count()).group_by(
            Notification.outbox_id, Notification.user_id
        )
    ).all()
    assert per_row and {n for *_, n in per_row} == {1}


def test_sweep_job_runs_on_a_real_worker_and_is_registered_with_cron(app, demo):
    from rq import Queue
    from rq.cron import CronScheduler

    with time_machine.travel(at(2026, 9, 1), tick=False):
        file_case()
    conn = redis_connection(app)
    Queue("sweeps", connection=conn).enqueue("workers.jobs.sweep_deadlines")
    SimpleWorker(["sweeps"], connection=conn).work(burst=True)
    db.session.expire_all()
    # Real time is long past September: both clocks at level 1 and level 2.
    assert db.session.scalar(select(func.count(Escalation.id))) == 4

    scheduler = CronScheduler(connection=conn)
    scheduler.load_config_from_file("workers.cron")
    registered = {(j.func_name, j.queue_name, j.interval) for j in scheduler.get_jobs()}
    assert ("workers.jobs.sweep_deadlines", "sweeps", 300) in registered
    assert ("workers.jobs.drain_outbox", "sweeps", 15) in registered


def test_sweep_command_prints_what_it_did(app, demo):
    from tests.test_cli import main

    with time_machine.travel(at(2026, 9, 1), tick=False):
        file_case()
    runner = app.test_cli_runner()
    first = runner.invoke(
        main, ["sweep", "--now", "2026-09-07T09:00:00+08:00"], catch_exceptions=False
    ).output
    assert "due soon (warned): 1" in first and "escalated to level 1: 0" in first  # the stage clock
    second = runner.invoke(main, ["sweep", "--now", "2026-10-01T09:00"], catch_exceptions=False).output
    assert "escalated to level 1: 2" in second and "overdue: 2" in second
    bad = runner.invoke(main, ["sweep", "--now", "yesterday"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output


def test_init_gives_open_cases_from_before_the_clocks_a_response_clock(app, demo):
    """A database upgraded from before case_clocks: `supervise init` starts the clocks, same due day."""
    from supervise.deadlines.services import backfill_clocks

    with time_machine.travel(at(2026, 11, 2), tick=False):
        ref = file_case()
    case = find_case(db.session, ref)
    due = case.response_due_at
    db.session.execute(delete(CaseClock))
    db.session.commit()
    clocks = services.make_context().clocks
    assert backfill_clocks(db.session, clocks) == 1
    db.session.commit()
    assert backfill_clocks(db.session, clocks) == 0  # idempotent
    kinds = {c.kind: c.due_at for c in db.session.scalars(select(CaseClock))}
    assert kinds["response"] == due and "stage" in kinds


def test_admins_are_warned_of_provisional_deadlines(app, demo, no_official_2027, client):
    from supervise.deadlines.calendar import parse_calendar_csv

    with time_machine.travel(at(2026, 12, 20), tick=False):
        file_case()
    from tests.web.test_admin import login

    login(client, "demo-admin")
    page = client.get("/staff/admin/").get_data(as_text=True)
    assert "1 个在办期限按规则推算" in page and "2027 年节假日安排尚未导入" in page  # the response clock
    import_calendar_year(2027, parse_calendar_csv(CSV_2027), source="import")
    assert "provisional-warning" not in client.get("/staff/admin/").get_data(as_text=True)
