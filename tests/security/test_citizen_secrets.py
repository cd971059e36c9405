"""Issue 12, items 1 and 4: a replayed form never re-issues the access code; a wrong code stores
nothing. Each test failed on the code before the fix."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import func, select

from supervise.cases.models import Attachment, Case
from supervise.extensions import db
from tests.conftest import ISSUED_ACCESS_CODES, VALID_SUBMISSION


def submit(client, **fields):
    response = client.post("/api/v1/cases", json={**VALID_SUBMISSION, **fields})
    if response.status_code == 201:
        ISSUED_ACCESS_CODES.append(response.get_json()["access_code"])
    return response


def track(client, tracking_no, code):
    return client.post("/api/v1/track", json={"tracking_no": tracking_no, "access_code": code})


def test_replaying_an_idempotency_key_does_not_take_the_access_code_over(client, demo):
    key = "f3c1e9a0b6d24c8e"
    first = submit(client, idempotency_key=key).get_json()
    again = submit(client, idempotency_key=key).get_json()
    assert again["tracking_no"] == first["tracking_no"]
    # The replay shows the same code; the citizen's own code still opens the case.
    assert again["access_code"] == first["access_code"]
    assert track(client, first["tracking_no"], first["access_code"]).status_code == 200
    assert db.session.scalar(select(func.count(Case.id))) == 1


def test_the_same_key_with_other_words_opens_nobody_elses_case(client, demo):
    key = "shared-phone-key-1"
    victim = submit(client, idempotency_key=key).get_json()
    other = submit(client, idempotency_key=key, content="另一件事情：村里的路灯坏了三个月没人修。").get_json()
    assert other["tracking_no"] != victim["tracking_no"]
    assert track(client, victim["tracking_no"], victim["access_code"]).status_code == 200


def test_the_key_is_not_stored_as_given(client, demo):
    key = "visible-in-a-dump-0001"
    submit(client, idempotency_key=key)
    assert db.session.scalar(select(func.count(Case.id)).where(Case.submit_key == key)) == 0


def test_an_empty_or_short_key_is_a_clear_answer_not_a_500(client, demo):
    # Blank is as if absent: each submit is its own case (it was 201, then 500 for every later one).
    assert [submit(client, idempotency_key="").status_code for _ in range(2)] == [201, 201]
    for _ in range(2):
        response = submit(client, idempotency_key="abc")
        assert response.status_code == 422, response.get_json()
        assert "提交标识" in str(response.get_json()["error"])


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def test_a_supplement_with_a_wrong_code_stores_no_photo(client, demo, services):
    case = submit(client).get_json()
    uploads = services["data_dir"] / "uploads"
    before = {p for p in uploads.rglob("*") if p.is_file()} if uploads.exists() else set()
    response = client.post(
        "/track/supplement",
        data={
            "tracking_no": case["tracking_no"],
            "access_code": "2222-3333-4444",
            "text": "补充照片",
            "photos": [(io.BytesIO(_photo()), "a.jpg")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 404
    after = {p for p in uploads.rglob("*") if p.is_file()} if uploads.exists() else set()
    assert after == before
    assert db.session.scalar(select(func.count(Attachment.id))) == 0
