"""Issue 14, item 6: a photo store that cannot take a file answers a clear error, not a 500.

The failure is real, not simulated: the data dir's `uploads` is a regular FILE, so creating the
folder `uploads/ab/cd` fails with ENOTDIR ("Not a directory") — what a missing mount, a
misconfigured volume or a deleted folder looks like. (chmod 0500 cannot stand in for a read-only
disk: tests run as root, which writes anyway.) A full disk (ENOSPC) and a read-only one (EROFS)
take the same path: every OSError of the store is StoreUnavailable; the part-way write case is
tests/faults/test_orphans.py (EFBIG).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from supervise.cases.models import Case
from supervise.extensions import db
from tests.conftest import VALID_SUBMISSION

UNAVAILABLE = "照片暂时无法保存"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 220)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def broken_store(app, tmp_path):
    app.config["DATA_DIR"] = str(tmp_path)
    (tmp_path / "uploads").write_text("not a folder")
    return tmp_path / "uploads"


def test_api_answers_503_with_the_error_shape_and_keeps_nothing(client, demo, broken_store):
    response = client.post(
        "/api/v1/cases",
        data={**VALID_SUBMISSION, "photos": [(io.BytesIO(jpeg()), "a.jpg")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 503, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "storage_unavailable"
    assert error["message"].startswith(UNAVAILABLE)
    assert error["details"]["photos"][0].startswith(UNAVAILABLE)
    assert "Not a directory" not in response.get_data(as_text=True)  # no OS detail to a citizen
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0
    assert broken_store.read_text() == "not a folder"


def test_citizen_form_says_so_beside_the_photos_and_keeps_what_was_typed(client, demo, broken_store):
    form = {**VALID_SUBMISSION, "location": "城关镇便民服务中心二楼", "consent": "yes"}
    page = client.post(
        "/report",
        data={**form, "photos": [(io.BytesIO(jpeg()), "a.jpg")]},
        content_type="multipart/form-data",
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 503  # the store's fault, not the citizen's: and what was typed stays
    assert UNAVAILABLE in html and 'id="photos-error"' in html
    assert VALID_SUBMISSION["content"] in html and "城关镇便民服务中心二楼" in html
    assert 'id="photos-again"' in html  # the file input must be filled again: said beside it
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0

    # Without photos the same form goes through: the text never depended on the store.
    sent = client.post("/report", data=form, content_type="multipart/form-data")
    assert sent.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Case)) == 1
