"""Admin pages (/staff/admin) through the real login form: each section's flow, scope, CSRF, audit."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from supervise.cases.labels import ORG_KIND_LABELS
from supervise.cases.models import Category
from supervise.dbtypes import utcnow
from supervise.deadlines.calendar import get_calendar, local_date, parse_calendar_csv
from supervise.deadlines.models import CalendarDay, CalendarYear
from supervise.extensions import db
from supervise.intake.models import Point, PointScan
from supervise.orgs.models import Org
from supervise.orgs.routing import OrgTree
from supervise.orgs.services import create_org
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
    # Signing in starts a fresh session, and with it a fresh token (/staff/password is the one
    # page a one-time password opens).
    return csrf(client, "/staff/password")


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


def test_orgs_page_shows_every_kind_and_which_are_discipline_bodies(client, admin):
    page = client.get("/staff/admin/orgs").get_data(as_text=True)
    kind_select = page[page.index('<select id="kind"') :]
    kind_select = kind_select[: kind_select.index("</select>")]
    for kind, label in ORG_KIND_LABELS.items():
        assert f'<option value="{kind}" >{label}</option>' in kind_select, kind
    for code, label, chip in (
        ("demo-county", "纪委监委", "纪检监察机构"),
        ("demo-county-group-1", "派驻纪检监察组", "纪检监察机构"),
        ("demo-town-1-jw", "乡镇（街道）纪委", "纪检监察机构"),
        ("demo-town-1", "乡镇政府/街道办", "单位"),
        ("demo-dept-civil", "部门", "单位"),
        ("demo-town-1-village-1", "村/社区", "单位"),
    ):
        row = org_row(page, code)
        assert f'<td>{label}<br><span class="chip">{chip}</span></td>' in row, code
    # Bodies get the self-publish toggle, units the supervising-body select; not the other way round.
    assert "允许一人拟稿并发布（小机构）" in org_row(page, "demo-town-1-jw")
    assert "supervising_body" not in org_row(page, "demo-town-1-jw")
    assert "supervising_body" in org_row(page, "demo-town-1") and "一人拟稿" not in org_row(
        page, "demo-town-1"
    )
    # A body created here is one.
    created = admin(
        "/staff/admin/orgs",
        parent=org("demo-county").id,
        code="demo-group-2",
        name="派驻第二组",
        kind="stationed_group",
    )
    assert created.status_code == 302 and org("demo-group-2").is_body


def org_row(page: str, code: str) -> str:
    row = page[page.index(f'<tr id="org-{code}"') :]
    return row[: row.index("</tr>")]


def test_setting_a_units_supervising_body(client, admin):
    civil, town, village = org("demo-dept-civil"), org("demo-town-1"), org("demo-town-1-village-1")
    group, office, county = org("demo-county-group-1"), org("demo-town-1-jw"), org("demo-county")
    page = client.get("/staff/admin/orgs").get_data(as_text=True)
    civil_row = org_row(page, "demo-dept-civil")
    assert (
        f'<option value="{group.id}" selected>县纪委监委派驻第一纪检监察组（demo-county-group-1）'
        in civil_row
    )
    assert "当前由 县纪委监委派驻第一纪检监察组 监督" in civil_row
    village_row = org_row(page, "demo-town-1-village-1")
    assert '<option value="" selected>按层级（最近的上级纪检监察机构）</option>' in village_row
    assert "当前由 城关镇纪委 监督" in village_row
    # Only active discipline bodies are offered.
    assert f'<option value="{town.id}"' not in village_row and f'<option value="{county.id}"' in village_row

    assert admin(f"/staff/admin/orgs/{village.id}/supervisor", supervising_body=group.id).status_code == 302
    db.session.expire_all()
    assert org("demo-town-1-village-1").supervising_body_id == group.id
    assert OrgTree.load(db.session).supervising_body(village.id) == group.id
    (entry,) = changes("org.supervisor")
    assert entry.detail == {
        "what": "org.supervisor",
        "org": "demo-town-1-village-1",
        "old": None,
        "new": "demo-county-group-1",
    }
    assert "当前由 县纪委监委派驻第一纪检监察组 监督" in org_row(
        client.get("/staff/admin/orgs").get_data(as_text=True), "demo-town-1-village-1"
    )

    # Back to the tree's own: the nearest body above the department, the county's commission.
    assert admin(f"/staff/admin/orgs/{civil.id}/supervisor", supervising_body="").status_code == 302
    db.session.expire_all()
    assert org("demo-dept-civil").supervising_body_id is None
    assert OrgTree.load(db.session).supervising_body(civil.id) == county.id
    assert changes("org.supervisor")[1].detail["old"] == "demo-county-group-1"
    assert changes("org.supervisor")[1].detail["new"] is None
    # Saving what is already set changes nothing.
    admin(f"/staff/admin/orgs/{civil.id}/supervisor", supervising_body="")
    assert len(changes("org.supervisor")) == 2

    # A unit cannot supervise; a body has no supervising body; a stopped body is not offered.
    not_a_body = admin(f"/staff/admin/orgs/{village.id}/supervisor", supervising_body=town.id)
    assert not_a_body.status_code == 302
    assert "城关镇 不是纪检监察机构" in client.get("/staff/admin/orgs").get_data(as_text=True)
    for_a_body = admin(f"/staff/admin/orgs/{office.id}/supervisor", supervising_body=group.id)
    assert for_a_body.status_code == 302
    assert "城关镇纪委 是纪检监察机构，不设监督机构" in client.get("/staff/admin/orgs").get_data(as_text=True)
    admin(f"/staff/admin/orgs/{org('demo-town-2-jw').id}/active", active="0")
    stopped = admin(f"/staff/admin/orgs/{civil.id}/supervisor", supervising_body=org("demo-town-2-jw").id)
    assert stopped.status_code == 302
    assert "青山乡纪委 已停用" in client.get("/staff/admin/orgs").get_data(as_text=True)
    assert admin(f"/staff/admin/orgs/{civil.id}/supervisor", supervising_body="999999").status_code == 404
    assert admin(f"/staff/admin/orgs/{civil.id}/supervisor", supervising_body="x").status_code == 404
    db.session.expire_all()
    assert org("demo-town-1-village-1").supervising_body_id == group.id
    assert org("demo-dept-civil").supervising_body_id is None
    assert org("demo-town-1-jw").supervising_body_id is None
    assert len(changes("org.supervisor")) == 2


def test_toggling_self_publish_for_a_small_body(client, admin):
    office, town = org("demo-town-1-jw"), org("demo-town-1")
    assert not office.self_publish_allowed
    assert admin(f"/staff/admin/orgs/{office.id}/self-publish", allowed="1").status_code == 302
    db.session.expire_all()
    assert org("demo-town-1-jw").self_publish_allowed
    assert [c.detail for c in changes("org.self_publish")] == [
        {"what": "org.self_publish", "org": "demo-town-1-jw", "allowed": True}
    ]
    row = org_row(client.get("/staff/admin/orgs").get_data(as_text=True), "demo-town-1-jw")
    assert (
        '<input type="hidden" name="allowed" value="0">' in row
        and "取消“允许一人拟稿并发布（小机构）”" in row
    )
    # Pressing again what is already so changes nothing.
    admin(f"/staff/admin/orgs/{office.id}/self-publish", allowed="1")
    assert len(changes("org.self_publish")) == 1
    assert admin(f"/staff/admin/orgs/{office.id}/self-publish", allowed="0").status_code == 302
    db.session.expire_all()
    assert not org("demo-town-1-jw").self_publish_allowed
    assert changes("org.self_publish")[1].detail["allowed"] is False
    # A unit publishes nothing: refused, unchanged, unaudited.
    admin(f"/staff/admin/orgs/{town.id}/self-publish", allowed="1")
    db.session.expire_all()
    assert not org("demo-town-1").self_publish_allowed and len(changes("org.self_publish")) == 2
    assert "城关镇 不是纪检监察机构" in client.get("/staff/admin/orgs").get_data(as_text=True)


def test_a_body_without_intake_is_warned_about(client, admin):
    for url in ("/staff/admin/", "/staff/admin/orgs"):
        assert 'id="intake-warning"' not in client.get(url).get_data(as_text=True), url
    office_intake = user("demo-town-2-jw-intake")
    assert admin(f"/staff/admin/users/{office_intake.id}/active", active="0").status_code == 302
    warning = "青山乡纪委：没有在职的受理员账号，反映给它的诉求将由上一级纪检监察机构受理"
    for url in ("/staff/admin/", "/staff/admin/orgs", "/staff/admin/users"):
        html = client.get(url).get_data(as_text=True)
        assert 'id="intake-warning"' in html and warning in html, url
        assert "城关镇纪委：" not in html, url
    # The county's own intake gone: nobody above it, so nobody receives at all.
    county_intake = user("demo-intake")
    admin(f"/staff/admin/users/{county_intake.id}", role="handler", org=org("demo-county").id)
    html = client.get("/staff/admin/").get_data(as_text=True)
    assert "示范县纪委监委：没有在职的受理员账号，反映给它的诉求无人受理" in html and warning in html
    # An intake account again (enabled, or newly made): the warning goes.
    admin(f"/staff/admin/users/{office_intake.id}/active", active="1")
    admin(f"/staff/admin/users/{county_intake.id}", role="intake", org=org("demo-county").id)
    assert 'id="intake-warning"' not in client.get("/staff/admin/orgs").get_data(as_text=True)


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
        default_kind="service",
        sort_order="7",
    )
    assert created.status_code == 302
    cat = db.session.scalar(select(Category).where(Category.code == "land"))
    assert (cat.name, cat.name_en, cat.default_kind, cat.sort_order, cat.active) == (
        "土地征收",
        "Land",
        "service",
        7,
        True,
    )
    assert changes("category.create")
    assert admin("/staff/admin/categories", code="land", name="重复").status_code == 422
    bad = admin("/staff/admin/categories", code="x", name="某", sort_order="abc")
    assert bad.status_code == 422 and "排序须为" in bad.get_data(as_text=True)
    # The default 定性 is one of the case kinds (an org kind is not one).
    bad_kind = admin("/staff/admin/categories", code="x", name="某", default_kind="township")
    assert bad_kind.status_code == 422 and "请选择默认定性" in bad_kind.get_data(as_text=True)
    page = client.get("/staff/admin/categories").get_data(as_text=True)
    assert '<option value="accusation"' in page and "检举控告" in page

    admin(
        f"/staff/admin/categories/{cat.id}",
        name="征地拆迁",
        name_en="Land",
        default_kind="",
        sort_order="-1",
    )
    db.session.expire_all()
    cat = db.session.get(Category, cat.id)
    assert (cat.name, cat.default_kind, cat.sort_order) == ("征地拆迁", None, -1)
    assert changes("category.update")[0].detail["changes"]["name"] == ["土地征收", "征地拆迁"]

    admin(f"/staff/admin/categories/{cat.id}/active", active="0")
    db.session.expire_all()
    assert not db.session.get(Category, cat.id).active and changes("category.deactivate")
    public = client.get("/api/v1/categories").get_json()
    assert "land" not in {c["code"] for c in public}


def test_users_create_show_password_once_change_role_reset(app, client, admin):
    town = org("demo-town-1")
    # A single `role` value (an older page's select) still works.
    created = admin(
        "/staff/admin/users", username="li.si", display_name="李四", org=town.id, role="handler", password=""
    )
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    assert "承办人 · 城关镇" in created.get_data(as_text=True)
    password = SECRET_RE.search(created.get_data(as_text=True)).group(1)
    account = user("li.si")
    assert (account.org_id, account.roles, account.display_name) == (town.id, {"handler"}, "李四")
    assert (
        password not in account.password_hash and changes("user.create")[0].detail["password"] == "generated"
    )
    assert changes("user.create")[0].detail["roles"] == ["handler"]
    assert password not in str(changes("user.create")[0].detail)

    other = app.test_client()
    login(other, "li.si", password)
    # The password is one-time (issue 16): every page leads to 修改密码 until li.si sets one.
    for page in ("/staff/", "/staff/notifications", "/staff/admin/"):
        assert other.get(page).headers["Location"].endswith("/staff/password")
    assert "一次性密码" in other.get("/staff/password").get_data(as_text=True)
    token = csrf(other, "/staff/password")
    mine = "li-si-own-password-2026"
    changed = other.post(
        "/staff/password", data={"current": password, "new": mine, "confirm": mine, "csrf_token": token}
    )
    assert changed.status_code == 302 and other.get("/staff/").status_code == 200
    assert user("li.si").password_must_change is False

    county = org("demo-county")
    short = admin("/staff/admin/users", username="wang", org=county.id, role="intake", password="short")
    assert short.status_code == 422 and "密码至少 12 位" in short.get_data(as_text=True)
    taken = admin("/staff/admin/users", username="demo-intake", org=county.id, role="intake")
    assert taken.status_code == 422 and "该用户名已被使用" in taken.get_data(as_text=True)
    given = admin(
        "/staff/admin/users", username="wang", org=county.id, role="intake", password="a-long-password"
    )
    assert given.status_code == 200 and "a-long-password" in given.get_data(as_text=True)

    moved = admin(
        f"/staff/admin/users/{account.id}", display_name="李四", role=["supervisor", "handler"], org=county.id
    )
    assert moved.status_code == 302
    db.session.expire_all()
    assert (user("li.si").roles, user("li.si").org_id) == ({"handler", "supervisor"}, county.id)
    assert changes("user.update")[0].detail["changes"] == {
        "roles": [["handler"], ["handler", "supervisor"]],
        "org": ["demo-town-1", "demo-county"],
    }

    reset = admin(f"/staff/admin/users/{account.id}/password")
    new_password = SECRET_RE.search(reset.get_data(as_text=True)).group(1)
    assert reset.status_code == 200 and new_password != password and changes("user.reset_password")
    assert other.get("/staff/").status_code == 302  # the reset ended li.si's session
    login(other, "li.si", new_password)
    assert other.get("/staff/").headers["Location"].endswith("/staff/password")  # one-time again

    # An admin cannot lock themselves out: not by disabling, nor by changing their roles or org
    # (adding a role or dropping admin alike), nor by unticking every box.
    me = user("demo-admin")
    admin(f"/staff/admin/users/{me.id}/active", active="0")
    admin(f"/staff/admin/users/{me.id}", role="intake", org=county.id)
    admin(f"/staff/admin/users/{me.id}", role=["admin", "intake"], org=county.id)
    admin(f"/staff/admin/users/{me.id}", org=county.id)
    admin(f"/staff/admin/users/{me.id}", role="admin", org=town.id)
    db.session.expire_all()
    assert user("demo-admin").active and user("demo-admin").roles == {"admin"}
    assert user("demo-admin").org_id == county.id and len(changes("user.update")) == 1
    assert client.get("/staff/admin/").status_code == 200
    # Their own name they may change.
    renamed = admin(f"/staff/admin/users/{me.id}", display_name="管理员", role="admin", org=county.id)
    assert renamed.status_code == 302
    db.session.expire_all()
    assert user("demo-admin").display_name == "管理员" and len(changes("user.update")) == 2


def test_a_user_may_hold_several_roles(client, admin):
    office = org("demo-town-1-jw")
    created = admin(
        "/staff/admin/users",
        username="one.person",
        display_name="一人纪委",
        org=office.id,
        role=["supervisor", "intake", "handler"],
    )
    assert created.status_code == 200
    assert "受理员、承办人、督办/审核 · 城关镇纪委" in created.get_data(as_text=True)
    assert user("one.person").roles == {"intake", "handler", "supervisor"}
    assert changes("user.create")[0].detail["roles"] == ["intake", "handler", "supervisor"]
    # Comma-separated in one value (as `supervise create-user` takes them) works too.
    admin("/staff/admin/users", username="two.roles", org=office.id, role="intake,supervisor")
    assert user("two.roles").roles == {"intake", "supervisor"}

    # The list shows every role each account holds, and ticks each in its edit form.
    page = client.get("/staff/admin/users").get_data(as_text=True)
    row = page[page.index("<td>one.person") :]
    row = row[: row.index("</tr>")]
    assert row.count('<span class="chip">') == 3
    for label in ("受理员", "承办人", "督办/审核"):
        assert f'<span class="chip">{label}</span>' in row
    account = user("one.person")
    for role in ("intake", "handler", "supervisor"):
        assert f'id="role-{account.id}-{role}" name="role" value="{role}" checked' in row
    assert f'id="role-{account.id}-leader" name="role" value="leader" >' in row
    village_row = page[page.index("<td>demo-town-1-village-1-leader") :]
    village_row = village_row[: village_row.index("</tr>")]
    assert (
        '<span class="chip">单位负责人</span>' in village_row
        and '<span class="chip">承办人</span>' in village_row
    )

    # Dropping one of several roles: just that one goes.
    admin(f"/staff/admin/users/{account.id}", role=["intake", "supervisor"], org=office.id)
    db.session.expire_all()
    assert user("one.person").roles == {"intake", "supervisor"}
    assert changes("user.update")[0].detail["changes"] == {
        "roles": [["intake", "handler", "supervisor"], ["intake", "supervisor"]]
    }


def test_roles_must_fit_the_org(client, admin):
    town, office, county = org("demo-town-1"), org("demo-town-1-jw"), org("demo-county")
    intake_at_unit = admin(
        "/staff/admin/users",
        username="unit.intake",
        display_name="错位",
        org=town.id,
        role=["intake", "handler"],
    )
    html = intake_at_unit.get_data(as_text=True)
    assert intake_at_unit.status_code == 422 and "单位（非纪检监察机构）的账号不能担任：受理员" in html
    # The form keeps what was typed and ticked.
    assert 'value="unit.intake"' in html and 'value="错位"' in html
    assert 'id="new-role-intake" name="role" value="intake" checked' in html
    assert 'id="new-role-handler" name="role" value="handler" checked' in html
    assert 'id="new-role-leader" name="role" value="leader" >' in html
    supervisor_at_unit = admin("/staff/admin/users", username="unit.sup", org=town.id, role="supervisor")
    assert supervisor_at_unit.status_code == 422
    assert "单位（非纪检监察机构）的账号不能担任：督办/审核" in supervisor_at_unit.get_data(as_text=True)
    leader_at_body = admin("/staff/admin/users", username="body.leader", org=county.id, role="leader")
    assert leader_at_body.status_code == 422
    assert "纪检监察机构的账号不能担任：单位负责人" in leader_at_body.get_data(as_text=True)
    none_ticked = admin("/staff/admin/users", username="no.role", org=county.id)
    assert none_ticked.status_code == 422 and "请至少选择一个角色" in none_ticked.get_data(as_text=True)
    unknown = admin("/staff/admin/users", username="bad.role", org=county.id, role=["intake", "boss"])
    assert unknown.status_code == 422 and "没有这个角色：boss" in unknown.get_data(as_text=True)
    assert [user(u) for u in ("unit.intake", "unit.sup", "body.leader", "no.role", "bad.role")] == [None] * 5
    assert changes("user.create") == []

    # Editing: an intake account moved to a unit, or a unit's leader given intake, is refused.
    intake = user("demo-town-1-jw-intake")
    moved = admin(f"/staff/admin/users/{intake.id}", role=["intake", "supervisor"], org=town.id)
    assert moved.status_code == 302
    assert "单位（非纪检监察机构）的账号不能担任：受理员、督办/审核" in client.get(
        "/staff/admin/users"
    ).get_data(as_text=True)
    leader = user("demo-town-1-leader")
    admin(f"/staff/admin/users/{leader.id}", role=["leader", "intake"], org=town.id)
    admin(f"/staff/admin/users/{leader.id}", role="leader", org=office.id)
    db.session.expire_all()
    assert (user("demo-town-1-jw-intake").org_id, user("demo-town-1-jw-intake").roles) == (
        office.id,
        {"intake", "supervisor"},
    )
    assert (user("demo-town-1-leader").org_id, user("demo-town-1-leader").roles) == (town.id, {"leader"})
    assert changes("user.update") == []
    # Handler and admin fit both.
    assert (
        admin(f"/staff/admin/users/{leader.id}", role=["handler", "admin"], org=office.id).status_code == 302
    )
    db.session.expire_all()
    assert (user("demo-town-1-leader").org_id, user("demo-town-1-leader").roles) == (
        office.id,
        {"handler", "admin"},
    )


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
    assert "demo-town-1-leader" in users and "demo-town-1-village-1-leader" in users
    assert "demo-intake" not in users and "demo-town-2-leader" not in users
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
        post(f"/staff/admin/users/{user('demo-town-1-handler').id}", role="admin", org=county.id),
        post("/staff/admin/templates", org=county.id, title="越权", body="越权"),
        client.get(f"/staff/admin/templates/{county_template.id}"),
        post(f"/staff/admin/templates/{county_template.id}/delete"),
    ]
    assert [r.status_code for r in refused] == [404] * len(refused)
    db.session.expire_all()
    assert org("demo-county").name == "示范县纪委监委" and org("sneaky") is None and user("sneaky") is None
    assert user("demo-intake").active and user("demo-town-1-handler").org_id == town.id
    assert db.session.get(ReplyTemplate, county_template.id) is not None
    assert changes("org.rename") == [] and changes("user.update") == []

    # System-wide sections belong to admins of a top-level org.
    for section in ("categories", "calendar", "settings"):
        assert client.get(f"/staff/admin/{section}").status_code == 403
    # Inside the subtree all is well.
    village = org("demo-town-1-village-1")
    assert post(f"/staff/admin/orgs/{village.id}/rename", name="东关社区").status_code == 302
    assert org("demo-town-1-village-1").name == "东关社区"


def test_a_unit_admin_never_sees_the_discipline_body_below_it(client, demo):
    """DESIGN.md §2a: a township's 纪委 sits below the township, but the township's admin neither
    sees nor administers it, its accounts, points or reply templates: 404, as if absent."""
    town, office = org("demo-town-1"), org("demo-town-1-jw")
    create_user(db.session, username="town-admin", org=town, role="admin", password=PASSWORD)
    # Something of the office's in every section, and an org below it.
    below = create_org(db.session, "demo-town-1-jw-sub", "城关镇纪委第一室", "department", office)
    point = Point(org=office, name="城关镇纪委来访接待室")
    db.session.add_all([point, ReplyTemplate(org_id=office.id, title="纪委模板", body="纪委的回复")])
    db.session.add(ReplyTemplate(org_id=town.id, title="镇政府模板", body="镇里的回复"))
    db.session.commit()
    office_template = db.session.scalar(select(ReplyTemplate).where(ReplyTemplate.title == "纪委模板"))
    token = login(client, "town-admin")

    def post(url, **data):
        return client.post(url, data={"csrf_token": token, **data})

    pages = {
        s: client.get(f"/staff/admin/{s}").get_data(as_text=True)
        for s in ("orgs", "users", "points", "templates")
    }
    assert (
        "东关村" in pages["orgs"]
        and "城关镇纪委" not in pages["orgs"]
        and "demo-town-1-jw" not in pages["orgs"]
    )
    assert "城关镇纪委第一室" not in pages["orgs"] and "纪检监察机构</span>" not in pages["orgs"]
    assert "demo-town-1-leader" in pages["users"] and "demo-town-1-jw" not in pages["users"]
    assert "城关镇纪委" not in pages["users"]  # not among the orgs a user may be put in either
    assert "东关村村务公开栏" in pages["points"] and "城关镇纪委来访接待室" not in pages["points"]
    assert "镇政府模板" in pages["templates"] and "纪委模板" not in pages["templates"]
    assert "城关镇纪委" not in pages["templates"]
    # Nor can they make a body, or choose who supervises their unit.
    kinds = pages["orgs"][pages["orgs"].index('<select id="kind"') :]
    kinds = kinds[: kinds.index("</select>")]
    assert 'value="village"' in kinds and "discipline_office" not in kinds and "commission" not in kinds
    assert "supervising_body" not in pages["orgs"] and "一人拟稿" not in pages["orgs"]
    made_body = post(
        "/staff/admin/orgs", parent=town.id, code="new-jw", name="新纪委", kind="discipline_office"
    )
    assert made_body.status_code == 422 and org("new-jw") is None
    village = org("demo-town-1-village-1")
    chose = post(f"/staff/admin/orgs/{village.id}/supervisor", supervising_body="")
    assert chose.status_code == 302
    assert "只有纪检监察机构的管理员可以设置监督机构" in client.get("/staff/admin/orgs").get_data(
        as_text=True
    )

    jw_intake, jw_handler = user("demo-town-1-jw-intake"), user("demo-town-1-jw-handler")
    refused = [
        post(f"/staff/admin/orgs/{office.id}/rename", name="改名"),
        post(f"/staff/admin/orgs/{office.id}/active", active="0"),
        post(f"/staff/admin/orgs/{office.id}/self-publish", allowed="1"),
        post(f"/staff/admin/orgs/{office.id}/supervisor", supervising_body=""),
        post(f"/staff/admin/orgs/{below.id}/rename", name="改名"),
        post("/staff/admin/orgs", parent=office.id, code="sneaky", name="越权", kind="department"),
        post("/staff/admin/orgs", parent=below.id, code="sneaky", name="越权", kind="department"),
        post("/staff/admin/points", org=office.id, name="越权监督点"),
        post(f"/staff/admin/points/{point.id}/active", active="0"),
        client.get(f"/staff/admin/points/{point.id}/qr.png"),
        client.get(f"/staff/admin/points/{point.id}/poster"),
        post("/staff/admin/users", username="sneaky", org=office.id, role="handler"),
        post(f"/staff/admin/users/{jw_intake.id}/active", active="0"),
        post(f"/staff/admin/users/{jw_intake.id}/password"),
        post(f"/staff/admin/users/{jw_intake.id}", role="handler", org=town.id),
        post(f"/staff/admin/users/{user('demo-town-1-handler').id}", role="handler", org=office.id),
        post(f"/staff/admin/users/{jw_handler.id}", display_name="改名", role="handler", org=office.id),
        post("/staff/admin/templates", org=office.id, title="越权", body="越权"),
        client.get(f"/staff/admin/templates/{office_template.id}"),
        post(f"/staff/admin/templates/{office_template.id}", org=town.id, title="越权", body="越权"),
        post(f"/staff/admin/templates/{office_template.id}/delete"),
    ]
    assert [r.status_code for r in refused] == [404] * len(refused)
    db.session.expire_all()
    office = org("demo-town-1-jw")
    assert (office.name, office.active, office.self_publish_allowed) == ("城关镇纪委", True, False)
    assert org("demo-town-1-jw-sub").name == "城关镇纪委第一室" and org("sneaky") is None
    assert org("demo-town-1-village-1").supervising_body_id is None
    assert user("sneaky") is None and user("demo-town-1-jw-intake").active
    assert (
        user("demo-town-1-jw-intake").org_id == office.id
        and user("demo-town-1-jw-handler").display_name != "改名"
    )
    assert user("demo-town-1-handler").org_id == town.id
    assert db.session.get(Point, point.id).active
    assert db.session.get(ReplyTemplate, office_template.id).title == "纪委模板"
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "admin_change")).all() == []

    # The county's admin, at a body, sees and runs all of it.
    county_admin = client.application.test_client()
    county_token = login(county_admin, "demo-admin")
    assert "城关镇纪委第一室" in county_admin.get("/staff/admin/orgs").get_data(as_text=True)
    assert "demo-town-1-jw-intake" in county_admin.get("/staff/admin/users").get_data(as_text=True)
    renamed = county_admin.post(
        f"/staff/admin/orgs/{office.id}/rename", data={"csrf_token": county_token, "name": "城关镇纪委（新）"}
    )
    assert renamed.status_code == 302 and org("demo-town-1-jw").name == "城关镇纪委（新）"


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
        "/staff/admin/users", username="zhao.liu", org=town.id, role="leader", email=" zl@example.org "
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
    base = {"display_name": "", "role": "leader", "org": town.id}
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
