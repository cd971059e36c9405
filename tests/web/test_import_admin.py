"""批量导入 on the admin pages (/staff/admin/import): upload → check → import, templates, who may
import what (admins only; a unit's admin only below their unit, never a discipline body)."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from supervise.cases.models import Case
from supervise.extensions import db
from supervise.imports.cases import ref_key
from supervise.intake.models import Point
from supervise.orgs.models import Org
from supervise.orgs.services import get_org_by_code
from supervise.staff.models import AuditEntry, User
from supervise.staff.services import create_user
from tests.web.test_admin import PASSWORD, SECRET_RE, login


def csv_file(text: str, name: str = "file.csv", encoding: str = "utf-8-sig") -> tuple[io.BytesIO, str]:
    return io.BytesIO(text.encode(encoding)), name


@pytest.fixture
def upload(client):
    """`upload(token, kind, text_or_bytes, dry_run=True)` → the response of the import form."""

    def post(token: str, kind: str, content, dry_run: bool = True, name: str = "file.csv", **extra):
        data = content if isinstance(content, bytes) else content.encode("utf-8-sig")
        form = {"csrf_token": token, "kind": kind, "file": (io.BytesIO(data), name), **extra}
        if dry_run:
            form["dry_run"] = "1"
        return client.post("/staff/admin/import", data=form, content_type="multipart/form-data")

    return post


def points_named(name: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Point).where(Point.name == name))


def test_upload_check_then_import(client, demo, upload):
    token = login(client, "demo-admin")
    page = client.get("/staff/admin/import")
    html = page.get_data(as_text=True)
    assert (
        page.status_code == 200 and "先检查（不写入）" in html and 'name="dry_run" value="1" checked' in html
    )
    assert "/staff/admin/import/template/cases.xlsx" in html and "批量导入" in html
    assert "style=" not in html and "<script" not in html

    text = "单位代码,监督点名称\ndemo-town-1-village-1,东关村党群服务中心\n"
    checked = upload(token, "points", text)
    html = checked.get_data(as_text=True)
    assert checked.status_code == 200 and "检查通过（未写入）" in html
    assert '<dd class="num" id="count-create">1</dd>' in html and points_named("东关村党群服务中心") == 0
    # The form comes back for the real import: same kind, the check unticked.
    assert 'name="dry_run" value="1" >' in html and 'name="checked"' in html

    done = upload(token, "points", text, dry_run=False)
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and "已导入" in html and points_named("东关村党群服务中心") == 1
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "admin_change")).all()
    assert [a.detail["what"] for a in audit] == ["import.points"] and audit[0].user.username == "demo-admin"
    again = upload(token, "points", text, dry_run=False)
    assert '<dd class="num" id="count-unchanged">1</dd>' in again.get_data(as_text=True)
    assert points_named("东关村党群服务中心") == 1


def test_bad_rows_are_listed_by_row_and_column(client, demo, upload):
    token = login(client, "demo-admin")
    text = (
        "单位代码,单位名称,单位类型,上级单位代码\nnew-v,新村,村,demo-town-9\nnew-w,新村二,星球,demo-town-1\n"
    )
    response = upload(token, "orgs", text, dry_run=False)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "整个文件均未写入" in html
    assert "第 2 行「上级单位代码」：找不到代码为 demo-town-9 的单位" in html
    assert "第 3 行「单位类型」：“星球”不是可选的值" in html
    assert get_org_by_code(db.session, "new-w") is None
    bad = upload(token, "orgs", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", name="photo.xlsx", dry_run=False)
    assert bad.status_code == 422 and "只能导入 XLSX 或 CSV 文件" in bad.get_data(as_text=True)


def test_new_accounts_passwords_are_shown_once_and_work(client, demo, upload):
    token = login(client, "demo-admin")
    text = "用户名,姓名,单位代码,角色\nwang.wu,王某,demo-town-1-jw,受理员、督办/审核\n"
    response = upload(token, "users", text, dry_run=False)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    (password,) = SECRET_RE.findall(html)
    new = db.session.scalar(select(User).where(User.username == "wang.wu"))
    assert new.roles == {"intake", "supervisor"} and new.org.code == "demo-town-1-jw"
    assert password not in str(db.session.scalars(select(AuditEntry.detail)).all())
    client.post("/staff/logout", data={"csrf_token": token})
    login(client, "wang.wu", password)


def test_cases_from_the_page_are_routed_as_submissions(client, demo, upload):
    token = login(client, "demo-admin")
    text = (
        "原编号,收件日期,被反映单位代码,问题类别,反映对象,反映内容,办理状态\n"
        "L-1,2026-11-02,demo-town-2-village-1,吃拿卡要,某村干部,要求请吃饭才盖章。,办理中\n"
    )
    assert upload(token, "cases", text, dry_run=False).status_code == 200
    imported = db.session.scalar(select(Case).where(Case.submit_key == ref_key("L-1")))
    assert imported.owner.code == "demo-town-2-jw" and imported.channel == "import"
    assert imported.events[0].actor.username == "demo-admin" and "file.csv 第 2 行" in imported.events[0].note


def test_the_templates_download(client, demo):
    login(client, "demo-admin")
    for kind in ("orgs", "points", "users", "cases"):
        response = client.get(f"/staff/admin/import/template/{kind}.xlsx")
        assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
        book = load_workbook(io.BytesIO(response.data))
        assert book.worksheets[1].title == "填写说明"
    assert client.get("/staff/admin/import/template/planets.xlsx").status_code == 404


def test_only_admins_import(client, demo, upload):
    token = login(client, "demo-intake")
    assert client.get("/staff/admin/import").status_code == 403
    assert upload(token, "points", "单位代码,监督点名称\ndemo-county,某\n", dry_run=False).status_code == 403
    assert client.get("/staff/admin/import/template/orgs.xlsx").status_code == 403
    assert points_named("某") == 0
    denied = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "access_denied")).all()
    assert len(denied) == 3


def test_a_unit_admin_imports_only_below_their_unit(client, demo, upload):
    create_user(
        db.session,
        username="town-admin",
        org=get_org_by_code(db.session, "demo-town-1"),
        role="admin",
        password=PASSWORD,
    )
    db.session.commit()
    token = login(client, "town-admin")
    html = client.get("/staff/admin/import").get_data(as_text=True)
    assert 'value="cases"' not in html  # a unit's admin keeps no complaint ledger
    header = "单位代码,单位名称,单位类型,上级单位代码\n"
    elsewhere = upload(token, "orgs", header + "x-v,某村,村,demo-town-2\n")
    assert "第 2 行「上级单位代码」：demo-town-2 不在您的管理范围内" in elsewhere.get_data(as_text=True)
    body = upload(token, "orgs", header + "x-jw,某纪委,乡镇纪委,demo-town-1\n")
    assert "单位的管理员不能创建纪检监察机构" in body.get_data(as_text=True)
    under_body = upload(token, "orgs", header + "x-w,某,村,demo-town-1-jw\n")
    assert "demo-town-1-jw 不在您的管理范围内" in under_body.get_data(as_text=True)
    users = upload(token, "users", "用户名,单位代码,角色\nx.y,demo-town-1-jw,承办人\n")
    assert "找不到代码为 demo-town-1-jw 的单位" in users.get_data(as_text=True)
    cases = upload(token, "cases", "原编号\nL-2\n", dry_run=False)
    assert cases.status_code == 422 and "请选择要导入的内容" in cases.get_data(as_text=True)

    mine = upload(token, "orgs", header + "x-v,北关村,村,demo-town-1\n", dry_run=False)
    assert mine.status_code == 200
    assert db.session.scalar(select(Org).where(Org.code == "x-v")).parent.code == "demo-town-1"
