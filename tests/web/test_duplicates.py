"""Likely duplicates (重复件) and repeat complainants (重复访) on the staff case page (issue 16).

The demo county: 东关村 (demo-town-1-village-1) and 西关社区 (demo-town-1-village-2) are units under
城关镇, whose 纪委 (demo-town-1-jw) owns their complaints; demo-town-1-jw-intake is its intake and
supervisor, demo-town-1-jw-handler a handler there (who may not know the reporter).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from supervise.cases import services
from supervise.cases.duplicates import THRESHOLD, likely_duplicates, repeat_complainant
from supervise.cases.models import Case
from supervise.cases.workflow import Actor
from supervise.dbtypes import utcnow
from supervise.extensions import db
from supervise.staff.models import User
from tests.conftest import ISSUED_ACCESS_CODES, issue_phone_code
from tests.web.test_staff import csrf_token, login

VILLAGE, OTHER_VILLAGE = "demo-town-1-village-1", "demo-town-1-village-2"
INTAKE, HANDLER, LEADER = "demo-town-1-jw-intake", "demo-town-1-jw-handler", "demo-town-1-village-1-leader"
PHONE, OTHER_PHONE = "13812345678", "13900001111"

SUBSIDY = {
    "category": "efficiency",
    "subject": "东关村会计李某",
    "content": "东关村会计李某发放2025年耕地地力保护补贴时每户扣了50元，说是手续费，"
    "没有给任何收据，三组的村民都有意见。",
    "location": "东关村三组",
}
# The same problem, another day's words: shuffled, synonyms, shorter, another phone.
SUBSIDY_AGAIN = {
    "category": "efficiency",
    "subject": "村里的会计李某",
    "content": "再次反映：三组的村民都有意见，村里的会计李某发放2025年的耕地地力保护补贴时"
    "每家扣了50元，说是手续费。",
    "location": "东关村三组",
}
OTHER_PROBLEM = {
    "category": "efficiency",
    "subject": "东关村村委会",
    "content": "村委会办公室周一经常没人，开居住证明跑了五趟都没办成，打电话也不接。",
}


def file(days_ago: float, unit: str = VILLAGE, phone: str | None = None, **fields) -> tuple[str, str]:
    """A complaint about `unit` received `days_ago` days ago (through the real service)."""
    data = {**SUBSIDY, "subject_unit": unit, **fields}
    if phone:
        # A number goes with its verified SMS code (issue 18), or is not kept.
        data |= {"phone": phone, "phone_code": issue_phone_code(phone)}
    case, code = services.submit_case(data, now=utcnow() - timedelta(days=days_ago))
    ISSUED_ACCESS_CODES.append(code)
    return case.tracking_no, code


def actor(username: str) -> Actor:
    return Actor.staff(db.session.scalar(select(User).where(User.username == username)))


def case(ref: str) -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.tracking_no == ref))


@pytest.fixture
def seeded(demo):
    """A complaint (`first`, 20 days ago) and what should and should not be suggested beside it."""
    refs = {
        "first": file(20, phone=PHONE),
        "again": file(5, phone=OTHER_PHONE, **SUBSIDY_AGAIN),  # a re-report: suggested
        "other_unit": file(10, unit=OTHER_VILLAGE),  # the same words about another unit: not
        "too_old": file(125, **SUBSIDY_AGAIN),  # 105 days before `first`: outside the 90 days
        "same_reporter": file(3, phone=PHONE, **OTHER_PROBLEM),  # same reporter, another problem
    }
    return {name: ref for name, (ref, _code) in refs.items()} | {
        "codes": {n: c for n, (_r, c) in refs.items()}
    }


@pytest.fixture
def page(app, demo):
    def make(username: str):
        client = app.test_client()
        assert login(client, username).status_code == 302
        return client

    return make


def test_the_expected_duplicates_are_suggested_and_nothing_else(seeded):
    first = case(seeded["first"])
    found = {s.case.tracking_no: s for s in likely_duplicates(first, actor(INTAKE))}
    assert seeded["again"] in found, [(s.case.subject, s.score) for s in found.values()]
    again = found[seeded["again"]]
    assert again.likely and again.score >= THRESHOLD and not again.same_reporter
    assert again.reasons[0][0].startswith("同一被反映单位，内容相似")
    # Another unit's identical complaint, and one 105 days older: never candidates.
    assert seeded["other_unit"] not in found and seeded["too_old"] not in found
    # The same reporter's other problem: listed for who may know the reporter, not as a duplicate.
    reporter = found[seeded["same_reporter"]]
    assert reporter.same_reporter and not reporter.likely
    assert [r[0] for r in reporter.reasons] == ["同一反映人"]
    assert seeded["first"] not in found  # never itself


def test_windows_and_merged_cases(seeded):
    again = case(seeded["again"])
    found = {s.case.tracking_no for s in likely_duplicates(again, actor(INTAKE))}
    assert seeded["first"] in found
    assert seeded["too_old"] not in found  # 120 days before it
    assert seeded["other_unit"] not in found
    # A handler at the body sees the text suggestions but never the reporter's.
    handler = {s.case.tracking_no: s for s in likely_duplicates(case(seeded["first"]), actor(HANDLER))}
    assert seeded["same_reporter"] not in handler
    assert all(not s.same_reporter for s in handler.values())


def test_a_unit_never_sees_suggestions_nor_the_repeat_flag(seeded, page):
    # A service complaint transferred to 东关村: its leader opens it.
    ref = seeded["same_reporter"]
    intake = actor(INTAKE)
    services.perform_action(ref, intake, {"action": "accept", "version": 1, "kind": "service"})
    services.perform_action(ref, intake, {"action": "transfer", "version": 2, "org": VILLAGE})
    leader = actor(LEADER)
    assert likely_duplicates(case(ref), leader) == []
    assert repeat_complainant(case(ref), leader) == (0, [])
    html = page(LEADER).get(f"/staff/cases/{ref}").get_data(as_text=True)
    for marker in ("可能重复", "重复反映", "同一反映人", 'id="duplicates"', seeded["first"], "热点"):
        assert marker not in html, marker


def test_the_case_page_lists_them_and_one_click_merges(seeded, page, client):
    intake = page(INTAKE)
    ref = seeded["again"]
    html = intake.get(f"/staff/cases/{ref}").get_data(as_text=True)
    table = html[
        html.index('id="duplicate-suggestions"') : html.index(
            "</table>", html.index('id="duplicate-suggestions"')
        )
    ]
    assert seeded["first"] in table and "合并到此件" in table and re.search(r"内容相似 \d+%", table)
    assert seeded["other_unit"] not in table and seeded["too_old"] not in table
    # 合并到此件: first the confirmation (nothing merged yet), then 确认合并.
    token = csrf_token(intake, f"/staff/cases/{ref}")
    form = {
        "csrf_token": token,
        "action": "merge",
        "form": "merge_suggested",
        "into": seeded["first"],
        "version": "1",
    }
    asked = intake.post(f"/staff/cases/{ref}/act", data=form)
    assert asked.status_code == 200 and 'id="confirm-merge"' in asked.get_data(as_text=True)
    assert case(ref).status == "received"
    done = intake.post(f"/staff/cases/{ref}/act", data=form | {"confirmed": "1"})
    assert done.status_code == 302
    merged = case(ref)
    assert merged.status == "merged" and merged.merged_into.tracking_no == seeded["first"]
    # The merged reporter follows the case theirs joined, as every merge does.
    tracked = client.post(
        "/api/v1/track", json={"tracking_no": ref, "access_code": seeded["codes"]["again"]}
    ).get_json()
    assert tracked["merged_into"]["tracking_no"] == seeded["first"]
    # A merged case is never suggested as a target again.
    found = {s.case.tracking_no for s in likely_duplicates(case(seeded["first"]), actor(INTAKE))}
    assert ref not in found


def test_a_repeat_complainant_is_flagged_with_their_count(seeded, page):
    file(1, phone="+86 138-1234-5678", **OTHER_PROBLEM)  # the same number, written otherwise
    count, others = repeat_complainant(case(seeded["first"]), actor(INTAKE))
    assert count == 3 and len(others) == 2
    html = page(INTAKE).get(f"/staff/cases/{seeded['first']}").get_data(as_text=True)
    flag = html[
        html.index('id="repeat-complainant"') : html.index("</p>", html.index('id="repeat-complainant"'))
    ]
    assert "重复反映：此反映人共 3 件" in flag and seeded["same_reporter"] in flag
    # A handler at the body may not know the reporter: no count, no links.
    assert repeat_complainant(case(seeded["first"]), actor(HANDLER)) == (0, [])
    assert "重复反映" not in page(HANDLER).get(f"/staff/cases/{seeded['first']}").get_data(as_text=True)
    # No phone: no flag.
    assert repeat_complainant(case(seeded["other_unit"]), actor(INTAKE)) == (0, [])


def test_the_benchmarks_smoke_run_meets_the_goals(app):
    """bench/duplicates.py's smoke set (300 complaints, a quarter re-reports) through this run's
    database: every case's suggestions scored against the known duplicates. Results, not timing."""
    from bench import duplicates as bench

    result = bench.run_in_app(bench.SMOKE_SIZE)
    bench.check(result, smoke=True)
    precision, recall, true_positives, _false = result.at_app_threshold()
    assert result.complaints == bench.SMOKE_SIZE and result.truth_pairs > 100
    assert precision >= bench.GOAL_PRECISION and recall >= bench.GOAL_RECALL, bench.table(result)
    assert true_positives == result.at(THRESHOLD)[2]  # the app's `likely` is the threshold's
    figures = bench.figures_of(result, "test")
    assert [f.ok for f in figures] == [True, True, None]
