"""Admin pages (/staff/admin) through the real login form: each section's flow, scope, CSRF, audit."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from supervise.cases.models import Category
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import get_calendar, local_date, parse_calendar_csv
from supervise.deadlines.models import CalendarDay, CalendarYear
from supervise.extensions import db
from supervise.intake.models import Point, PointScan
from supervise.orgs.models import Org
from supervise.settings import deadline_settings, get_int, set_value
from supervise.staff.models import AuditEntry, ReplyTemplate, User
from supervise.staff.services import create_user

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET_RE = re.compile(r'<code class="secret">([^<]+)</code>')
PASSWORD = "demo-password"


def csrf(client, url="/staff/") -> str:
    match = TOKEN_RE.search(client.get(url).get_data(as_text=True))
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def login(client, username, password=PASSWORD) -> str:
    """Sign in through the form; returns a CSRF token valid for the new session."""
    token = csrf(client, "/staff/login")
    response = client.post(
        "/staff/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf(client)  # signing in starts a fresh session, and with it a fresh token


def org(code) -> Org:
    return db.session.scalar(select(Org).where(Org.code == code))


def user(username) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def changes(what) -> list[AuditEntry]:
    db.session.expire_all()
    rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "admin_change")).all()
    return [r for r in rows if r.detail.get("what") == what]


@pytest.fixture
def admin(client, demo):
    """The client signed in as demo-admin (at the top of the demo county); yields a post helper."""
    token = login(client, "demo-admin")

    def post(url, **data):
        return client.post(url, data={"csrf_token": token, **data})

    post.token = token
    return post


def test_index_and_every_section_render_without_inline_styles(client, admin):
    index = client.get("/staff/admin/")
    assert index.status_code == 200 and "系统管理" in index.get_data(as_text=True)
    queue = client.get("/staff/").get_data(as_text=True)
    assert 'href="/staff/admin/"' in queue  # base.html links to the admin index
    for section in ("orgs", "points", "categories", "users", "calendar", "settings", "templates"):
        response = client.get(f"/staff/admin/{section}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200, section
        assert "style=" not in html and "<script" not in html, section


def test_orgs_tree_create_rename_deactivate(client, admin):
    page = client.get("/staff/admin/orgs").get_data(as_text=True)
    assert page.index("示范县纪委监委") < page.index("城关镇") < page.index("东关村")
    assert 'class="indent-2"' in page  # villages two levels below the county

    town = org("demo-town-1")
    created = admin(
        "/staff/admin/orgs", parent=town.id, code="demo-town-1-village-3", name="北关村", kind="village"
    )
    assert created.status_code == 302
    new = org("demo-town-1-village-3")
    assert new.parent_id == town.id and new.path == f"{town.path}{new.id}/" and new.active
    assert changes("org.create")[0].detail["parent"] == "demo-town-1"

    duplicate = admin("/staff/admin/orgs", parent=town.id, code="demo-town-1", name="重复", kind="village")
    assert duplicate.status_code == 422 and "该单位代码已被使用" in duplicate.get_data(as_text=True)
    bad_kind = admin("/staff/admin/orgs", parent=town.id, code="x-1", name="某某", kind="planet")
    assert bad_kind.status_code == 422 and org("x-1") is None

    assert admin(f"/staff/admin/orgs/{new.id}/rename", name="北关社区").status_code == 302
    assert admin(f"/staff/admin/orgs/{new.id}/active", active="0").status_code == 302
    db.session.expire_all()
    assert org("demo-town-1-village-3").name == "北关社区" and not org("demo-town-1-village-3").active
    assert changes("org.rename")[0].detail == {
        "what": "org.rename",
        "org": "demo-town-1-village-3",
        "old": "北关村",
        "new": "北关社区",
    }
    assert len(changes("org.deactivate")) == 1
    assert admin(f"/staff/admin/orgs/{new.id}/active", active="1").status_code == 302
    assert org("demo-town-1-village-3").active and len(changes("org.activate")) == 1

    # An admin cannot switch off the org they sit in.
    admin(f"/staff/admin/orgs/{org('demo-county').id}/active", active="0")
    db.session.expire_all()
    assert org("demo-county").active


def test_points_scans_qr_poster_and_toggle(client, admin):
    town = org("demo-town-1")
    assert admin("/staff/admin/points", org=town.id, name="城关镇财政所窗口").status_code == 302
    point = db.session.scalar(select(Point).where(Point.name == "城关镇财政所窗口"))
    assert point.org_id == town.id and point.active and changes("point.create")
    today = local_date(utcnow())
    db.session.add_all(
        [
            PointScan(point_id=point.id, day=today, count=5),
            PointScan(point_id=point.id, day=today - timedelta(days=3), count=2),
            PointScan(point_id=point.id, day=today - timedelta(days=40), count=100),  # too old
        ]
    )
    db.session.commit()
    page = client.get("/staff/admin/points").get_data(as_text=True)
    row = page[page.index("城关镇财政所窗口<br>") :]
    row = row[: row.index("</tr>")]
    assert "<td>7</td>" in row and f"/s/{point.token}" in row
    assert f'src="/staff/admin/points/{point.id}/qr.png"' in row

    png = client.get(f"/staff/admin/points/{point.id}/qr.png")
    assert (
        png.status_code == 200 and png.mimetype == "image/png" and png.data.startswith(b"\x89PNG\r\n\x1a\n")
    )
    poster = client.get(f"/staff/admin/points/{point.id}/poster")
    html = poster.get_data(as_text=True)
    assert poster.status_code == 200 and "城关镇财政所窗口" in html and "<svg" in html
    assert "style-src 'sha256-" in poster.headers["Content-Security-Policy"]  # its own <style>, only

    assert admin(f"/staff/admin/points/{point.id}/active", active="0").status_code == 302
    db.session.expire_all()
    assert not db.session.get(Point, point.id).active and changes("point.deactivate")
    assert admin("/staff/admin/points", org=town.id, name="").status_code == 422


def test_categories_create_edit_toggle(client, admin):
    created = admin(
        "/staff/admin/categories",
        code="land",
        name="土地征收",
        name_en="Land",
        default_org_kind="township",
        sort_order="7",
    )
    assert created.status_code == 302
    cat = db.session.scalar(select(Category).where(Category.code == "land"))
    assert (cat.name, cat.name_en, cat.default_org_kind, cat.sort_order, cat.active) == (
        "土地征收",
        "Land",
        "township",
        7,
        True,
    )
    assert changes("category.create")
    assert admin("/staff/admin/categories", code="land", name="重复").status_code == 422
    bad = admin("/staff/admin/categories", code="x", name="某", sort_order="abc")
    assert bad.status_code == 422 and "排序须为" in bad.get_data(as_text=True)

    admin(
        f"/staff/admin/categories/{cat.id}",
        name="征地拆迁",
        name_en="Land",
        default_org_kind="",
        sort_order="-1",
    )
    db.session.expire_all()
    cat = db.session.get(Category, cat.id)
    assert (cat.name, cat.default_org_kind, cat.sort_order) == ("征地拆迁", None, -1)
    assert changes("category.update")[0].detail["changes"]["name"] == ["土地征收", "征地拆迁"]

    admin(f"/staff/admin/categories/{cat.id}/active", active="0")
    db.session.expire_all()
    assert not db.session.get(Category, cat.id).active and changes("category.deactivate")
    public = client.get("/api/v1/categories").get_json()
    assert "land" not in {c["code"] for c in public}


def test_users_create_show_password_once_change_role_reset(app, client, admin):
    town = org("demo-town-1")
    created = admin(
        "/staff/admin/users", username="li.si", display_name="李四", org=town.id, role="handler", password=""
    )
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    password = SECRET_RE.search(created.get_data(as_text=True)).group(1)
    account = user("li.si")
    assert (account.org_id, account.role, account.display_name) == (town.id, "handler", "李四")
    assert (
        password not in account.password_hash and changes("user.create")[0].detail["password"] == "generated"
    )
    assert password not in str(changes("user.create")[0].detail)

    other = app.test_client()
    login(other, "li.si", password)
    assert other.get("/staff/").status_code == 200

    short = admin("/staff/admin/users", username="wang", org=town.id, role="intake", password="short")
    assert short.status_code == 422 and "密码至少 10 位" in short.get_data(as_text=True)
    taken = admin("/staff/admin/users", username="demo-intake", org=town.id, role="intake")
    assert taken.status_code == 422 and "该用户名已被使用" in taken.get_data(as_text=True)
    given = admin(
        "/staff/admin/users", username="wang", org=town.id, role="intake", password="a-long-password"
    )
    assert given.status_code == 200 and "a-long-password" in given.get_data(as_text=True)

    county = org("demo-county")
    moved = admin(f"/staff/admin/users/{account.id}", display_name="李四", role="supervisor", org=county.id)
    assert moved.status_code == 302
    db.session.expire_all()
    assert (user("li.si").role, user("li.si").org_id) == ("supervisor", county.id)
    assert changes("user.update")[0].detail["changes"]["role"] == ["handler", "supervisor"]

    reset = admin(f"/staff/admin/users/{account.id}/password")
    new_password = SECRET_RE.search(reset.get_data(as_text=True)).group(1)
    assert reset.status_code == 200 and new_password != password and changes("user.reset_password")
    assert other.get("/staff/").status_code == 302  # the reset ended li.si's session
    login(other, "li.si", new_password)

    me = user("demo-admin")
    admin(f"/staff/admin/users/{me.id}/active", active="0")
    admin(f"/staff/admin/users/{me.id}", role="intake", org=county.id)
    db.session.expire_all()
    assert user("demo-admin").active and user("demo-admin").role == "admin"
    assert client.get("/staff/admin/").status_code == 200


def test_disabling_a_user_ends_their_session(app, client, admin):
    handler = app.test_client()
    login(handler, "demo-handler")
    assert handler.get("/staff/").status_code == 200
    target = user("demo-handler")
    assert admin(f"/staff/admin/users/{target.id}/active", active="0").status_code == 302
    after = handler.get("/staff/")
    assert after.status_code == 302 and after.headers["Location"].startswith("/staff/login")
    db.session.expire_all()
    assert not user("demo-handler").active and changes("user.disable")[0].detail["target"] == "demo-handler"
    # Enabled again, they sign in afresh.
    admin(f"/staff/admin/users/{target.id}/active", active="1")
    login(handler, "demo-handler")
    assert changes("user.enable")


def test_non_admin_gets_403_on_every_admin_url(app, client, demo):
    token = login(client, "demo-intake")
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")]
    assert len(rules) >= 20
    for rule in rules:
        url = rule.build({arg: 1 for arg in rule.arguments})[1]
        if "GET" in rule.methods:
            assert client.get(url).status_code == 403, url
        if "POST" in rule.methods:
            assert client.post(url, data={"csrf_token": token}).status_code == 403, url
    assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "access_denied"))


def test_anonymous_is_sent_to_login(client, demo):
    response = client.get("/staff/admin/users")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]


def test_post_without_csrf_token_is_refused(client, admin):
    response = client.post(
        "/staff/admin/orgs",
        data={"parent": org("demo-county").id, "code": "no-csrf", "name": "无令牌", "kind": "department"},
    )
    assert response.status_code == 400 and org("no-csrf") is None
    assert (
        client.post(f"/staff/admin/users/{user('demo-handler').id}/active", data={"active": "0"}).status_code
        == 400
    )
    assert user("demo-handler").active


def test_a_town_admin_sees_and_edits_only_their_subtree(client, demo):
    town = org("demo-town-1")
    create_user(db.session, username="town-admin", org=town, role="admin", password=PASSWORD)
    county = org("demo-county")
    db.session.add(ReplyTemplate(org_id=county.id, title="县级模板", body="县里的回复"))
    db.session.commit()
    token = login(client, "town-admin")

    def post(url, **data):
        return client.post(url, data={"csrf_token": token, **data})

    orgs = client.get("/staff/admin/orgs").get_data(as_text=True)
    assert "东关村" in orgs and "示范县民政局" not in orgs and "青山乡" not in orgs
    users = client.get("/staff/admin/users").get_data(as_text=True)
    assert "demo-town-1-intake" in users and "demo-intake" not in users.replace("demo-town-1-intake", "")
    points = client.get("/staff/admin/points").get_data(as_text=True)
    assert "东关村村务公开栏" in points and "县纪委监委信访室" not in points
    assert "县级模板" not in client.get("/staff/admin/templates").get_data(as_text=True)

    county_point = db.session.scalar(select(Point).where(Point.org_id == county.id))
    county_template = db.session.scalar(select(ReplyTemplate).where(ReplyTemplate.org_id == county.id))
    intake = user("demo-intake")
    refused = [
        post(f"/staff/admin/orgs/{county.id}/rename", name="改名"),
        post(f"/staff/admin/orgs/{county.id}/active", active="0"),
        post("/staff/admin/orgs", parent=county.id, code="sneaky", name="越权", kind="department"),
        post("/staff/admin/points", org=county.id, name="越权监督点"),
        post(f"/staff/admin/points/{county_point.id}/active", active="0"),
        client.get(f"/staff/admin/points/{county_point.id}/qr.png"),
        client.get(f"/staff/admin/points/{county_point.id}/poster"),
        post("/staff/admin/users", username="sneaky", org=county.id, role="admin"),
        post(f"/staff/admin/users/{intake.id}/active", active="0"),
        post(f"/staff/admin/users/{intake.id}/password"),
        post(f"/staff/admin/users/{intake.id}", role="admin", org=town.id),
        post(f"/staff/admin/users/{user('demo-town-1-intake').id}", role="admin", org=county.id),
        post("/staff/admin/templates", org=county.id, title="越权", body="越权"),
        client.get(f"/staff/admin/templates/{county_template.id}"),
        post(f"/staff/admin/templates/{county_template.id}/delete"),
    ]
    assert [r.status_code for r in refused] == [404] * len(refused)
    db.session.expire_all()
    assert org("demo-county").name == "示范县纪委监委" and org("sneaky") is None and user("sneaky") is None
    assert user("demo-intake").active and user("demo-town-1-intake").org_id == town.id
    assert db.session.get(ReplyTemplate, county_template.id) is not None
    assert changes("org.rename") == [] and changes("user.update") == []

    # System-wide sections belong to admins of a top-level org.
    for section in ("categories", "calendar", "settings"):
        assert client.get(f"/staff/admin/{section}").status_code == 403
    # Inside the subtree all is well.
    village = org("demo-town-1-village-1")
    assert post(f"/staff/admin/orgs/{village.id}/rename", name="东关社区").status_code == 302
    assert org("demo-town-1-village-1").name == "东关社区"


# -- the holiday calendar ------------------------------------------------------------------------------

YEAR = 2087  # no official data and no other test uses it; the calendar tables outlive each test


@pytest.fixture
def spare_years(app):
    years = (YEAR, YEAR + 1)
    yield years
    for year in years:
        db.session.query(CalendarDay).filter(
            CalendarDay.day.between(date(year, 1, 1), date(year, 12, 31))
        ).delete()
        db.session.query(CalendarYear).filter(CalendarYear.year == year).delete()
    db.session.commit()


def test_parse_calendar_csv():
    text = "\ufeffdate,kind,name\n# comment\n\n2087-01-01,holiday,元旦\n2087-01-04, Workday \n"
    assert parse_calendar_csv(text) == {
        date(2087, 1, 1): ("holiday", "元旦"),
        date(2087, 1, 4): ("workday", ""),
    }
    with pytest.raises(ValueError, match="第 2 行"):
        parse_calendar_csv("2087-01-01,holiday\n2087-13-01,holiday\n")
    with pytest.raises(ValueError, match="holiday 或 workday"):
        parse_calendar_csv("2087-01-01,party\n")


def test_calendar_view_import_and_edit(client, admin, spare_years):
    view = client.get(f"/staff/admin/calendar?year={YEAR}").get_data(as_text=True)
    assert "尚无官方安排，按规则推算" in view

    def upload(text, name="cal.csv"):
        return client.post(
            "/staff/admin/calendar/import",
            data={"csrf_token": admin.token, "year": str(YEAR), "file": (io.BytesIO(text.encode()), name)},
            content_type="multipart/form-data",
        )

    bad = upload(f"{YEAR}-01-01,holiday,元旦\n{YEAR}-02-30,holiday,?\n")
    assert bad.status_code == 422 and "第 2 行" in bad.get_data(as_text=True)
    two_years = upload(f"{YEAR}-01-01,holiday\n{YEAR + 1}-01-01,holiday\n")
    assert two_years.status_code == 422 and "恰好包含一个年份" in two_years.get_data(as_text=True)
    assert db.session.get(CalendarYear, YEAR) is None

    # 2087-10-01 is a Wednesday, 2087-10-04 a Saturday.
    ok = upload(f"date,kind,name\n{YEAR}-10-01,holiday,国庆节\n{YEAR}-10-04,workday,国庆节调休\n")
    assert ok.status_code == 302
    db.session.expire_all()
    assert db.session.get(CalendarYear, YEAR).source == "admin"
    assert changes("calendar.import")[0].detail["dates"] == 2
    cal = get_calendar(db.session)
    assert not cal.is_working_day(date(YEAR, 10, 1)) and cal.is_working_day(date(YEAR, 10, 4))
    shown = client.get(f"/staff/admin/calendar?year={YEAR}").get_data(as_text=True)
    assert "正式安排" in shown and f"{YEAR}-10-04" in shown and "国庆节调休" in shown

    # One date: a holiday added, then the swapped workday removed again.
    assert (
        admin("/staff/admin/calendar/day", day=f"{YEAR}-10-02", kind="holiday", name="国庆节").status_code
        == 302
    )
    assert admin("/staff/admin/calendar/day", day=f"{YEAR}-10-04", kind="remove").status_code == 302
    cal = get_calendar(db.session)
    assert not cal.is_working_day(date(YEAR, 10, 2)) and not cal.is_working_day(date(YEAR, 10, 4))
    assert [c.detail["day"] for c in changes("calendar.day")] == [f"{YEAR}-10-02", f"{YEAR}-10-04"]
    bad_kind = admin("/staff/admin/calendar/day", day=f"{YEAR}-10-02", kind="party")
    assert bad_kind.status_code == 422
    assert admin("/staff/admin/calendar/day", day="not-a-date", kind="holiday").status_code == 422


def test_editing_a_rule_based_year_keeps_its_rule_holidays(client, admin, spare_years):
    year = YEAR + 1
    assert not get_calendar(db.session).is_working_day(date(year, 1, 1))  # New Year's Day, by rule
    # 2088-01-03 is a Saturday: a swapped workday.
    assert (
        admin("/staff/admin/calendar/day", day=f"{year}-01-03", kind="workday", name="调休").status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(CalendarYear, year).source == "admin"
    cal = get_calendar(db.session)
    assert cal.is_working_day(date(year, 1, 3)) and not cal.is_working_day(date(year, 1, 1))
    assert changes("calendar.day")[0].detail["materialised"] > 0


def test_calendar_year_argument_is_checked(client, admin):
    response = client.get("/staff/admin/calendar?year=abc")
    assert response.status_code == 200 and "年份须为" in response.get_data(as_text=True)


# -- settings -------------------------------------------------------------------------------------------


UNCHANGED = {
    "ACK_DAYS": 15,
    "LEVEL2_DAYS": 5,
    "MAX_EXTENSIONS": 1,
    "ON_TIME_RATE_TARGET": 92,
    "SATISFACTION_RATE_TARGET": 85,
}


def test_settings_validate_save_and_fall_back(app, client, admin):
    assert deadline_settings(app.config) == {
        "RESPONSE_DAYS": 15,
        "STAGE_DAYS": 5,
        "DUE_SOON_DAYS": 3,
        "AUTO_CLOSE_DAYS": 10,
        **UNCHANGED,
    }
    page = client.get("/staff/admin/settings").get_data(as_text=True)
    assert 'name="RESPONSE_DAYS"' in page and 'value="15"' in page

    valid = {
        "RESPONSE_DAYS": "20",
        "STAGE_DAYS": "5",
        "DUE_SOON_DAYS": "0",
        "AUTO_CLOSE_DAYS": "10",
        **{k: str(v) for k, v in UNCHANGED.items()},
    }
    bad = admin("/staff/admin/settings", **{**valid, "RESPONSE_DAYS": "61", "STAGE_DAYS": "abc"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "答复期限（工作日）须在 1 到 60 之间" in html and "受理/转办期限（工作日）须为整数" in html
    assert deadline_settings(app.config)["RESPONSE_DAYS"] == 15

    assert admin("/staff/admin/settings", **valid).status_code == 302
    db.session.expire_all()
    assert deadline_settings(app.config) == {
        "RESPONSE_DAYS": 20,
        "STAGE_DAYS": 5,
        "DUE_SOON_DAYS": 0,
        "AUTO_CLOSE_DAYS": 10,
        **UNCHANGED,
    }
    assert changes("settings.update")[0].detail["changes"] == {
        "RESPONSE_DAYS": [15, 20],
        "DUE_SOON_DAYS": [3, 0],
    }
    assert 'value="20"' in client.get("/staff/admin/settings").get_data(as_text=True)


def test_settings_functions(app):
    assert get_int("NOPE", 7) == 7
    set_value("NOPE", 9)
    set_value("BROKEN", "x")
    db.session.commit()
    assert get_int("NOPE", 7) == 9 and get_int("BROKEN", 4) == 4
    set_value("NOPE", "11")
    db.session.commit()
    assert get_int("NOPE", 7) == 11


# -- reply templates ------------------------------------------------------------------------------------


def test_reply_templates_create_edit_delete(client, admin):
    town = org("demo-town-1")
    created = admin(
        "/staff/admin/templates", org=town.id, title="已转办", body="您反映的问题已转相关单位办理。"
    )
    assert created.status_code == 302
    row = db.session.scalar(select(ReplyTemplate).where(ReplyTemplate.title == "已转办"))
    assert row.org_id == town.id and changes("template.create")
    assert "已转办" in client.get("/staff/admin/templates").get_data(as_text=True)
    assert "您反映的问题" in client.get(f"/staff/admin/templates/{row.id}").get_data(as_text=True)

    empty = admin(f"/staff/admin/templates/{row.id}", org=town.id, title="", body="x")
    assert empty.status_code == 422 and "请填写标题" in empty.get_data(as_text=True)
    village = org("demo-town-1-village-1")
    assert (
        admin(f"/staff/admin/templates/{row.id}", org=village.id, title="已受理", body="已受理。").status_code
        == 302
    )
    db.session.expire_all()
    row = db.session.get(ReplyTemplate, row.id)
    assert (row.org_id, row.title, row.body) == (village.id, "已受理", "已受理。")
    assert changes("template.update")[0].detail["old_org"] == "demo-town-1"

    assert admin(f"/staff/admin/templates/{row.id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(ReplyTemplate, row.id) is None and changes("template.delete")


# -- e-mail addresses of staff ----------------------------------------------------------------------------


def test_users_email_is_optional_checked_shown_and_changed(client, admin):
    town = org("demo-town-1")
    created = admin(
        "/staff/admin/users", username="zhao.liu", org=town.id, role="supervisor", email=" zl@example.org "
    )
    assert created.status_code == 200 and user("zhao.liu").email == "zl@example.org"
    assert changes("user.create")[0].detail["email"] == "zl@example.org"
    assert admin("/staff/admin/users", username="no.mail", org=town.id, role="handler").status_code == 200
    assert user("no.mail").email is None

    for bad in ("not-an-address", "a@b", "two@@example.org", "with space@example.org", "x" * 250 + "@a.cn"):
        refused = admin("/staff/admin/users", username="bad.mail", org=town.id, role="handler", email=bad)
        assert refused.status_code == 422 and "电子邮箱" in refused.get_data(as_text=True), bad
    assert user("bad.mail") is None

    page = client.get("/staff/admin/users").get_data(as_text=True)
    assert 'value="zl@example.org"' in page and 'id="email"' in page

    account = user("zhao.liu")
    base = {"display_name": "", "role": "supervisor", "org": town.id}
    assert admin(f"/staff/admin/users/{account.id}", **base, email="lead@example.org").status_code == 302
    db.session.expire_all()
    assert user("zhao.liu").email == "lead@example.org"
    assert changes("user.update")[0].detail["changes"] == {"email": ["zl@example.org", "lead@example.org"]}
    # A bad address is refused and changes nothing; a form without the field leaves it alone.
    admin(f"/staff/admin/users/{account.id}", **base, email="nope")
    admin(f"/staff/admin/users/{account.id}", **base)
    db.session.expire_all()
    assert user("zhao.liu").email == "lead@example.org" and len(changes("user.update")) == 1
    # An empty field clears it.
    admin(f"/staff/admin/users/{account.id}", **base, email="")
    db.session.expire_all()
    assert user("zhao.liu").email is None


def test_demo_users_have_example_addresses_and_a_rerun_changes_nothing(app, demo):
    from supervise.demo import load_demo

    emails = dict(db.session.execute(select(User.username, User.email)).all())
    assert emails["demo-supervisor"] == "demo-supervisor@example.org"
    assert all(e == f"{u}@example.org" for u, e in emails.items())
    user("demo-intake").email = "intake@county.example"
    db.session.commit()
    load_demo(sample_cases=False)
    db.session.expire_all()
    assert user("demo-intake").email == "intake@county.example"
    assert user("demo-handler").email == "demo-handler@example.org"


# -- dead letters of the outbox ------------------------------------------------------------------------


@pytest.fixture
def dead_letter(app, demo):
    """A case whose "new case" notice died after MAX_ATTEMPTS, and a pending row 20 minutes old."""
    from supervise.cases.models import Case
    from supervise.notify import outbox
    from supervise.notify.models import OutboxMessage
    from supervise.queueing import redis_connection
    from tests.conftest import VALID_SUBMISSION

    submitted = app.test_client().post("/api/v1/cases", json=VALID_SUBMISSION)
    assert submitted.status_code == 201
    case = db.session.scalar(select(Case).where(Case.tracking_no == submitted.get_json()["tracking_no"]))
    notice = {"kind": "case_received", "channel": "inapp", "case": case}
    dead, stuck = (
        outbox.queue_message(
            db.session, **notice, payload={"org_id": org("demo-county").id, "role": "intake"}
        )
        for _ in range(2)
    )
    db.session.flush()
    dead.status, dead.attempts, dead.last_error = "dead", outbox.MAX_ATTEMPTS, "ConnectionError: gateway down"
    stuck.created_at = utcnow() - timedelta(minutes=20)
    db.session.commit()
    # Only what the retry enqueues is in Redis from here on.
    db.session.execute(
        OutboxMessage.__table__.update()
        .where(OutboxMessage.id.not_in([dead.id, stuck.id]))
        .values(status="delivered")
    )
    db.session.commit()
    redis_connection(app).flushdb()
    return {"id": dead.id, "stuck": stuck.id, "tracking_no": case.tracking_no}


def test_dead_letters_are_listed_and_a_retry_is_delivered_by_a_worker(app, client, admin, dead_letter):
    from rq import Queue, SimpleWorker

    from supervise.notify.models import Notification, OutboxMessage
    from supervise.queueing import redis_connection

    assert 'href="/staff/admin/outbox"' in client.get("/staff/admin/").get_data(as_text=True)
    page = client.get("/staff/admin/outbox")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "style=" not in html and "<script" not in html
    assert dead_letter["tracking_no"] in html and "ConnectionError: gateway down" in html
    assert f'action="/staff/admin/outbox/{dead_letter["id"]}/retry"' in html
    assert 'id="stale-pending"' in html and "另有 1 条消息等待投递已超过 10 分钟" in html
    assert f"/staff/admin/outbox/{dead_letter['stuck']}/retry" not in html  # pending: not a dead letter

    retried = admin(f"/staff/admin/outbox/{dead_letter['id']}/retry")
    assert retried.status_code == 302 and retried.headers["Location"].endswith("/staff/admin/outbox")
    db.session.expire_all()
    row = db.session.get(OutboxMessage, dead_letter["id"])
    assert (row.status, row.attempts) == ("pending", 0)
    (entry,) = changes("outbox.retry")
    assert entry.detail["message"] == row.id and entry.detail["attempts"] == 5
    conn = redis_connection(app)
    assert Queue("default", connection=conn).job_ids == [f"outbox-{row.id}"]

    SimpleWorker(["default"], connection=conn).work(burst=True)
    db.session.expire_all()
    row = db.session.get(OutboxMessage, dead_letter["id"])
    assert (row.status, row.attempts) == ("delivered", 1)
    notified = db.session.scalars(select(Notification.user_id).where(Notification.outbox_id == row.id)).all()
    assert notified == [user("demo-intake").id]
    assert "没有投递失败的消息" in client.get("/staff/admin/outbox").get_data(as_text=True)

    # Retrying what is no longer dead changes nothing; an unknown row is a 404.
    again = admin(f"/staff/admin/outbox/{dead_letter['id']}/retry")
    assert again.status_code == 302 and len(changes("outbox.retry")) == 1
    assert db.session.get(OutboxMessage, dead_letter["id"]).status == "delivered"
    assert admin("/staff/admin/outbox/999999/retry").status_code == 404


def test_dead_letters_are_for_system_admins_only(app, client, admin, dead_letter):
    from supervise.notify.models import OutboxMessage

    retry_url = f"/staff/admin/outbox/{dead_letter['id']}/retry"
    assert client.post(retry_url).status_code == 400  # a system admin, but no CSRF token
    create_user(db.session, username="town-admin", org=org("demo-town-1"), role="admin", password=PASSWORD)
    db.session.commit()
    for username in ("town-admin", "demo-supervisor"):
        other = app.test_client()
        token = login(other, username)
        assert other.get("/staff/admin/outbox").status_code == 403, username
        assert other.post(retry_url, data={"csrf_token": token}).status_code == 403, username
    town_admin = app.test_client()
    login(town_admin, "town-admin")
    assert 'href="/staff/admin/outbox"' not in town_admin.get("/staff/admin/").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, dead_letter["id"]).status == "dead"
    assert changes("outbox.retry") == []
