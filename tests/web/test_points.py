"""Points in the real world (issue 16): reissuing a point's QR code, renaming and moving a point, and
the place's name on the form. Through the real admin forms (CSRF, scope, audit) and the citizen's
pages, on the real database and Redis; a second app instance stands for another process."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from sqlalchemy import func, select

from supervise import refdata
from supervise.app import create_app
from supervise.cases.models import Case
from supervise.extensions import db
from supervise.intake.models import Point, PointScan, RetiredPointToken
from supervise.intake.qr import export_points_zip, point_url, qr_png, qr_svg
from supervise.queueing import redis_connection
from supervise.staff.services import create_user
from tests.conftest import app_config
from tests.web.test_admin import PASSWORD, changes, login, org, user

FORM = {
    "category": "petty_corruption",
    "subject": "村务公开栏",
    "content": "村务公开栏三个月没有更新，低保名单一直没有公示。",
    "consent": "yes",
}
VILLAGE_POINT = "东关村村务公开栏"


def village_point() -> Point:
    db.session.expire_all()
    return db.session.scalar(select(Point).where(Point.name.in_([VILLAGE_POINT, "东关村村委会便民服务窗口"])))


def cases() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Case))


def submit(client, token: str, **extra):
    """POST the citizen's form behind a QR code (multipart, as the browser sends it)."""
    return client.post(f"/s/{token}", data={**FORM, **extra}, content_type="multipart/form-data")


def last_case() -> Case:
    db.session.expire_all()
    return db.session.scalars(select(Case).order_by(Case.id.desc())).first()


@pytest.fixture
def admin(client, demo):
    token = login(client, "demo-admin")

    def post(url, **data):
        return client.post(url, data={"csrf_token": token, **data})

    return post


@pytest.fixture
def other_process(services, app):
    """A second app instance on the same database and Redis: another gunicorn worker, with its own
    per-process copy of the reference data (supervise/refdata.py)."""
    second = create_app(app_config(services))
    yield second.test_client()
    with second.app_context():
        db.session.remove()
        db.engine.dispose()


def test_reissue_old_sticker_says_replaced_and_links_to_the_new_form(app, client, admin):
    point = village_point()
    old, point_id = point.token, point.id
    page = client.get(f"/staff/admin/points/{point_id}")
    assert page.status_code == 200 and "旧二维码将停止接收反映" in page.get_data(as_text=True)

    # The confirmation is asked for: without it nothing changes.
    refused = admin(f"/staff/admin/points/{point_id}/reissue")
    assert refused.status_code == 422 and "请勾选确认" in refused.get_data(as_text=True)
    assert village_point().token == old and changes("point.reissue") == []

    done = admin(f"/staff/admin/points/{point_id}/reissue", confirm="yes")
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/staff/admin/points/{point_id}")
    new = village_point().token
    assert new != old and len(new) >= 22
    retired = db.session.scalar(select(RetiredPointToken).where(RetiredPointToken.token == old))
    assert retired.point_id == point_id and retired.retired_by_id == user("demo-admin").id
    assert [c.detail["point"] for c in changes("point.reissue")] == [point_id]
    shown = client.get(f"/staff/admin/points/{point_id}").get_data(as_text=True)
    assert f"/s/{new}" in shown and 'id="retired-codes"' in shown

    # The old sticker: the place and a working link to the new form, no form of its own, no scan.
    replaced = client.get(f"/s/{old}")
    html = replaced.get_data(as_text=True)
    assert replaced.status_code == 410 and "此码已更换" in html and VILLAGE_POINT in html and "东关村" in html
    assert 'name="content"' not in html
    link = re.search(r'id="new-form" href="([^"]+)"', html).group(1)
    assert link == f"/s/{new}"
    form = client.get(link)
    assert form.status_code == 200 and VILLAGE_POINT in form.get_data(as_text=True)
    scans = db.session.scalars(select(PointScan.count).where(PointScan.point_id == point_id)).all()
    assert scans == [1]  # the new form's opening; the old sticker's page counted nothing

    # A form opened before the reissue and sent after it: no case, sent to the new form, nothing kept.
    before = cases()
    posted = submit(client, old)
    assert posted.status_code == 303 and posted.headers["Location"] == f"/s/{new}?replaced=1"
    assert cases() == before
    xhr = client.post(
        f"/s/{old}",
        data=FORM,
        content_type="multipart/form-data",
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    assert xhr.status_code == 200 and xhr.get_json() == {"redirect": f"/s/{new}?replaced=1"}
    assert cases() == before
    again = client.get(f"/s/{new}?replaced=1").get_data(as_text=True)
    assert "刚才填写的内容没有提交" in again and FORM["content"] not in again
    # Nor through the API with the old code.
    api = client.post("/api/v1/cases", json={**FORM, "point": old})
    assert api.status_code == 422 and cases() == before

    # The new code takes a submission, routed by the point's org.
    accepted = submit(client, new)
    assert accepted.status_code == 303 and accepted.headers["Location"].endswith("/report/submitted")
    case = last_case()
    assert case.point_id == point_id and case.channel == "qr"
    assert case.subject_org.code == "demo-town-1-village-1" and case.owner.code == "demo-town-1-jw"

    # Reissued twice: the first sticker still leads to the point's current form.
    admin(f"/staff/admin/points/{point_id}/reissue", confirm="yes")
    newest = village_point().token
    for earlier in (old, new):
        assert f'href="/s/{newest}"' in client.get(f"/s/{earlier}").get_data(as_text=True)


def test_qr_png_poster_and_export_print_the_new_code(app, client, admin):
    point = village_point()
    old = point.token
    admin(f"/staff/admin/points/{point.id}/reissue", confirm="yes")
    point = village_point()
    base = app.config["BASE_URL"]
    new_url, old_url = point_url(base, point), f"{base.rstrip('/')}/s/{old}"
    assert client.get(f"/staff/admin/points/{point.id}/qr.png").data == qr_png(new_url)
    poster = client.get(f"/staff/admin/points/{point.id}/poster").get_data(as_text=True)
    # The poster shows the code as an inline SVG path: the new address's, not the old one's.
    drawn = {url: re.search(r' d="([^"]+)"', qr_svg(url).decode()).group(1) for url in (new_url, old_url)}
    assert drawn[new_url] in poster and drawn[old_url] not in poster
    listing = client.get("/staff/admin/points").get_data(as_text=True)
    assert new_url in listing and old not in listing
    with zipfile.ZipFile(io.BytesIO(export_points_zip(org("demo-county"), base))) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode("utf-8-sig"))))
    urls = {row["point_name"]: row["url"] for row in rows}
    assert urls[VILLAGE_POINT] == new_url and not any(old in url for url in urls.values())


def test_an_inactive_points_old_sticker_says_inactive(client, admin):
    point = village_point()
    old = point.token
    admin(f"/staff/admin/points/{point.id}/reissue", confirm="yes")
    admin(f"/staff/admin/points/{point.id}/active", active="0")
    for token in (old, village_point().token):
        page = client.get(f"/s/{token}")
        assert page.status_code == 410 and "该监督点已停用" in page.get_data(as_text=True)
    assert submit(client, old).status_code == 410 and cases() == 0


def test_another_process_sees_a_reissue_on_its_next_request(app, client, admin, other_process):
    point = village_point()
    old, point_id = point.token, point.id
    # The other process has loaded the points (a submission reads them from its copy).
    assert submit(other_process, old).status_code == 303
    assert last_case().point_id == point_id
    stamp = redis_connection().get(refdata.VERSION_KEY)

    admin(f"/staff/admin/points/{point_id}/reissue", confirm="yes")
    new = village_point().token
    assert redis_connection().get(refdata.VERSION_KEY) != stamp  # bumped after the commit

    # Its very next requests: the new code takes a submission (its copy knew only the old one)...
    before = cases()
    accepted = submit(other_process, new)
    assert accepted.status_code == 303, accepted.get_data(as_text=True)
    assert cases() == before + 1 and last_case().point_id == point_id
    # ...and the old one none.
    assert submit(other_process, old).headers["Location"] == f"/s/{new}?replaced=1"
    assert "此码已更换" in other_process.get(f"/s/{old}").get_data(as_text=True)
    assert cases() == before + 1


def test_retired_tokens_are_watched_reference_data(app, demo):
    """A commit writing only the retired-token table (an import of old stickers) bumps the stamp."""
    assert "retired_point_tokens" in refdata.WATCHED_TABLES
    point = village_point()
    stamp = redis_connection().get(refdata.VERSION_KEY)
    db.session.add(RetiredPointToken(token="imported-old-sticker", point_id=point.id))
    db.session.commit()
    assert redis_connection().get(refdata.VERSION_KEY) != stamp


def test_rename_and_move_audited_new_cases_follow_old_cases_stay(app, client, admin, other_process):
    point = village_point()
    token, point_id = point.token, point.id
    assert submit(client, token).status_code == 303
    old_case = last_case()
    assert (old_case.subject_org.code, old_case.owner.code) == ("demo-town-1-village-1", "demo-town-1-jw")
    assert submit(other_process, token).status_code == 303  # the other process has the points loaded

    target = org("demo-town-2-village-1")  # 石门村, under 青山乡 and its 纪委
    moved = admin(f"/staff/admin/points/{point_id}", name="东关村村委会便民服务窗口", org=target.id)
    assert moved.status_code == 302
    point = village_point()
    assert (point.name, point.org_id, point.token) == ("东关村村委会便民服务窗口", target.id, token)
    [entry] = changes("point.update")
    assert entry.detail["point"] == point_id and entry.user_id == user("demo-admin").id
    assert entry.detail["changes"] == {
        "name": [VILLAGE_POINT, "东关村村委会便民服务窗口"],
        "org": ["demo-town-1-village-1", "demo-town-2-village-1"],
    }
    assert "此后的反映按新单位受理" in client.get(f"/staff/admin/points/{point_id}").get_data(as_text=True)

    # New submissions, in this process and the other, are about the new org and go to its body.
    for who in (client, other_process):
        assert submit(who, token).status_code == 303
        case = last_case()
        assert (case.subject_org.code, case.owner.code) == ("demo-town-2-village-1", "demo-town-2-jw")
        assert case.point_id == point_id
    # The form names the place as it is now.
    html = client.get(f"/s/{token}").get_data(as_text=True)
    assert "东关村村委会便民服务窗口" in html and "石门村" in html
    # Cases received before keep where they were routed.
    db.session.expire_all()
    kept = db.session.get(Case, old_case.id)
    assert (kept.subject_org.code, kept.owner.code, kept.org.code) == (
        "demo-town-1-village-1",
        "demo-town-1-jw",
        "demo-town-1-jw",
    )

    # A rename alone is audited with the name only; an unchanged form changes and audits nothing.
    admin(f"/staff/admin/points/{point_id}", name="石门村便民服务窗口", org=target.id)
    assert changes("point.update")[-1].detail["changes"] == {
        "name": ["东关村村委会便民服务窗口", "石门村便民服务窗口"]
    }
    admin(f"/staff/admin/points/{point_id}", name="石门村便民服务窗口", org=target.id)
    assert len(changes("point.update")) == 2


def test_move_refuses_bad_input(client, admin):
    point = village_point()
    empty = admin(f"/staff/admin/points/{point.id}", name="  ", org=point.org_id)
    assert empty.status_code == 422 and "请填写监督点名称" in empty.get_data(as_text=True)
    closed = org("demo-town-2-village-2")
    closed.active = False
    db.session.commit()
    refused = admin(f"/staff/admin/points/{point.id}", name="新名称", org=closed.id)
    assert refused.status_code == 422 and "已停用" in refused.get_data(as_text=True)
    assert admin(f"/staff/admin/points/{point.id}", name="新名称", org="x").status_code == 404
    assert admin(f"/staff/admin/points/{point.id}", name="新名称", org=999999).status_code == 404
    assert village_point().name == VILLAGE_POINT and changes("point.update") == []
    # No CSRF token: refused before anything is read.
    no_token = client.post(f"/staff/admin/points/{point.id}/reissue", data={"confirm": "yes"})
    assert no_token.status_code == 400 and db.session.scalar(select(func.count(RetiredPointToken.id))) == 0


def test_non_admins_and_admins_out_of_scope_are_refused(app, client, demo):
    county_point = db.session.scalar(select(Point).where(Point.name == "县纪委监委信访室"))
    village = village_point()
    tokens = {county_point.id: county_point.token, village.id: village.token}

    # Staff without the admin role: 403 on every point action.
    token = login(client, "demo-intake")
    for response in (
        client.get(f"/staff/admin/points/{village.id}"),
        client.post(
            f"/staff/admin/points/{village.id}",
            data={"csrf_token": token, "name": "x", "org": village.org_id},
        ),
        client.post(
            f"/staff/admin/points/{village.id}/reissue", data={"csrf_token": token, "confirm": "yes"}
        ),
    ):
        assert response.status_code == 403

    # An admin at 城关镇 (a unit): the county's point and the township's 纪委 are out of reach (404).
    create_user(db.session, username="town-admin", org=org("demo-town-1"), role="admin", password=PASSWORD)
    db.session.commit()
    town = app.test_client()
    token = login(town, "town-admin")

    def post(url, **data):
        return town.post(url, data={"csrf_token": token, **data})

    refused = [
        town.get(f"/staff/admin/points/{county_point.id}"),
        post(f"/staff/admin/points/{county_point.id}", name="越权", org=org("demo-town-1").id),
        post(f"/staff/admin/points/{county_point.id}/reissue", confirm="yes"),
        # Its own village's point, moved out of its subtree or behind the identity wall.
        post(f"/staff/admin/points/{village.id}", name="越权", org=org("demo-town-2-village-1").id),
        post(f"/staff/admin/points/{village.id}", name="越权", org=org("demo-county").id),
        post(f"/staff/admin/points/{village.id}", name="越权", org=org("demo-town-1-jw").id),
    ]
    assert [r.status_code for r in refused] == [404] * len(refused)
    db.session.expire_all()
    assert {p.id: p.token for p in db.session.scalars(select(Point).where(Point.id.in_(tokens)))} == tokens
    assert village_point().org.code == "demo-town-1-village-1" and changes("point.update") == []
    assert db.session.scalar(select(func.count(RetiredPointToken.id))) == 0
    # Inside its subtree all is well: a point moves between two of its villages.
    assert (
        post(
            f"/staff/admin/points/{village.id}", name="西关社区公开栏", org=org("demo-town-1-village-2").id
        ).status_code
        == 302
    )
    assert village_point() is None  # renamed
    assert db.session.get(Point, village.id).org.code == "demo-town-1-village-2"


def test_the_form_names_the_place_in_large_type(client, demo):
    point = village_point()
    html = client.get(f"/s/{point.token}").get_data(as_text=True)
    block = html[html.index('class="point place"') : html.index('id="case-form"')]
    assert 'class="place-name" id="place-name">东关村村务公开栏<' in block
    assert "所属单位：东关村" in block and 'href="/report"' in block
    assert 'class="point place"' not in client.get("/report").get_data(as_text=True)
