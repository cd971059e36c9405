"""The staff desk in English (`?lang=en`, then the `lang` cookie): the admin and report pages,
and the everyday desk (login, queue, case page, notifications, escalations, audit log).

The catalog is supervise/translations/en/LC_MESSAGES/messages.po (compiled to .mo); a page that
gains a Chinese string without `_()`, or a msgid without English, fails here and lists, per page,
the Chinese text left. Data stays as entered (org names, usernames, category names, holiday names,
reasons, case text, stored event notes): those are taken out before looking for Chinese.

The other tests keep the msgids that repeat texts of modules which do not mark them for extraction
(weekly.py's labels and footnotes, settings.py's labels, the role labels) equal to those texts.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import time_machine
from sqlalchemy import select

from supervise.cases.models import Case, Category, Event
from supervise.deadlines.models import CalendarDay
from supervise.deadlines.services import run_sweep
from supervise.extensions import db
from supervise.intake.models import Point
from supervise.orgs.models import Org
from supervise.reports.models import WeeklyReport
from supervise.staff.models import ReplyTemplate, User
from tests.jobs.test_deadlines import deliver_all, file_case
from tests.web.test_admin import login
from tests.web.test_reports_ui import AFTER, WEEK, build_week

# Ideographs, CJK punctuation (not U+3000, the ideographic space used to indent org options) and
# fullwidth forms (，：（）；): any of them in English chrome is an untranslated string.
CJK = re.compile(r"[\u3001-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
SKIPPED_ELEMENTS = {"script", "style", "textarea"}


class _Readable(HTMLParser):
    """What a person reads on a page: text nodes and the attributes shown or spoken."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED_ELEMENTS:
            self._skipping.append(tag)
        self.parts += [value for name, value in attrs if name in SHOWN_ATTRIBUTES and value]

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self.parts.append(data)


def _strings(value: Any) -> list[str]:
    """Every string inside a stored report's JSON."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _data_values() -> list[str]:
    """What users and the calendar put in: shown as entered, in any language. Longest first, so a
    name is removed whole before any shorter name inside it."""
    values: set[str] = {"中文"}  # the language switch names each language in itself
    values |= set(db.session.scalars(select(Org.name)))
    values |= set(db.session.scalars(select(User.username)))
    values |= {name for name in db.session.scalars(select(User.display_name)) if name}
    values |= set(db.session.scalars(select(Category.name)))
    values |= set(db.session.scalars(select(Point.name)))
    for title, body in db.session.execute(select(ReplyTemplate.title, ReplyTemplate.body)):
        values |= {title, body}
    values |= {name for name in db.session.scalars(select(CalendarDay.name)) if name}
    for data, reason in db.session.execute(select(WeeklyReport.data, WeeklyReport.reason)):
        values |= {s for s in _strings(data) if s not in data.get("footnotes", [])}  # notes: chrome
        values |= {reason} if reason else set()
    return sorted((v for v in values if v), key=len, reverse=True)


def _chinese_left(page: str, data: list[str]) -> list[str]:
    reader = _Readable()
    reader.feed(page)
    left = []
    for part in reader.parts:
        for value in data:
            part = part.replace(value, " ")
        if CJK.search(part):
            left.append(" ".join(part.split()))
    return left


def test_admin_and_report_pages_have_no_chinese_chrome_in_english(app, client, demo):
    """Every admin section, a refused form, a flash, the report list and a week's report, as
    demo-admin in English."""
    build_week()  # 2026-W48 with flagged orgs and overdue cases: every part of the report page shows
    with time_machine.travel(AFTER, tick=True):
        county = db.session.scalar(select(Org).where(Org.code == "demo-county"))
        db.session.add(
            ReplyTemplate(org_id=county.id, title="受理告知", body="您反映的问题已受理，正在办理。")
        )
        db.session.commit()
        token = login(client, "demo-admin")
        english = client.get("/staff/admin/?lang=en")  # this request only; then the cookie
        assert english.status_code == 200 and '<html lang="en' in english.get_data(as_text=True)
        client.set_cookie("lang", "en")

        pages = {"admin index": english.get_data(as_text=True)}
        for section in (
            "users",
            "orgs",
            "points",
            "categories",
            "calendar",
            "calendar?year=2031",  # no official schedule: the rule-based warning and holidays
            "settings",
            "templates",
            "outbox",
            "jobs",
        ):
            response = client.get(f"/staff/admin/{section}")
            assert response.status_code == 200, section
            pages[section] = response.get_data(as_text=True)
        template_id = db.session.scalar(select(ReplyTemplate.id))
        pages["template edit"] = client.get(f"/staff/admin/templates/{template_id}").get_data(as_text=True)
        # Python's messages: a refused form's field errors, and a flash after a redirect.
        refused = client.post(
            "/staff/admin/categories", data={"csrf_token": token, "code": "bad code", "sort_order": "x"}
        )
        assert refused.status_code == 422
        pages["categories, refused"] = refused.get_data(as_text=True)
        empty = client.post("/staff/admin/settings", data={"csrf_token": token})
        assert empty.status_code == 422  # every field missing: each label's "must be a whole number"
        pages["settings, refused"] = empty.get_data(as_text=True)
        toggled = client.post(
            f"/staff/admin/points/{db.session.scalar(select(Point.id))}/active",
            data={"csrf_token": token, "active": "0"},
            follow_redirects=True,
        )
        pages["points, flash"] = toggled.get_data(as_text=True)
        created = client.post(
            "/staff/admin/users",
            data={
                "csrf_token": token,
                "username": "new-intake",
                "org": county.id,
                "role": ["intake", "admin"],
            },
        )
        assert created.status_code == 200
        pages["password shown"] = created.get_data(as_text=True)
        pages["reports"] = client.get("/staff/reports/").get_data(as_text=True)
        report = client.get(f"/staff/reports/{WEEK}")
        assert report.status_code == 200
        pages["weekly report"] = report.get_data(as_text=True)
        pages["weekly report, township"] = client.get(f"/staff/reports/{WEEK}?org=demo-town-1-jw").get_data(
            as_text=True
        )

        data = _data_values()
        left = {name: _chinese_left(page, data) for name, page in pages.items()}
    assert "Holiday calendar" in pages["calendar"] and "Weekly overdue-case circular" in pages["reports"], (
        "the English catalog of these pages is missing"
    )
    assert {name: found for name, found in left.items() if found} == {}


def test_chinese_pages_say_the_same_and_stored_footnotes_of_other_wording_stay(app, client, demo):
    """In Chinese nothing changed: the translated footnotes are the stored ones; a version stored
    with other wording is shown as recorded, in any language."""
    build_week()
    with time_machine.travel(AFTER, tick=True):
        login(client, "demo-admin")
        stored = db.session.scalar(select(WeeklyReport).where(WeeklyReport.week == WEEK))
        page = client.get(f"/staff/reports/{WEEK}").get_data(as_text=True)
        assert all(note in page for note in stored.data["footnotes"])
        # A version stored before the footnotes were reworded.
        db.session.add(
            WeeklyReport(
                week=WEEK, version=2, data={**stored.data, "footnotes": ["旧版说明：按当时口径统计。"]}
            )
        )
        db.session.commit()
        for lang in ("zh", "en"):
            page = client.get(f"/staff/reports/{WEEK}?version=2&lang={lang}").get_data(as_text=True)
            assert "旧版说明：按当时口径统计。" in page, lang


REPORTER = {"name": "张三丰", "phone": "13812345678"}


def _case_data_values() -> list[str]:
    """What citizens and staff wrote into cases, and the notes stored on their events (recorded
    in Chinese when they were made, shown as recorded): data, like the names above."""
    values = set(_data_values())
    for subject, content in db.session.execute(select(Case.subject, Case.content)):
        values |= {subject, content}
    values |= {note for note in db.session.scalars(select(Event.note)) if note}
    values |= {REPORTER["name"], "张**"}
    return sorted((v for v in values if v), key=len, reverse=True)


def test_the_desk_pages_have_no_chinese_chrome_in_english(app, client, demo):
    """Login, the queue, a case page as intake (a real-name case waiting for acceptance, overdue
    and escalated, with every form of that state and a refused action's field errors),
    notifications, the escalation inbox and the audit log: the staff desk's everyday pages, in
    English. Case text, names and stored event notes are data and are taken out first."""
    refs = build_week()  # 2026-W48's cases, filed on Nov 2: overdue by Dec 1
    with time_machine.travel(AFTER, tick=True):
        named = file_case(**REPORTER)
        run_sweep(AFTER)  # the reminders and escalations a cron would have made
        deliver_all(app)  # and their notices
        client.set_cookie("lang", "en")
        pages = {"login": client.get("/staff/login").get_data(as_text=True)}
        token = login(client, "demo-intake")
        pages["queue"] = client.get("/staff/").get_data(as_text=True)
        pages["queue, overdue tab"] = client.get("/staff/?queue=overdue").get_data(as_text=True)
        pages["case"] = client.get(f"/staff/cases/{refs['county_overdue']}").get_data(as_text=True)
        version = db.session.scalar(select(Case.version).where(Case.tracking_no == refs["county_overdue"]))
        refused = client.post(
            f"/staff/cases/{refs['county_overdue']}/act",
            data={"csrf_token": token, "action": "reject", "form": "reject", "version": version},
        )
        assert refused.status_code == 422
        pages["case, refused"] = refused.get_data(as_text=True)
        pages["real-name case"] = client.get(f"/staff/cases/{named}").get_data(as_text=True)
        pages["notifications"] = client.get("/staff/notifications").get_data(as_text=True)
        client.post("/staff/logout", data={"csrf_token": token})
        login(client, "demo-supervisor")
        pages["escalations"] = client.get("/staff/escalations").get_data(as_text=True)
        pages["notifications, supervisor"] = client.get("/staff/notifications").get_data(as_text=True)
        pages["escalations, all"] = client.get("/staff/escalations?all=1").get_data(as_text=True)
        pages["audit"] = client.get("/staff/audit").get_data(as_text=True)

        data = _case_data_values()
        left = {name: _chinese_left(page, data) for name, page in pages.items()}
    # The pages are the ones meant: English chrome where each has its own.
    assert "Staff sign-in" in pages["login"] and "Select all" in pages["queue"]
    assert "Accept and assign" in pages["case"] and "working day(s) overdue" in pages["case"]
    assert "Reason for rejection: This action needs this field" in pages["case, refused"]
    assert "Reason for viewing" in pages["real-name case"] and "Audit log" in pages["audit"]
    assert "New case" in pages["notifications"] and "deadline passed (" in pages["notifications"]
    assert "-1 escalation: case" in pages["notifications, supervisor"]
    assert 'id="escalations"' in pages["escalations"] and "Reply due" in pages["escalations, all"]
    assert {name: found for name, found in left.items() if found} == {}


def test_a_staff_name_in_the_history_is_text_in_either_language(app, client, demo):
    """Who acted is data: translated only when it is one of ours (群众/系统), never used as a
    msgid by Jinja's `_()`, which would mark it safe (markup through) and %-format it (a 500)."""
    ref = file_case()
    intake = db.session.scalar(select(User).where(User.username == "demo-intake"))
    intake.display_name = "<i>Ann</i> 100%"
    db.session.commit()
    login(client, "demo-intake")
    version = db.session.scalar(select(Case.version).where(Case.tracking_no == ref))
    token = login(client, "demo-intake")
    accepted = client.post(
        f"/staff/cases/{ref}/act",
        data={
            "csrf_token": token,
            "action": "accept",
            "form": "accept",
            "version": version,
            "kind": "service",
        },
    )
    assert accepted.status_code == 302
    for lang in ("zh", "en"):
        page = client.get(f"/staff/cases/{ref}?lang={lang}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200, lang
        assert "<i>Ann</i>" not in html and "&lt;i&gt;Ann&lt;/i&gt; 100%" in html, lang
        assert ("Citizen" if lang == "en" else "群众") in html, lang
