"""The citizen's pages: QR form, uploads, the submitted page, tracking, limits, headers."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from rq import SimpleWorker
from sqlalchemy import func, select

from supervise.cases.models import Attachment, Case
from supervise.cases.services import upload_store
from supervise.extensions import db
from supervise.intake.models import Point, PointScan
from supervise.queueing import redis_connection

FORM = {
    "category": "petty_corruption",
    "subject": "城关镇便民服务中心窗口",
    "content": "办理低保材料时窗口人员暗示要请吃饭才给盖章。",
    "consent": "yes",
}


def jpeg(gps: bool = False, size=(64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    if gps:
        exif[0x010F] = "PhoneMaker"  # Make
        exif[0x8825] = {1: "N", 2: (30.0, 40.0, 10.0), 3: "E", 4: (104.0, 3.0, 30.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def point(token_org: str = "demo-town-1") -> Point:
    from supervise.orgs.models import Org

    return db.session.scalar(select(Point).join(Org).where(Org.code == token_org))


def post_form(client, url, data=None, photos=()):
    body = {**FORM, **(data or {})}
    body["photos"] = [(io.BytesIO(content), name) for name, content in photos]
    # Post/redirect/get: a successful submission answers 303 to the page showing the codes once.
    return client.post(url, data=body, content_type="multipart/form-data", follow_redirects=True)


def test_point_form_shows_point_and_counts_scans(client, demo):
    p = point()
    for _ in range(2):
        page = client.get(f"/s/{p.token}")
        assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "城关镇便民服务中心" in html and 'name="idempotency_key"' in html
    assert db.session.scalar(select(PointScan.count).where(PointScan.point_id == p.id)) == 2


def test_unknown_and_inactive_points(client, demo):
    assert client.get("/s/no-such-token").status_code == 404
    p = point()
    p.active = False
    db.session.commit()
    page = client.get(f"/s/{p.token}")
    assert page.status_code == 410 and "该监督点已停用" in page.get_data(as_text=True)
    assert 'name="content"' not in page.get_data(as_text=True)


def test_submit_through_the_point_form(client, demo):
    p = point()
    page = post_form(client, f"/s/{p.token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    tracking_no = re.search(r'id="tracking-no">([^<]+)<', html).group(1)
    code = re.search(r'id="access-code">([^<]+)<', html).group(1)
    case = db.session.scalar(select(Case).where(Case.tracking_no == tracking_no))
    # About 城关镇 (the point's org), received by the discipline body attached to it (§2a).
    assert case.point_id == p.id and case.subject_org.code == "demo-town-1"
    assert case.owner.code == case.org.code == "demo-town-1-jw" and case.unit is None
    assert page.headers["Cache-Control"] == "no-store"
    assert "只显示这一次" in html
    tracked = client.post("/track", data={"tracking_no": tracking_no, "access_code": code})
    assert tracked.status_code == 200 and "城关镇" in tracked.get_data(as_text=True)


def test_generic_form_goes_to_the_commission(client, demo):
    page = post_form(client, "/report")
    assert page.status_code == 200
    assert db.session.scalar(select(Case.org_id)) == db.session.scalar(
        select(Point.org_id).join(Point.org).where(Point.name == "县纪委监委信访室")
    )


def test_errors_are_shown_beside_fields_and_input_is_kept(client, demo):
    page = post_form(client, "/report", {"content": "太短了", "phone": "12", "name": "王五", "consent": ""})
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert 'id="content-error"' in html and "问题描述须为 10–5000 个字" in html
    assert 'id="phone-error"' in html and 'id="consent-error"' in html
    assert "城关镇便民服务中心窗口" in html and "太短了" in html and 'value="王五"' in html
    assert "照片需要重新选择" not in html
    assert db.session.scalar(select(func.count(Case.id))) == 0


def test_replayed_form_token_creates_one_case(client, demo):
    for _ in range(3):
        assert post_form(client, "/report", {"idempotency_key": "tap-tap-tap"}).status_code == 200
    assert db.session.scalar(select(func.count(Case.id))) == 1


def test_a_php_file_renamed_jpg_is_refused(client, demo):
    page = post_form(client, "/report", photos=[("shell.jpg", b"<?php system($_GET['c']); ?>")])
    assert page.status_code == 422 and "文件不是有效的图片" in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Case.id))) == 0


def test_gps_exif_is_stripped_before_storing(client, demo):
    original = jpeg(gps=True)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the test photo does carry GPS
    assert post_form(client, "/report", photos=[("photo.jpg", original)]).status_code == 200
    attachment = db.session.scalar(select(Attachment))
    stored = upload_store().get(attachment.sha256)
    image = Image.open(io.BytesIO(stored))
    assert not image.getexif() and b"PhoneMaker" not in stored
    assert attachment.content_type == "image/jpeg" and attachment.width == 64


def test_seven_photos_are_refused(client, demo):
    photos = [(f"p{i}.jpg", jpeg()) for i in range(7)]
    page = post_form(client, "/report", photos=photos)
    html = page.get_data(as_text=True)
    assert page.status_code == 422 and "最多上传 6 张照片" in html
    assert "照片需要重新选择" in html  # file inputs cannot be refilled: the citizen is told


def test_an_oversize_photo_is_refused(client, demo):
    page = post_form(client, "/report", photos=[("big.jpg", b"\xff" * (10 * 1024 * 1024 + 1))])
    assert page.status_code == 422 and "10 MB" in page.get_data(as_text=True)


def test_oversize_request_gets_a_friendly_413(app, client, demo):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    page = post_form(client, "/report", photos=[("a.jpg", jpeg(size=(400, 400)))])
    assert page.status_code == 413 and "每张照片不超过 10 MB" in page.get_data(as_text=True)


def test_thumbnails_are_made_by_a_job_and_photos_need_a_signed_link(app, client, demo):
    page = post_form(client, "/report", photos=[("a.png", _png()), ("b.jpg", jpeg())])
    html = page.get_data(as_text=True)
    ref = re.search(r'id="tracking-no">([^<]+)<', html).group(1)
    code = re.search(r'id="access-code">([^<]+)<', html).group(1)
    SimpleWorker(["default"], connection=redis_connection(app)).work(burst=True)
    db.session.expire_all()
    assert all(a.thumb_sha256 for a in db.session.scalars(select(Attachment)))
    tracked = client.post("/track", data={"tracking_no": ref, "access_code": code}).get_data(as_text=True)
    links = re.findall(r'src="(/files/[^"]+)"', tracked)
    assert len(links) == 2
    image = client.get(links[0])
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert client.get(links[0][:-3] + "abc").status_code == 404  # tampered
    assert not any(a.sha256 in tracked for a in db.session.scalars(select(Attachment)))


def _png() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-location")
    out = io.BytesIO()
    Image.new("RGB", (20, 20)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def test_png_text_chunks_are_stripped(client, demo):
    assert post_form(client, "/report", photos=[("a.png", _png())]).status_code == 200
    stored = upload_store().get(db.session.scalar(select(Attachment.sha256)))
    assert b"secret-location" not in stored


def _submitted(client):
    html = post_form(client, "/report").get_data(as_text=True)
    return (
        re.search(r'id="tracking-no">([^<]+)<', html).group(1),
        re.search(r'id="access-code">([^<]+)<', html).group(1),
    )


def test_wrong_access_codes_are_rate_limited(app, client, demo):
    app.config["TRACK_FAILURE_LIMIT"] = "3/hour"
    ref, code = _submitted(client)
    for _ in range(3):
        assert (
            client.post("/track", data={"tracking_no": ref, "access_code": "WRONG-CODE-0000"}).status_code
            == 404
        )
    assert (
        client.post("/track", data={"tracking_no": ref, "access_code": "WRONG-CODE-0000"}).status_code == 429
    )
    # The tracking number is protected from other addresses too, through the API as well; its
    # owner's right code still opens it (issue 12: guessing must not lock the owner out).
    other_ip = {"REMOTE_ADDR": "10.9.8.7"}
    blocked = client.post(
        "/api/v1/track", json={"tracking_no": ref, "access_code": "WRONG-CODE-0001"}, environ_base=other_ip
    )
    assert blocked.status_code == 429
    assert blocked.get_json()["error"]["code"] == "too_many_requests"
    owner = client.post(
        "/api/v1/track", json={"tracking_no": ref, "access_code": code}, environ_base=other_ip
    )
    assert owner.status_code == 200


def test_unknown_tracking_numbers_count_like_wrong_codes(app, client, demo):
    app.config["TRACK_FAILURE_LIMIT"] = "2/hour"
    for n in range(2):
        assert (
            client.post("/track", data={"tracking_no": f"MS2026-99999{n}", "access_code": "X"}).status_code
            == 404
        )
    assert client.post("/track", data={"tracking_no": "MS2026-999990", "access_code": "X"}).status_code == 429


def test_submissions_are_rate_limited_per_ip(app, client, demo):
    """The web forms and the API count apart (a busy app does not lock out a village office's
    form); past the form limit the form asks a question instead of refusing (tests/web/test_limits.py
    has the rest)."""
    app.config["SUBMIT_RATE_LIMIT"] = app.config["FORM_SUBMIT_RATE_LIMIT"] = "2/hour"
    api_body = {k: v for k, v in FORM.items() if k != "consent"}
    assert post_form(client, "/report").status_code == 200
    assert post_form(client, "/report").status_code == 200
    assert client.post("/api/v1/cases", json=api_body).status_code == 201  # its own bucket
    third = post_form(client, "/report")
    assert third.status_code == 422 and "challenge" in third.get_data(as_text=True)
    assert client.get("/report").status_code == 200  # reading the form is not limited


def test_xss_in_the_text_is_escaped_on_the_tracking_page_and_inert_in_the_api(client, auth, demo):
    payload = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    page = post_form(client, "/report", {"subject": payload, "content": payload + " 重复十个字以上的内容"})
    html = page.get_data(as_text=True)
    ref = re.search(r'id="tracking-no">([^<]+)<', html).group(1)
    code = re.search(r'id="access-code">([^<]+)<', html).group(1)
    client.post("/track/supplement", data={"tracking_no": ref, "access_code": code, "text": payload})
    tracked = client.post("/track", data={"tracking_no": ref, "access_code": code}).get_data(as_text=True)
    assert "<script>alert" not in tracked and "<img src=x" not in tracked
    assert "&lt;script&gt;alert(" in tracked
    api = client.get(f"/api/v1/cases/{ref}", headers=auth("demo-intake"))
    assert api.mimetype == "application/json" and api.headers["X-Content-Type-Options"] == "nosniff"
    assert api.get_json()["content"].startswith(payload)  # data, stored as typed, never HTML


def test_security_headers_everywhere(client, demo):
    for path in ("/", "/report", "/track", "/api/v1/categories"):
        headers = client.get(path).headers
        assert (
            "script-src 'self'" in headers["Content-Security-Policy"]
            and "unsafe-inline" not in headers["Content-Security-Policy"]
        )
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/track").headers["Cache-Control"] == "no-store"


def test_no_inline_script_in_pages(client, demo):
    for path in ("/", "/report", "/track", f"/s/{point().token}"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert " onclick=" not in html and " onload=" not in html


def test_rating_and_supplement_through_the_pages(client, auth, demo):
    from supervise.cases import services, workflow
    from tests.unit.test_workflow import staff

    ref, code = _submitted(client)
    supplemented = client.post(
        "/track/supplement",
        data={
            "tracking_no": ref,
            "access_code": code,
            "text": "补充：时间是上周三",
            "photos": [(io.BytesIO(jpeg()), "c.jpg")],
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert supplemented.status_code == 200 and "补充材料已提交" in supplemented.get_data(as_text=True)
    case = db.session.scalar(select(Case).where(Case.tracking_no == ref))
    case.status, case.feedback_draft = "feedback_pending_review", "已整改。"
    db.session.commit()
    workflow.publish(services.make_context(), case, staff("demo-supervisor"), version=case.version)
    services.commit()
    page = client.post("/track", data={"tracking_no": ref, "access_code": code}).get_data(as_text=True)
    assert "已整改。" in page and 'name="rating"' in page
    rated = client.post(
        "/track/rate",
        data={"tracking_no": ref, "access_code": code, "rating": "unsatisfied", "comment": "没有解决"},
        follow_redirects=True,
    )
    assert rated.status_code == 200 and "感谢您的评价" in rated.get_data(as_text=True)
    db.session.refresh(case)
    assert case.status == "reopened"


def test_access_code_never_in_a_url(client, demo):
    ref, code = _submitted(client)
    page = client.post("/track", data={"tracking_no": ref, "access_code": code}).get_data(as_text=True)
    assert not re.search(r'(href|src|action)="[^"]*' + re.escape(code), page)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_language_switch(client, demo, lang):
    client.get(f"/lang/{lang}?next=/report")
    html = client.get("/report").get_data(as_text=True)
    assert ("Report a problem" in html) == (lang == "en")
    assert ("我要反映" in html) == (lang == "zh")


def test_language_switch_is_not_an_open_redirect(client):
    assert client.get("/lang/en?next=https://evil.example/").headers["Location"] == "/"
